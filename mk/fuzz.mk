# Fuzz targets (go test -fuzz). Their seed corpora (the f.Add seeds and each package's
# testdata/fuzz/<target>/ files) run as ordinary tests in `make test-unit`; `make fuzz` runs each
# target with the fuzzing engine for FUZZTIME, one after another (the targets share the machine's
# cores; FUZZFLAGS=-parallel=1 keeps each to one worker). A crash is written to the package's
# testdata/fuzz/<target>/: fix it and commit the file as a regression seed. FUZZMINIMIZETIME
# bounds the minimizing of each new input (go's default, 60s, leaves the slow compose target
# minimizing most of the time).
#   make fuzz                      each target for 1m
#   make fuzz FUZZTIME=10m FUZZFLAGS=-parallel=1
FUZZTIME ?= 1m
FUZZFLAGS ?=
FUZZMINIMIZETIME ?= 10s
FUZZ_TARGETS := \
	FuzzFrameReader:./internal/forward \
	FuzzHandler:./internal/namedns \
	FuzzComposeRender:./internal/translate

.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t%%:*} ($${t#*:}) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $(FUZZFLAGS) "$${t#*:}"; \
	done
