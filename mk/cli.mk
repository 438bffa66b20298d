# The CLI's generated files and release plumbing.
#   make docs            regenerate docs/cli (markdown), docs/man (man pages) and completions/ from
#                        the command tree; a test in internal/cli fails when they are stale
#   make release-check   validate .goreleaser.yaml with goreleaser (installed when missing)
#   make release-snapshot  a local release build into dist/ (nothing published, no image pushed)
GORELEASER_VERSION := v2.15.1
GORELEASER := $(TOOLS_DIR)/goreleaser

.PHONY: docs release-check release-snapshot

docs:
	$(GO) run ./cmd/gen-docs -markdown docs/cli -man docs/man -completions completions

$(GORELEASER):
	GOBIN=$(TOOLS_DIR) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

release-check: $(GORELEASER)
	$(GORELEASER) check

release-snapshot: $(GORELEASER)
	$(GORELEASER) release --snapshot --clean --skip=publish,ko
