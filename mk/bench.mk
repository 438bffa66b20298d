# Benchmarks (bench/, docs/benchmarks.md): ergomake's port forwarding and time to ready against
# `kubectl port-forward` and direct TCP to the pod, on the local cluster, in one interleaved run.
# Not part of `make test` (it takes ~15 minutes); test/e2e/bench_smoke_test.go runs it with tiny
# sizes so that it cannot rot.
#   make bench                                  the full run; rewrites the table in docs/benchmarks.md
#   make bench BENCH_FLAGS="-runs 3 -size 256MiB -only transport"
#   make bench BENCH_FLAGS="-cpuprofile /tmp/bench.pprof"   then: go tool pprof -top /tmp/bench.pprof
BENCH_FLAGS ?= -runs 5 -size 1GiB

.PHONY: bench

# The time-to-ready and scale measures run `ergomake up`, which needs the operator in the cluster.
bench: cluster-up operator-install
	KUBECONFIG=$(CLUSTER_KUBECONFIG) $(GO) run ./bench $(BENCH_FLAGS) -markdown docs/benchmarks.md \
		-command "make bench BENCH_FLAGS='$(BENCH_FLAGS)'"
