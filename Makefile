# ergomake. Each area keeps its targets in mk/*.mk; this file holds what they share.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
TOOLS_DIR ?= $(HOME)/.cache/ergomake/tools
CONTROLLER_GEN := $(TOOLS_DIR)/controller-gen
CONTROLLER_TOOLS_VERSION := v0.23.0
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/ergomake/ergomake/internal/build.Version=$(VERSION)

.PHONY: all build test test-unit generate lint
all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

$(CONTROLLER_GEN):
	GOBIN=$(TOOLS_DIR) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

# generate: deepcopy, the CRD and the operator's RBAC from the kubebuilder markers.
generate: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) object paths=./pkg/apis/...
	$(CONTROLLER_GEN) crd paths=./pkg/apis/... output:crd:dir=config/crd

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...

# test: unit tests, then the end-to-end suite against the local cluster (mk/cluster.mk).
test: lint test-unit test-e2e

test-unit:
	$(GO) test -race -count=1 ./...

include mk/*.mk
