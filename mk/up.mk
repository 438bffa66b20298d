# The end-to-end tests (build tag e2e) that live beside their package, part of make test-e2e:
# internal/kube's and internal/wait's (the environment's lifecycle: namespace, server-side apply,
# wait, heartbeat, deletion), internal/session's (up's steps against the real cluster),
# internal/forward's (PodDialer), internal/imagebuild's (builds on the cluster's builder) and
# internal/server's (the server's routes in-process, as its ServiceAccount, against the cluster). The `ergomake up/down/ls/ps/logs/forward` tests live in test/e2e.
.PHONY: test-e2e-up
test-e2e: test-e2e-up
test-e2e-up: cluster-up
	KUBECONFIG=$(CLUSTER_KUBECONFIG) ERGOMAKE_E2E_REQUIRE=1 $(GO) test $(E2E_FLAGS) -tags e2e ./internal/kube/... ./internal/wait/... ./internal/session/... ./internal/forward/... ./internal/imagebuild/... ./internal/server/...
