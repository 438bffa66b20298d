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
