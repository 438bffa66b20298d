#!/usr/bin/env bash
# make cluster-up: brings up (or checks) the project's local single-node Kubernetes cluster:
# containerd + runc + CNI bridge, etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kube-proxy (iptables) and CoreDNS, all built from source. Idempotent: a healthy cluster
# is left alone (a few seconds); anything missing, crashed or rebuilt is (re)started.
# Needs root. Traffic stays on this machine: every address lives on lo (10.200.0.1) or on the
# ergomake0 bridge, CoreDNS has no upstream, and an iptables rule drops pod traffic leaving 10.244/16.
#   up.sh --build-only   only install packages, build the binaries and images (e.g. to warm a CI cache)
PROG=cluster-up
source "$(dirname "$0")/lib.sh"
BUILD_ONLY=0
[ "${1:-}" != --build-only ] || BUILD_ONLY=1
[ "$(id -u)" = 0 ] || die "cluster-up must run as root (it starts containerd and the kubelet)"
mkdir -p "$PKI" "$ETC" "$ST" "$LOGS" "$PIDS" "$IMG"

# Only one cluster-up at a time.
exec 9>"$D/.up.lock"
flock -n 9 || {
	say "another cluster-up is running; waiting for it"
	flock -w 1800 9 || die "another cluster-up still holds $D/.up.lock after 30 min"
}

K8S_KEY=$(src_key "$HACK/build")
IMAGES_KEY=$(src_key "$HACK/images" "$HACK/coredns" "$HACK/image.sh" "$REPO/test/testapp" "$REPO/go.mod")
# the harness itself: when it changes, the slow path runs again (configs, manifests); components
# whose flags changed need make cluster-down cluster-up
CONF_KEY=$(src_key "$HACK/up.sh" "$HACK/lib.sh" "$HACK/gen-certs.sh" "$HACK/manifests/coredns.yaml")

healthy() {
	local c
	for c in "${COMPONENTS[@]}"; do [ -n "$(pid_of "$c")" ] || return 1; done
	for c in "${COMPONENTS[@]}"; do ! stale "$c" || return 1; done
	[ -f "$KUBECONFIG_FILE" ] &&
		kc get --raw /readyz >/dev/null 2>&1 &&
		kc wait --for=condition=Ready "node/$NODE" --timeout=2s >/dev/null 2>&1 &&
		kc -n kube-system wait --for=condition=Available deploy/coredns --timeout=2s >/dev/null 2>&1 &&
		dns_ok
}
# dns_ok: CoreDNS answers a cluster name through the kube-dns Service IP (so kube-proxy's rules work).
dns_ok() { busybox nslookup kubernetes.default.svc.cluster.local "$DNS_IP" >/dev/null 2>&1; }

done_msg() {
	say "cluster is up (node $NODE Ready, CoreDNS Available)"
	echo "export KUBECONFIG=$KUBECONFIG_FILE"
	echo "kubectl: $D/bin/kubectl"
}

# ---------- fast path: nothing changed and everything is healthy ----------
if [ "$BUILD_ONLY" = 0 ] && [ "$(cat "$D/bin/.stamp" 2>/dev/null)" = "$K8S_KEY" ] && [ "$(cat "$IMG/.stamp" 2>/dev/null)" = "$IMAGES_KEY" ] &&
	[ "$(cat "$ST/.conf-stamp" 2>/dev/null)" = "$CONF_KEY" ] && healthy; then
	done_msg
	exit 0
fi

# ---------- 0. host packages ----------
PKGS=(containerd runc containernetworking-plugins iptables conntrack busybox-static socat curl openssl iproute2 util-linux libseccomp-dev)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing Debian packages: ${missing[*]}"
	run_logged "$LOGS/apt.log" apt-get update
	run_logged "$LOGS/apt.log" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
command -v go >/dev/null || die "go not found (expected Go 1.26 at /usr/local/go)"

# ---------- 1. Kubernetes binaries (hack/cluster/build), rebuilt when its sources change ----------
need_build=0
[ "$(cat "$D/bin/.stamp" 2>/dev/null)" = "$K8S_KEY" ] || need_build=1
for b in "${KUBE_BINS[@]}"; do [ -x "$D/bin/$b" ] || need_build=1; done
if [ "$need_build" = 1 ]; then
	say "building etcd + Kubernetes $K8S_VERSION binaries into $D/bin (cold: 15-25 min; log: $LOGS/build-k8s.log)"
	exec 8>"$D/.build.lock"
	flock 8
	rm -f "$D/bin/.stamp"
	run_logged "$LOGS/build-k8s.log" "$HACK/build/build.sh" "$D/bin"
	echo "$K8S_KEY" >"$D/bin/.stamp"
	flock -u 8
	say "Kubernetes binaries built"
fi

# ---------- 2. images (pause, CoreDNS, test app); imported once containerd runs ----------
build_images() {
	"$HACK/image.sh" --no-import --no-shell -C "$HACK/images" "$PAUSE_IMAGE" ./pause
	"$HACK/image.sh" --no-import --no-shell -C "$HACK/coredns" --entrypoint /coredns --port 53/udp --port 53/tcp "$COREDNS_IMAGE" .
	"$HACK/image.sh" --no-import --cmd serve --port 8080/tcp "$TESTAPP_IMAGE" ./test/testapp
}
if [ "$(cat "$IMG/.stamp" 2>/dev/null)" != "$IMAGES_KEY" ] || [ ! -f "$IMG/ergomake.test_coredns_1.15.0.tar" ]; then
	say "building images (pause, CoreDNS, testapp; cold CoreDNS build: 2-7 min)"
	build_images
	echo "$IMAGES_KEY" >"$IMG/.stamp"
fi
if [ "$BUILD_ONLY" = 1 ]; then
	say "binaries in $D/bin and images in $IMG are up to date"
	exit 0
fi

# ---------- 3. host network: node IP on lo, forwarding, egress guard ----------
case "$(ip -4 -o addr show dev lo)" in *" $NODE_IP/"*) ;; *) ip addr add "$NODE_IP/32" dev lo ;; esac
[ -f "$ST/orig-ip_forward" ] || sysctl -n net.ipv4.ip_forward >"$ST/orig-ip_forward"
sysctl -qw net.ipv4.ip_forward=1
modprobe br_netfilter 2>/dev/null || true
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
# Pods may reach pods, Service IPs (DNAT'd to pods) and the node, but nothing from the pod
# network is forwarded off this machine.
# Twice: in filter FORWARD (where kube-proxy later puts its own jumps first) and in mangle FORWARD,
# which runs before it and which kube-proxy leaves alone. Service traffic is DNAT'd to pod IPs
# before either, and traffic to the node (10.200.0.1) is not forwarded, so both only ever drop
# packets headed off the machine.
for table in filter mangle; do
	iptables -t $table -C FORWARD -s "$CLUSTER_CIDR" ! -d "$CLUSTER_CIDR" -m comment --comment "$GUARD_COMMENT" -j DROP 2>/dev/null ||
		iptables -t $table -I FORWARD 1 -s "$CLUSTER_CIDR" ! -d "$CLUSTER_CIDR" -m comment --comment "$GUARD_COMMENT" -j DROP
done

# ---------- 4. certificates ----------
"$HACK/gen-certs.sh"
if ! cmp -s "$PKI/admin.kubeconfig" "$KUBECONFIG_FILE"; then cp "$PKI/admin.kubeconfig" "$KUBECONFIG_FILE"; fi

# writeconf FILE < content: rewrites FILE only when the content changed (kube-proxy exits when
# its config file is touched).
writeconf() {
	local tmp
	tmp=$(mktemp)
	cat >"$tmp"
	if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else
		mv "$tmp" "$1"
		chmod 644 "$1"
	fi
}
# start NAME CMD...: starts a component in its own session, logging to logs/NAME.log, unless it
# already runs the current binary.
start() {
	local n=$1 pid
	shift
	if stale "$n"; then
		say "$n runs an outdated binary: restarting"
		stop_component "$n"
	fi
	pid=$(pid_of "$n")
	if [ -n "$pid" ]; then return 0; fi
	echo "### $(date -u +%FT%TZ) $*" >>"$LOGS/$n.log"
	setsid "$@" >>"$LOGS/$n.log" 2>&1 </dev/null 8>&- 9>&- &
	echo $! >"$PIDS/$n.pid"
	say "started $n (pid $!)"
}
stop_component() {
	local pid
	pid=$(pid_of "$1")
	[ -n "$pid" ] || return 0
	kill -TERM "$pid"
	for _ in $(seq 100); do [ -d /proc/"$pid" ] || break; sleep 0.1; done
	[ ! -d /proc/"$pid" ] || kill -KILL "$pid"
	rm -f "$PIDS/$1.pid"
}
# wait_for WHAT SECONDS LOG CMD...: polls CMD; on timeout shows WHAT failed and LOG's tail.
wait_for() {
	local what=$1 end=$((SECONDS + $2)) log=$3
	shift 3
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || die "timed out waiting for $what ($*)" "$log"
		sleep 0.3
	done
	say "$what: ok"
}
# alive NAME: fails (with the log tail) when the component exited right after starting
alive() {
	local pid
	pid=$(cat "$PIDS/$1.pid" 2>/dev/null || true)
	[ -n "$pid" ] && [ -d /proc/"$pid" ] || die "$1 exited right after it started" "$LOGS/$1.log"
}

# ---------- 5. containerd + CNI ----------
mkdir -p "$ETC/cni/net.d" "$ST/containerd" "$ST/cni" "$ST/runc"
writeconf "$ETC/cni/net.d/10-ergomake.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "ergomake",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$ST/cni/networks",
        "ranges": [[{"subnet": "$POD_SUBNET"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF
writeconf "$ETC/containerd.toml" <<EOF
version = 2
root = "$ST/containerd/root"
state = "$ST/containerd/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$ST/containerd/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$ST/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  netns_mounts_under_state_dir = true
  # root here lacks CAP_SYS_RESOURCE, so no negative oom_score_adj (the kubelet asks -998 for
  # sandboxes and runc fails); this clamps it to containerd's own score.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$ST/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ETC/cni/net.d"
EOF
if [ -z "$(pid_of containerd)" ]; then
	# no containerd and no shim of ours left: IP reservations of the previous run are stale
	if ! pgrep -f "containerd-shim-runc-v2 .*-address $SOCK" >/dev/null; then
		rm -f "$ST"/cni/networks/ergomake/10.* "$ST"/cni/networks/ergomake/last_reserved_ip.0
		rm -rf "$ST/imported" # re-import: cheap, and right if containerd's root was wiped
	fi
fi
start containerd containerd --config "$ETC/containerd.toml"
wait_for "containerd" 30 "$LOGS/containerd.log" "${CTR[@]}" version
for ref in "$IMG"/*.ref; do
	safe=$(basename "$ref" .ref)
	key=$(cat "$IMG/$safe.key")
	if [ "$(cat "$ST/imported/$safe" 2>/dev/null)" != "$key" ]; then
		mkdir -p "$ST/imported"
		run_logged "$LOGS/image-$safe.log" "${CTR[@]}" images import "$IMG/$safe.tar"
		echo "$key" >"$ST/imported/$safe"
		say "imported $(cat "$ref")"
	fi
done

# ---------- 6. etcd + control plane ----------
start etcd etcd --name ergomake --data-dir "$ST/etcd" \
	--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
	--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster ergomake=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
	--quota-backend-bytes 2147483648 --log-level warn
wait_for "etcd" 60 "$LOGS/etcd.log" curl -sf http://127.0.0.1:2381/health

start kube-apiserver kube-apiserver \
	--etcd-servers=http://127.0.0.1:2379 \
	--bind-address=$NODE_IP --advertise-address=$NODE_IP --secure-port=6443 \
	--service-cluster-ip-range=$SVC_CIDR \
	--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
	--client-ca-file="$PKI/ca.crt" \
	--kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
	--kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
	--kubelet-preferred-address-types=InternalIP \
	--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
	--service-account-issuer=https://kubernetes.default.svc.cluster.local \
	--authorization-mode=Node,RBAC --allow-privileged=true \
	--enable-admission-plugins=NodeRestriction \
	--profiling=false --v=1
alive kube-apiserver
wait_for "kube-apiserver" 120 "$LOGS/kube-apiserver.log" kc get --raw /readyz

start kube-controller-manager kube-controller-manager \
	--kubeconfig="$PKI/controller-manager.kubeconfig" \
	--authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
	--authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
	--bind-address=127.0.0.1 --leader-elect=false \
	--service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
	--cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
	--use-service-account-credentials=true --service-cluster-ip-range=$SVC_CIDR \
	--allocate-node-cidrs=false --profiling=false --v=1
start kube-scheduler kube-scheduler \
	--kubeconfig="$PKI/scheduler.kubeconfig" \
	--authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
	--authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
	--bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1

# ---------- 7. kubelet + kube-proxy ----------
mkdir -p "$ST/kubelet" "$ST/pod-logs"
echo "nameserver 127.0.0.1" | writeconf "$ETC/resolv.conf" # dnsPolicy=Default pods: nothing answers, nothing leaves
writeconf "$ETC/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-server.crt
tlsPrivateKeyFile: $PKI/kubelet-server.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $ETC/resolv.conf
podLogsDir: $ST/pod-logs
rotateCertificates: false
serverTLSBootstrap: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
maxPods: 110
oomScoreAdj: 0
imagePullCredentialsVerificationPolicy: NeverVerify
EOF
start kubelet kubelet --config="$ETC/kubelet.yaml" --kubeconfig="$PKI/kubelet.kubeconfig" \
	--root-dir="$ST/kubelet" --cert-dir="$ST/kubelet/pki" --hostname-override=$NODE --node-ip=$NODE_IP --v=1

writeconf "$ETC/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $PKI/kube-proxy.kubeconfig}
hostnameOverride: $NODE
bindAddress: $NODE_IP
clusterCIDR: $CLUSTER_CIDR
nodePortAddresses: [$NODE_IP/32]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
oomScoreAdj: 0
EOF
start kube-proxy kube-proxy --config="$ETC/kube-proxy.yaml" --v=1
for c in kube-controller-manager kube-scheduler kubelet kube-proxy; do alive "$c"; done
wait_for "node $NODE Ready" 180 "$LOGS/kubelet.log" kc wait --for=condition=Ready "node/$NODE" --timeout=1s

# ---------- 8. CoreDNS ----------
run_logged "$LOGS/coredns-apply.log" kubectl --kubeconfig "$KUBECONFIG_FILE" apply -f "$HACK/manifests/coredns.yaml"
if ! kc -n kube-system wait --for=condition=Available deploy/coredns --timeout=1s >/dev/null 2>&1; then
	end=$((SECONDS + 180))
	until kc -n kube-system wait --for=condition=Available deploy/coredns --timeout=1s >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$end" ]; then
			kc -n kube-system get pods -o wide >>"$LOGS/coredns-apply.log" 2>&1 || true
			kc -n kube-system get events --sort-by=.lastTimestamp >>"$LOGS/coredns-apply.log" 2>&1 || true
			die "timed out waiting for CoreDNS to become Available" "$LOGS/coredns-apply.log"
		fi
		sleep 0.3
	done
fi
say "CoreDNS Available"
wait_for "DNS through the kube-dns Service" 120 "$LOGS/coredns-apply.log" dns_ok
for c in "${COMPONENTS[@]}"; do alive "$c"; done
echo "$CONF_KEY" >"$ST/.conf-stamp"
done_msg
