# The in-cluster builder (BuildKit) on the local cluster (mk/cluster.mk): its image built from
# source by hack/cluster/buildkit (buildkitd, buildctl and a static runc, assembled with the
# harness's image tooling), installed by operator-install (mk/operator.mk) with mirrors that send
# docker.io and ergomake.test images to the in-cluster registry, so builds need no network.
#   make builder-image    build the builder image (cold: about 6 min on 2 cores) and load it
#   make builder-rootless-image   the rootless one too (`ergomake install --builder-mode rootless
#                         --builder-image $(ROOTLESS_BUILDER_IMAGE)`; test/e2e/rootless): the same
#                         binaries plus RootlessKit and newuidmap/newgidmap; part of make cluster-up
#   make buildctl         bin/buildctl, BuildKit's client, for builds by hand (hack/cluster/README.md)
BUILDER_IMAGE ?= ergomake.test/ergomake-builder:dev
BUILDER_IMAGE_KEY = $(ERGOMAKE_CLUSTER_DIR)/images/$(subst :,_,$(subst /,_,$(BUILDER_IMAGE))).key
BUILDER_MIRRORS ?= docker.io ergomake.test
ROOTLESS_BUILDER_IMAGE ?= ergomake.test/buildkit:v0.34.2-rootless

.PHONY: builder-image builder-rootless-image buildctl test-unit-cluster-tools

# The cluster tooling's own Go modules have unit tests too (mkimage's modes and owners; the rootless
# image's newuidmap/newgidmap: shadow's rules, and real maps written when run as root).
test-unit: test-unit-cluster-tools
test-unit-cluster-tools:
	cd hack/cluster/images && $(GO) test -race -count=1 ./...
	cd hack/cluster/rootless && $(GO) test -race -count=1 ./...

builder-image: cluster-start
	@hack/cluster/buildkit/image.sh $(BUILDER_IMAGE)

# after builder-image, whose binaries it shares (so make -j does not build them twice at once)
builder-rootless-image: builder-image
	@hack/cluster/buildkit/image.sh --rootless $(ROOTLESS_BUILDER_IMAGE)

buildctl:
	cd hack/cluster/buildkit && CGO_ENABLED=0 $(GO) build -trimpath -o $(CURDIR)/bin/buildctl github.com/moby/buildkit/cmd/buildctl
