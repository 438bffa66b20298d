# The in-cluster registry on the local cluster (mk/cluster.mk): its image built from
# hack/cluster/registry (distribution's registry) with the harness's image tooling, installed
# by operator-install (mk/operator.mk) together with the operator, then seeded with the images
# builds start from (hack/cluster/seed.sh).
#   make registry-image   build the registry image and load it into the cluster
#   make cluster-seed     push the test image and busybox into the registry through the node relay
REGISTRY_IMAGE ?= ergomake.test/ergomake-registry:dev
REGISTRY_IMAGE_KEY = $(ERGOMAKE_CLUSTER_DIR)/images/$(subst :,_,$(subst /,_,$(REGISTRY_IMAGE))).key
RELAY_PORT ?= 5100
export RELAY_PORT

.PHONY: registry-image cluster-seed

registry-image: cluster-start
	@hack/cluster/image.sh --no-shell -C hack/cluster/registry --port 5000/tcp $(REGISTRY_IMAGE) .

cluster-seed: operator-install
	@hack/cluster/seed.sh
