# internal/kube's and internal/wait's end-to-end tests (build tag e2e), part of make test-e2e: the
# environment's lifecycle (namespace, server-side apply, wait, heartbeat, deletion) against the
# local cluster and its operator. The `ergomake up/down/ls/ps/logs/forward` tests live in test/e2e.
.PHONY: test-e2e-up
test-e2e: test-e2e-up
test-e2e-up: cluster-up
	KUBECONFIG=$(CLUSTER_KUBECONFIG) ERGOMAKE_E2E_REQUIRE=1 $(GO) test $(E2E_FLAGS) -tags e2e ./internal/kube/... ./internal/wait/...
