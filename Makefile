# The one check command: `make check` runs everything CI runs.
#   go vet, staticcheck (pinned, fetched through the module proxy), the
#   tests with the race detector, then every fuzz target for FUZZTIME on
#   top of its seed corpus (which `go test` already ran).

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 15s
# Minimising a new input can take a minute per input by default; keep the
# runs short and bounded.
FUZZFLAGS   := -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s

# The race tests' full output is kept in TESTLOG. On a failure, a summary
# follows it: the failed tests with their messages and, if a package timed
# out, the tests it was running. It comes last because CI keeps only the
# end of a long output, which after a timeout is all goroutine stacks.
TESTLOG     ?= $(or $(TMPDIR),/tmp)/envelope-proxy-test.log
SHELL       := /bin/bash

.PHONY: check vet staticcheck test fuzz

check: vet staticcheck test fuzz

vet:
	go vet ./...

staticcheck:
	go run $(STATICCHECK) ./...

test:
	@set -o pipefail; go test -race ./... 2>&1 | tee $(TESTLOG) || { \
		echo "=== summary of the failures above (full output: $(TESTLOG))"; \
		grep -E '^\s*--- FAIL|^\s+[[:alnum:]_]+\.go:[0-9]+: |^FAIL' $(TESTLOG); \
		awk '/^panic: test timed out/ {p = 1} p && /^$$/ {p = 0} p' $(TESTLOG); \
		exit 1; }

fuzz:
	go test ./transform $(FUZZFLAGS) -fuzz '^FuzzTransform$$'
	go test ./transform $(FUZZFLAGS) -fuzz '^FuzzScanner$$'
	go test ./transform $(FUZZFLAGS) -fuzz '^FuzzAppendString$$'
	go test ./config $(FUZZFLAGS) -fuzz '^FuzzConfig$$'
	go test ./redact $(FUZZFLAGS) -fuzz '^FuzzRedact$$'
	go test ./evidence $(FUZZFLAGS) -fuzz '^FuzzDecodeBucket$$'
