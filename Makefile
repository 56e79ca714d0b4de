# The one check command: `make check` runs everything CI runs.
#   go vet, staticcheck (pinned, fetched through the module proxy), the
#   tests with the race detector, then every fuzz target for FUZZTIME on
#   top of its seed corpus (which `go test` already ran).

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# A count, not a duration: with a duration, Go before 1.27 can fail a
# target that found nothing with "context deadline exceeded" when the
# deadline lands as a worker stops (go.dev/issue/75804). 200,000 inputs
# take each target 7 to 60 seconds on a 2-core machine, 2.5 minutes in all.
FUZZTIME    ?= 200000x
# Minimising a new input can take a minute per input by default; keep the
# runs short and bounded.
FUZZFLAGS   := -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s

# The race tests' full output is kept in TESTLOG. On a failure, a summary
# follows it: the failed tests with their messages and, if a package timed
# out, the tests it was running. It comes last because CI keeps only the
# end of a long output, which after a timeout is all goroutine stacks. The
# recipe needs bash for PIPESTATUS: the exit status is go test's alone,
# whether or not the log could be written.
TESTLOG     ?= $(or $(TMPDIR),/tmp)/envelope-proxy-test.log
SHELL       := /bin/bash

.PHONY: check vet staticcheck test fuzz

check: vet staticcheck test fuzz

vet:
	go vet ./...

staticcheck:
	go run $(STATICCHECK) ./...

test:
	@go test -race ./... 2>&1 | tee "$(TESTLOG)"; rc=$${PIPESTATUS[0]}; \
	if [ $$rc -ne 0 ]; then \
		echo "=== summary of the failures above (full output: $(TESTLOG))"; \
		grep -E '^[[:space:]]*--- FAIL|^[[:space:]]+[[:alnum:]_]+\.go:[0-9]+: |^FAIL' "$(TESTLOG)"; \
		awk '/^panic: test timed out/ {p = 1} p && /^$$/ {p = 0} p' "$(TESTLOG)"; \
	fi; exit $$rc

fuzz:
	go test ./transform $(FUZZFLAGS) -fuzz '^FuzzTransform$$'
	go test ./transform $(FUZZFLAGS) -fuzz '^FuzzScanner$$'
	go test ./transform $(FUZZFLAGS) -fuzz '^FuzzValid$$'
	go test ./transform $(FUZZFLAGS) -fuzz '^FuzzAppendString$$'
	go test ./config $(FUZZFLAGS) -fuzz '^FuzzConfig$$'
	go test ./redact $(FUZZFLAGS) -fuzz '^FuzzRedact$$'
	go test ./evidence $(FUZZFLAGS) -fuzz '^FuzzDecodeBucket$$'
