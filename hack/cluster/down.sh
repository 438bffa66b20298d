#!/usr/bin/env bash
# make cluster-down: stops exactly the processes cluster-up started (by their PID files) and the
# pod containers containerd ran for them, then removes what cluster-up added to the host: the
# iptables rules and chains (egress guard, kube-proxy's KUBE-*, the CNI plugins' CNI-*), the
# ergomake0 bridge and 10.200.0.1 on lo. Keeps the build cache, certificates and cluster state, so
# the next cluster-up is a warm start.   PURGE=1 also deletes state/ (etcd data, containerd root).
PROG=cluster-down
source "$(dirname "$0")/lib.sh"
set +e
[ "$(id -u)" = 0 ] || die "cluster-down must run as root"

stop() { # NAME [SECONDS]
	local pid t=${2:-15}
	pid=$(pid_of "$1")
	if [ -n "$pid" ]; then
		kill -TERM "$pid"
		for ((i = 0; i < t * 10; i++)); do [ -d /proc/"$pid" ] || break; sleep 0.1; done
		if [ -d /proc/"$pid" ]; then
			say "$1 (pid $pid) did not stop in ${t}s: SIGKILL"
			kill -KILL "$pid"
		fi
		say "stopped $1 (pid $pid)"
	fi
	rm -f "$PIDS/$1.pid"
}

# the kubelet first, so that it does not restart containers; then every pod container and sandbox
stop kubelet
stop kube-proxy
# containerd died but its shims (and so the pods) still run: start it again to clean up through it
if [ -z "$(pid_of containerd)" ] && [ -f "$ETC/containerd.toml" ] &&
	pgrep -f "containerd-shim-runc-v2 .*-address $SOCK" >/dev/null; then
	setsid containerd --config "$ETC/containerd.toml" >>"$LOGS/containerd.log" 2>&1 </dev/null &
	echo $! >"$PIDS/containerd.pid"
	say "started containerd (pid $!) to stop the pods it left running"
	for _ in $(seq 100); do "${CTR[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
fi
if [ -n "$(pid_of containerd)" ] && "${CTR[@]}" version >/dev/null 2>&1; then
	ids=$("${CTR[@]}" containers ls -q 2>/dev/null)
	if [ -n "$ids" ]; then
		for c in $ids; do "${CTR[@]}" tasks kill -s SIGKILL "$c" >/dev/null 2>&1; done
		for c in $ids; do
			for _ in $(seq 20); do
				"${CTR[@]}" tasks delete -f "$c" >/dev/null 2>&1 && break
				case " $("${CTR[@]}" tasks ls -q 2>/dev/null | tr '\n' ' ') " in *" $c "*) ;; *) break ;; esac
				sleep 0.1
			done
			"${CTR[@]}" containers delete "$c" >/dev/null 2>&1
		done
		say "removed $(echo "$ids" | wc -w) pod containers"
	fi
fi
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver 5 # its graceful shutdown can hang on closed watches; it keeps no state
stop etcd 30
stop containerd 30
# every sandbox is gone: release the host-local IP reservations
rm -f "$ST"/cni/networks/ergomake/10.* "$ST"/cni/networks/ergomake/last_reserved_ip.0 2>/dev/null

# iptables: the guard rule, and the chains/rules of kube-proxy (KUBE-*) and the CNI plugins (CNI-*)
for table in filter mangle; do
	while iptables -t $table -D FORWARD -s "$CLUSTER_CIDR" ! -d "$CLUSTER_CIDR" -m comment --comment "$GUARD_COMMENT" -j DROP 2>/dev/null; do :; done
done
for cmd in iptables ip6tables; do
	command -v "$cmd" >/dev/null || continue
	for t in filter nat mangle; do
		rules=$("$cmd-save" -t "$t" 2>/dev/null) || continue
		grep -q -- 'KUBE-\|CNI-' <<<"$rules" || continue
		grep -v -- 'KUBE-\|CNI-' <<<"$rules" | "$cmd-restore" -T "$t" || say "cleaning $cmd table $t failed"
	done
done
ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE" && say "removed bridge $BRIDGE"
case "$(ip -4 -o addr show dev lo)" in *" $NODE_IP/"*) ip addr del "$NODE_IP/32" dev lo && say "removed $NODE_IP from lo" ;; esac
if [ -f "$ST/orig-ip_forward" ]; then
	sysctl -qw net.ipv4.ip_forward="$(cat "$ST/orig-ip_forward")" && rm -f "$ST/orig-ip_forward"
fi
# mounts left under the state dir (pod network namespaces, kubelet volumes)
grep -F " $ST/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
# the kubelet's (cgroupfs driver) empty per-pod cgroups
for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
	[ -d "${h}kubepods" ] && find "${h}kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
done
# the kubelet's /var/log/containers links into our pod log dir
for l in /var/log/containers/*.log; do
	[ -L "$l" ] && case "$(readlink "$l")" in "$ST"/*) rm -f "$l" ;; esac
done
if [ "${PURGE:-0}" = 1 ]; then
	rm -rf "$ST" && say "removed $ST"
fi
say "cluster stopped (build cache kept in $D)"
