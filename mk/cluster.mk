# The local Kubernetes cluster (hack/cluster) and the tests and demo that use it.
#   make cluster-up       build what is missing, start the cluster, wait for node Ready + CoreDNS,
#                         then build the operator and the registry from this tree, install them
#                         (mk/operator.mk, mk/registry.mk) and seed the registry; it also builds
#                         and loads the rootless builder image (mk/builder.mk), not installed
#   make cluster-start    the cluster alone, without the operator
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
E2E_FLAGS ?= -race -count=1 -timeout 45m
DEMO_PROJECT ?= testdata/elasticsearch-kibana-testapp

.PHONY: cluster-up cluster-start cluster-build cluster-down cluster-status cluster-image test-e2e demo

# cluster-up leaves the cluster ready for `ergomake up`: operator-install depends on cluster-start
# and cluster-seed on operator-install, so the order holds under make -j too.
cluster-up: cluster-start operator-install cluster-seed builder-rootless-image

cluster-start:
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

# test/e2e/rootless reinstalls the builder every other end-to-end test shares (rootless, then back
# to privileged), so it runs only with ERGOMAKE_E2E_EXCLUSIVE=1 (it skips in the first go test):
# alone, after the others (this recipe runs once test-e2e's other prerequisites, the e2e tests of
# mk/render.mk and mk/up.mk, have finished).
test-e2e: cluster-up
	KUBECONFIG=$(CLUSTER_KUBECONFIG) ERGOMAKE_E2E_REQUIRE=1 $(GO) test $(E2E_FLAGS) -tags e2e ./test/e2e/...
	KUBECONFIG=$(CLUSTER_KUBECONFIG) ERGOMAKE_E2E_REQUIRE=1 ERGOMAKE_E2E_EXCLUSIVE=1 $(GO) test $(E2E_FLAGS) -tags e2e ./test/e2e/rootless

# demo: the main job on the example project: `ergomake up` brings elasticsearch and kibana
# stand-ins up on the local cluster and binds localhost:9200 and localhost:5601 (a free port is
# shown when one is taken). In another terminal: curl localhost:5601/fetch?url=http://elasticsearch:9200/
# Ctrl-C tears the environment down.
demo: cluster-up
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ergomake ./cmd/ergomake
	KUBECONFIG=$(CLUSTER_KUBECONFIG) bin/ergomake up -f $(DEMO_PROJECT)/compose.yaml
