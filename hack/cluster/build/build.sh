#!/usr/bin/env bash
# Builds etcd and the Kubernetes v1.37.2 binaries of the local cluster into $1 (default ../bin).
set -euo pipefail
cd "$(dirname "$0")"
K8S=v1.37.2
OUT=${1:?usage: build.sh OUTDIR}
V=k8s.io/component-base/version
LDF="-s -w -X $V.gitVersion=$K8S -X $V.gitMajor=1 -X $V.gitMinor=37 -X $V.gitTreeState=clean -X $V.buildDate=2026-01-01T00:00:00Z"
LDF="$LDF -X k8s.io/client-go/pkg/version.gitVersion=$K8S"
mkdir -p "$OUT"
CGO_ENABLED=0 go build -trimpath -ldflags "$LDF" -o "$OUT/" \
  ./cmd/etcd \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kube-proxy \
  k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kubectl
