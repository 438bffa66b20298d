# The operator: RBAC generation, its image for the local cluster, installing it there.

.PHONY: generate-rbac operator-image operator-install operator-run

# `make generate` also regenerates the operator's ClusterRole from its +kubebuilder:rbac markers.
generate: generate-rbac
generate-rbac: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) rbac:roleName=ergomake-operator paths=./internal/operator/... output:rbac:dir=config/rbac

# The unit tests check that generated files are current (config/generated_test.go): they need
# controller-gen, which this installs when missing.
test-unit: $(CONTROLLER_GEN)
test-unit: export CONTROLLER_GEN := $(CONTROLLER_GEN)

# The operator on the local cluster (mk/cluster.mk): its image built from the working tree with the
# harness's image tooling, then installed with `ergomake install`. The image's build key (a hash
# of the binary) goes in as --revision, so a changed operator rolls out and an unchanged one is left
# alone.
OPERATOR_IMAGE ?= ergomake.test/ergomake-operator:dev
OPERATOR_IMAGE_KEY = $(ERGOMAKE_CLUSTER_DIR)/images/$(subst :,_,$(subst /,_,$(OPERATOR_IMAGE))).key

operator-image: cluster-start
	@hack/cluster/image.sh --no-shell $(OPERATOR_IMAGE) ./cmd/ergomake-operator

# It installs the in-cluster registry (mk/registry.mk) and the builder (mk/builder.mk) too.
operator-install: operator-image registry-image builder-image
	@KUBECONFIG=$(CLUSTER_KUBECONFIG) $(GO) run -ldflags "$(LDFLAGS)" ./cmd/ergomake install \
		--image $(OPERATOR_IMAGE) --revision "$$(cat $(OPERATOR_IMAGE_KEY))" \
		--registry-image $(REGISTRY_IMAGE) --registry-revision "$$(cat $(REGISTRY_IMAGE_KEY))" --relay-port $(RELAY_PORT) \
		--builder-image $(BUILDER_IMAGE) --builder-revision "$$(cat $(BUILDER_IMAGE_KEY))" $(addprefix --builder-mirror ,$(BUILDER_MIRRORS))

# operator-run: the operator in this process against the local cluster (Ctrl-C stops it).
operator-run:
	KUBECONFIG=$(CLUSTER_KUBECONFIG) $(GO) run ./cmd/ergomake-operator --kubeconfig $(CLUSTER_KUBECONFIG) \
		--metrics-bind-address 0 --health-probe-bind-address ""

