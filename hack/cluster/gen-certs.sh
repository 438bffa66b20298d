#!/usr/bin/env bash
# Writes the cluster's CA, serving and client certificates, the service-account key pair and one
# kubeconfig per client into $PKI, once (kept across cluster-down / cluster-up).
PROG=${PROG:-certs}
source "$(dirname "$0")/lib.sh"
mkdir -p "$PKI"
cd "$PKI"
if [ -f done ]; then exit 0; fi
umask 077
log=$LOGS/certs.log
mkdir -p "$LOGS"
ossl() { run_logged "$log" openssl "$@"; }

ossl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=ergomake-local-ca"
cat >server.ext <<EOF
subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$SVC_IP
extendedKeyUsage=serverAuth
keyUsage=digitalSignature,keyEncipherment
EOF
cat >kubelet-server.ext <<EOF
subjectAltName=DNS:$NODE,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP
extendedKeyUsage=serverAuth
keyUsage=digitalSignature,keyEncipherment
EOF
cat >client.ext <<EOF
extendedKeyUsage=clientAuth
keyUsage=digitalSignature,keyEncipherment
EOF
sign() { # name subject extfile
	ossl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
	ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile "$3"
	rm -f "$1.csr"
}
sign apiserver "/CN=kube-apiserver" server.ext
sign kubelet-server "/CN=$NODE" kubelet-server.ext
sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client.ext
sign admin "/O=system:masters/CN=ergomake-admin" client.ext
sign controller-manager "/CN=system:kube-controller-manager" client.ext
sign scheduler "/CN=system:kube-scheduler" client.ext
sign kube-proxy "/CN=system:kube-proxy" client.ext
sign kubelet "/O=system:nodes/CN=system:node:$NODE" client.ext
ossl genrsa -out sa.key 2048
ossl rsa -in sa.key -pubout -out sa.pub

b64() { base64 -w0 <"$1"; }
for u in admin controller-manager scheduler kube-proxy kubelet; do
	cat >"$u.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ergomake-local
  cluster:
    server: https://$NODE_IP:6443
    certificate-authority-data: $(b64 ca.crt)
users:
- name: $u
  user:
    client-certificate-data: $(b64 "$u.crt")
    client-key-data: $(b64 "$u.key")
contexts:
- name: ergomake-local
  context: {cluster: ergomake-local, user: $u}
current-context: ergomake-local
EOF
done
touch done
