#!/usr/bin/env bash
# make cluster-status: which components of the local cluster run, node and CoreDNS state, the
# in-cluster registry's repositories, and the resident memory of the whole cluster. Exit status 0 only when every component runs.
PROG=cluster-status
source "$(dirname "$0")/lib.sh"
set +e
echo "cluster dir: $D"
total=0 down=0
for c in "${COMPONENTS[@]}"; do
	pid=$(pid_of "$c")
	if [ -n "$pid" ]; then
		rss=$(awk '/^VmRSS/ {print $2}' /proc/"$pid"/status)
		total=$((total + rss))
		note=""
		stale "$c" && note=" (binary rebuilt since start: run make cluster-up)"
		printf '  %-24s running  pid %-7s %6d MiB%s\n' "$c" "$pid" $((rss / 1024)) "$note"
	else
		printf '  %-24s stopped\n' "$c"
		down=1
	fi
done
# containerd shims and the pod processes under them
shim_rss=0
for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK"); do
	for q in $p $(pgrep -P "$p"); do
		r=$(awk '/^VmRSS/ {print $2}' /proc/"$q"/status 2>/dev/null)
		shim_rss=$((shim_rss + ${r:-0}))
	done
done
printf '  %-24s %d MiB (shims + pod main processes)\n' "pods" $((shim_rss / 1024))
printf '  %-24s %d MiB\n' "total resident memory" $(((total + shim_rss) / 1024))
if [ "$down" = 0 ] && [ -f "$KUBECONFIG_FILE" ]; then
	kc get nodes -o wide 2>&1 | sed 's/^/  /'
	kc -n kube-system get deploy coredns 2>&1 | sed 's/^/  /'
	if repos=$(curl -sf --max-time 5 "http://127.0.0.1:$RELAY_PORT/v2/_catalog"); then
		echo "  registry on 127.0.0.1:$RELAY_PORT (through the node relay): $repos"
	else
		echo "  registry: no answer on 127.0.0.1:$RELAY_PORT (make cluster-up installs and seeds it)"
	fi
	echo "export KUBECONFIG=$KUBECONFIG_FILE"
	exit 0
fi
echo "cluster is not (fully) running: make cluster-up"
exit 1
