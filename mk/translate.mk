# internal/compose + internal/translate: golden files (testdata/golden/*.yaml, bad.txt, fixtures.golden).
.PHONY: golden-translate test-translate

# golden-translate regenerates translate's golden files; review the diff before committing.
golden-translate:
	$(GO) test ./internal/translate -count=1 -update

test-translate:
	$(GO) test -race -count=1 ./internal/compose/... ./internal/translate/...
