# internal/render's end-to-end tests (build tag e2e), part of make test-e2e: the API server accepts
# every rendered object (golden cases, testdata projects, compose fixtures; server-side dry run),
# and a rendered environment of the test image runs (probes, names and aliases, $ escaping, files,
# mounts, Jobs).
.PHONY: test-e2e-render
test-e2e: test-e2e-render
test-e2e-render: cluster-up
	KUBECONFIG=$(CLUSTER_KUBECONFIG) ERGOMAKE_E2E_REQUIRE=1 $(GO) test $(E2E_FLAGS) -tags e2e ./internal/render/...
