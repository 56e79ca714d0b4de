# The one check command: `make check` runs everything CI runs.
#   go vet, staticcheck (pinned, fetched through the module proxy), the
#   tests with the race detector, then every fuzz target for FUZZTIME on
#   top of its seed corpus (which `go test` already ran).

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 15s
# Minimising a new input can take a minute per input by default; keep the
# runs short and bounded.
FUZZFLAGS   := -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s

.PHONY: check vet staticcheck test fuzz

check: vet staticcheck test fuzz

vet:
	go vet ./...

staticcheck:
	go run $(STATICCHECK) ./...

test:
	go test -race ./...

fuzz:
	go test ./transform $(FUZZFLAGS) -fuzz '^FuzzTransform$$'
	go test ./transform $(FUZZFLAGS) -fuzz '^FuzzScanner$$'
	go test ./transform $(FUZZFLAGS) -fuzz '^FuzzAppendString$$'
	go test ./config $(FUZZFLAGS) -fuzz '^FuzzConfig$$'
	go test ./redact $(FUZZFLAGS) -fuzz '^FuzzRedact$$'
	go test ./evidence $(FUZZFLAGS) -fuzz '^FuzzDecodeBucket$$'
