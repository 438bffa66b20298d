# The local Kubernetes cluster (hack/cluster) and the tests and demo that use it.
#   make cluster-up       build what is missing, start the cluster, wait for node Ready + CoreDNS
#   make cluster-build    only build the binaries and images (no start)
#   make cluster-down     stop it (PURGE=1 also wipes its state: etcd data, containerd root)
#   make cluster-status   what runs, and the cluster's resident memory
#   make cluster-image IMAGE=ergomake.test/x:dev PKG=./cmd/x   build a Go package into an image and load it
#   make test-e2e         end-to-end tests (tag e2e) against the cluster, started when needed
#   make demo             cluster + ergomake on an example project
ERGOMAKE_CLUSTER_DIR ?= $(HOME)/.cache/ergomake/cluster
export ERGOMAKE_CLUSTER_DIR
CLUSTER_KUBECONFIG := $(ERGOMAKE_CLUSTER_DIR)/kubeconfig
KUBECTL := $(ERGOMAKE_CLUSTER_DIR)/bin/kubectl
E2E_FLAGS ?= -race -count=1 -timeout 20m
DEMO_PROJECT ?= testdata/elasticsearch-kibana-testapp

.PHONY: cluster-up cluster-build cluster-down cluster-status cluster-image test-e2e demo

cluster-up:
	@hack/cluster/up.sh

cluster-build:
	@hack/cluster/up.sh --build-only

cluster-down:
	@hack/cluster/down.sh

cluster-status:
	@hack/cluster/status.sh

cluster-image:
	@test -n "$(IMAGE)" -a -n "$(PKG)" || { echo "usage: make cluster-image IMAGE=name:tag PKG=./cmd/x"; exit 2; }
	@hack/cluster/image.sh $(IMAGE) $(PKG)

test-e2e: cluster-up
	KUBECONFIG=$(CLUSTER_KUBECONFIG) ERGOMAKE_E2E_REQUIRE=1 $(GO) test $(E2E_FLAGS) -tags e2e ./test/e2e/...

demo: cluster-up
	@echo "--- ergomake render of $(DEMO_PROJECT) (the objects the operator creates)"
	KUBECONFIG=$(CLUSTER_KUBECONFIG) $(GO) run ./cmd/ergomake render -f $(DEMO_PROJECT)/compose.yaml
	@echo "--- the cluster it will run on:"
	@$(KUBECTL) --kubeconfig $(CLUSTER_KUBECONFIG) get nodes -o wide
