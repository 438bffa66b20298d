# Shared settings and helpers of the local cluster scripts (sourced, not run).
# Everything the cluster writes lives under $ERGOMAKE_CLUSTER_DIR (default ~/.cache/ergomake/cluster):
#   bin/        etcd, kube-* and kubectl (built from hack/cluster/build), .stamp = source key
#   images/     image tarballs (+ .key), images/bin/ the static binaries in them, tools/ mkimage
#   pki/ etc/   certificates, kubeconfigs, component configs
#   state/      etcd data, containerd root/state, kubelet root, CNI IPAM, pod logs (kept by cluster-down)
#   logs/ pids/ one log and one PID file per component
#   kubeconfig  the admin kubeconfig for kubectl, tests and ergomake
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HACK/../.." && pwd)
D=${ERGOMAKE_CLUSTER_DIR:-${HOME:-/root}/.cache/ergomake/cluster}
mkdir -p "$D"
D=$(cd "$D" && pwd)
export PATH=$D/bin:$PATH:/usr/local/go/bin:/usr/sbin:/sbin

NODE=ergomake-node
NODE_IP=10.200.0.1          # on lo as /32: apiserver, kubelet, kube-proxy and the node address
CLUSTER_CIDR=10.244.0.0/16  # pods
POD_SUBNET=10.244.0.0/24    # host-local IPAM range of the single node
SVC_CIDR=10.96.0.0/16
SVC_IP=10.96.0.1
DNS_IP=10.96.0.10
BRIDGE=ergomake0
GUARD_COMMENT=ergomake-egress-guard
K8S_VERSION=v1.37.2

PKI=$D/pki ETC=$D/etc ST=$D/state LOGS=$D/logs PIDS=$D/pids IMG=$D/images
SOCK=$ST/containerd/containerd.sock
KUBECONFIG_FILE=$D/kubeconfig
CTR=(ctr --address "$SOCK" -n k8s.io)
KUBE_BINS=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
# start order; cluster-down stops in reverse
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

# Images the cluster itself needs. Pods of :latest images need imagePullPolicy IfNotPresent/Never.
PAUSE_IMAGE=ergomake.test/pause:1
COREDNS_IMAGE=ergomake.test/coredns:1.15.0
TESTAPP_IMAGE=ergomake.test/testapp:latest
# The in-cluster registry `ergomake install` puts in ergomake-system, and its node relay: every node
# (this host) reaches it on 127.0.0.1:$RELAY_PORT. cluster-seed pushes the images builds start from.
REGISTRY_IMAGE=ergomake.test/ergomake-registry:dev
RELAY_PORT=${RELAY_PORT:-5100}

T0=${T0:-$(date +%s%N)}
export T0
PROG=${PROG:-cluster}

say() {
	local ms=$((($(date +%s%N) - T0) / 1000000))
	printf '%s: [%4d.%ds] %s\n' "$PROG" $((ms / 1000)) $((ms % 1000 / 100)) "$*"
}

# die MESSAGE [LOGFILE]: print what failed and the tail of its log, then exit 1.
die() {
	echo "$PROG: FAILED: $1" >&2
	if [ -n "${2:-}" ] && [ -f "$2" ]; then
		echo "---- last lines of $2 ----" >&2
		tail -n "${TAIL_LINES:-40}" "$2" >&2
		echo "----" >&2
	fi
	exit 1
}

# run_logged LOGFILE CMD...: runs CMD with its output appended to LOGFILE; on failure names the
# command and shows the log tail. Prints a progress line every 30 s while CMD runs.
run_logged() {
	local log=$1
	shift
	mkdir -p "$(dirname "$log")"
	echo "### $(date -u +%FT%TZ) $*" >>"$log"
	local start=$SECONDS rc=0 ticker
	(
		while sleep 30 </dev/null >/dev/null 2>&1; do # sleep must not hold our stdout open
			last=$(grep -v '^### ' "$log" | tail -n 1 | cut -c1-100 || true) # no output yet: grep fails
			say "  ... still running ($((SECONDS - start)) s): ${last:-no output yet}"
		done
	) 8>&- 9>&- &
	ticker=$!
	"$@" >>"$log" 2>&1 </dev/null 8>&- 9>&- || rc=$?
	kill "$ticker" 2>/dev/null || true # already gone: not an error (set -e would end the script silently)
	wait "$ticker" 2>/dev/null || true
	[ "$rc" = 0 ] || die "$* (exit $rc)" "$log"
}

# src_key PATH...: a hash of the Go sources, module files and scripts under PATH (paths relative to
# the repository, so every checkout agrees) and of the Go version,
# used to rebuild binaries and images when their sources change.
src_key() {
	(
		cd "$REPO"
		go version
		for p in "$@"; do
			p=${p#"$REPO"/}
			if [ -d "$p" ]; then
				find "$p" -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name '*.sh' -o -name '*.yaml' \) -print0 |
					sort -z | xargs -0 -r sha256sum
			else
				sha256sum "$p"
			fi
		done
	) | sha256sum | cut -c1-16
}

# pid_of NAME: the PID of a running component started by cluster-up, or nothing.
pid_of() {
	local f=$PIDS/$1.pid pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	[ -n "$pid" ] && [ -d /proc/"$pid" ] || return 0
	# guard against PID reuse: the process must run a binary of that name
	case "$(readlink /proc/"$pid"/exe 2>/dev/null)" in
	*/"$1" | */"$1"" (deleted)") echo "$pid" ;;
	esac
}

# stale NAME: true when the component runs an older binary than the one now on disk (rebuilt).
stale() {
	local pid
	pid=$(pid_of "$1")
	[ -n "$pid" ] && case "$(readlink /proc/"$pid"/exe)" in *" (deleted)") return 0 ;; esac
	return 1
}

kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }
