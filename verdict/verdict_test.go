package verdict

import (
	"slices"
	"testing"
	"time"
)

// thresholds are the settings every Decide case starts from.
var thresholds = Thresholds{
	Window:                  24 * time.Hour,
	MinRequests:             1000,
	MaxMismatchRatio:        0.001,
	MaxUnmapped:             0,
	MaxCandidateErrorsRatio: 0.01,
	MaxUpstreamErrorsRatio:  0.01,
}

func TestDecide(t *testing.T) {
	for _, c := range []struct {
		name string
		e    Evidence
		// tweak changes the thresholds for this case only.
		tweak   func(*Thresholds)
		state   State
		reasons []string
	}{
		{
			name:  "shadow clean over enough traffic",
			e:     Evidence{Mode: ModeShadow, Requests: 3500, Compared: 3112},
			state: Ready,
			reasons: []string{
				"unmapped 0 ≤ 0 over 24h",
				"candidate errors 0% ≤ 1% over 24h, 3,112 replays",
				"mismatch 0% ≤ 0.1% over 24h, 3,112 compared",
			},
		},
		{
			name:    "shadow mismatches over the ratio",
			e:       Evidence{Mode: ModeShadow, Requests: 3500, Compared: 3112, Mismatches: 12},
			state:   NotReady,
			reasons: []string{"mismatch 0.4% > 0.1% over 24h, 3,112 compared"},
		},
		{
			name:    "shadow under min_requests with no failure",
			e:       Evidence{Mode: ModeShadow, Requests: 600, Compared: 500},
			state:   InsufficientEvidence,
			reasons: []string{"500 compared < 1,000 needed over 24h"},
		},
		{
			name:    "shadow unmapped codes on tiny traffic",
			e:       Evidence{Mode: ModeShadow, Requests: 12, Compared: 10, Unmapped: 2, UnmappedCodes: []string{"E_QUOTA", "E_LOCKED"}},
			state:   NotReady,
			reasons: []string{"unmapped 2 > 0 (E_QUOTA, E_LOCKED) over 24h"},
		},
		{
			name:    "shadow unmapped without codes",
			e:       Evidence{Mode: ModeShadow, Requests: 2000, Compared: 2000, Unmapped: 1},
			state:   NotReady,
			reasons: []string{"unmapped 1 > 0 over 24h"},
		},
		{
			name:    "shadow candidate errors over the ratio",
			e:       Evidence{Mode: ModeShadow, Requests: 2100, Compared: 1950, CandidateErrors: 50},
			state:   NotReady,
			reasons: []string{"candidate errors 2.5% > 1% over 24h, 2,000 replays"},
		},
		{
			name:  "shadow every failure at once",
			e:     Evidence{Mode: ModeShadow, Requests: 40, Compared: 20, Mismatches: 2, CandidateErrors: 20, Unmapped: 3, UnmappedCodes: []string{"E1"}},
			state: NotReady,
			reasons: []string{
				"unmapped 3 > 0 (E1) over 24h",
				"candidate errors 50% > 1% over 24h, 40 replays",
				"mismatch 10% > 0.1% over 24h, 20 compared",
			},
		},
		{
			name:    "shadow candidate errors only",
			e:       Evidence{Mode: ModeShadow, Requests: 5, CandidateErrors: 5},
			state:   NotReady,
			reasons: []string{"candidate errors 100% > 1% over 24h, 5 replays"},
		},
		{
			name:    "shadow dry runs only",
			e:       Evidence{Mode: ModeShadow, Requests: 5000, DryRuns: 4800},
			state:   InsufficientEvidence,
			reasons: []string{"no candidate comparison over 24h (4,800 dry runs): set candidate.url to compare with the new service"},
		},
		{
			name:    "shadow with nothing",
			e:       Evidence{Mode: ModeShadow},
			state:   InsufficientEvidence,
			reasons: []string{"no shadow exchange compared over 24h"},
		},
		{
			name:  "envelope clean",
			e:     Evidence{Mode: ModeEnvelope, Requests: 5000, UpstreamErrors: 10},
			state: Ready,
			reasons: []string{
				"unmapped 0 ≤ 0 over 24h",
				"upstream errors 0.2% ≤ 1% over 24h, 5,000 requests",
			},
		},
		{
			name:  "envelope clean, with its contract checked",
			e:     Evidence{Mode: ModeEnvelope, Requests: 5000, ContractChecked: 4990},
			state: Ready,
			reasons: []string{
				"unmapped 0 ≤ 0 over 24h",
				"contract violations 0 ≤ 0 over 24h, 4,990 checked",
				"upstream errors 0% ≤ 1% over 24h, 5,000 requests",
			},
		},
		{
			name:    "envelope contract violations",
			e:       Evidence{Mode: ModeEnvelope, Requests: 5000, ContractChecked: 5000, ContractViolations: 3, ViolationKinds: []string{"402 payment_required (undocumented_code)"}},
			state:   NotReady,
			reasons: []string{"contract violations 3 > 0 over 24h (402 payment_required (undocumented_code)), 5,000 checked"},
		},
		{
			name:    "shadow dry-run contract violations on tiny traffic",
			e:       Evidence{Mode: ModeShadow, Requests: 12, DryRuns: 12, ContractChecked: 12, ContractViolations: 1, ViolationKinds: []string{"200 (schema)"}},
			state:   NotReady,
			reasons: []string{"contract violations 1 > 0 over 24h (200 (schema)), 12 checked"},
		},
		{
			name:  "contract violations equal to the threshold",
			e:     Evidence{Mode: ModeEnvelope, Requests: 1000, ContractChecked: 1000, ContractViolations: 2},
			tweak: func(t *Thresholds) { t.MaxContractViolations = 2 },
			state: Ready,
			reasons: []string{
				"unmapped 0 ≤ 0 over 24h",
				"contract violations 2 ≤ 2 over 24h, 1,000 checked",
				"upstream errors 0% ≤ 1% over 24h, 1,000 requests",
			},
		},
		{
			name:    "envelope unmapped",
			e:       Evidence{Mode: ModeEnvelope, Requests: 5000, Unmapped: 3, UnmappedCodes: []string{"LEGACY_42"}},
			state:   NotReady,
			reasons: []string{"unmapped 3 > 0 (LEGACY_42) over 24h"},
		},
		{
			name:    "envelope upstream errors over the ratio",
			e:       Evidence{Mode: ModeEnvelope, Requests: 2000, UpstreamErrors: 60},
			state:   NotReady,
			reasons: []string{"upstream errors 3% > 1% over 24h, 2,000 requests"},
		},
		{
			name:    "envelope under min_requests",
			e:       Evidence{Mode: ModeEnvelope, Requests: 200},
			state:   InsufficientEvidence,
			reasons: []string{"200 requests < 1,000 needed over 24h"},
		},
		{
			name:    "envelope with no requests",
			e:       Evidence{Mode: ModeEnvelope},
			state:   InsufficientEvidence,
			reasons: []string{"0 requests < 1,000 needed over 24h"},
		},
		{
			name:    "legacy",
			e:       Evidence{Mode: ModeLegacy, Requests: 4000},
			state:   InsufficientEvidence,
			reasons: []string{"mode legacy: nothing is rewritten or compared (4,000 requests over 24h); switch it to shadow to gather evidence"},
		},
		{
			name:    "no mode is legacy",
			e:       Evidence{Requests: 7},
			tweak:   func(t *Thresholds) { t.Window = 7 * 24 * time.Hour },
			state:   InsufficientEvidence,
			reasons: []string{"mode legacy: nothing is rewritten or compared (7 requests over 7d); switch it to shadow to gather evidence"},
		},
		{
			name:  "mismatch ratio equal to the threshold",
			e:     Evidence{Mode: ModeShadow, Requests: 3000, Compared: 3000, Mismatches: 3},
			state: Ready,
			reasons: []string{
				"unmapped 0 ≤ 0 over 24h",
				"candidate errors 0% ≤ 1% over 24h, 3,000 replays",
				"mismatch 0.1% ≤ 0.1% over 24h, 3,000 compared",
			},
		},
		{
			name:  "candidate errors ratio equal to the threshold",
			e:     Evidence{Mode: ModeShadow, Requests: 2000, Compared: 1980, CandidateErrors: 20},
			state: Ready,
			reasons: []string{
				"unmapped 0 ≤ 0 over 24h",
				"candidate errors 1% ≤ 1% over 24h, 2,000 replays",
				"mismatch 0% ≤ 0.1% over 24h, 1,980 compared",
			},
		},
		{
			name:  "upstream errors ratio equal to the threshold",
			e:     Evidence{Mode: ModeEnvelope, Requests: 1000, UpstreamErrors: 10},
			state: Ready,
			reasons: []string{
				"unmapped 0 ≤ 0 over 24h",
				"upstream errors 1% ≤ 1% over 24h, 1,000 requests",
			},
		},
		{
			name:  "unmapped equal to the threshold",
			e:     Evidence{Mode: ModeEnvelope, Requests: 1000, Unmapped: 2, UnmappedCodes: []string{"E1"}},
			tweak: func(t *Thresholds) { t.MaxUnmapped = 2 },
			state: Ready,
			reasons: []string{
				"unmapped 2 ≤ 2 over 24h",
				"upstream errors 0% ≤ 1% over 24h, 1,000 requests",
			},
		},
		{
			name:    "requests equal to min_requests",
			e:       Evidence{Mode: ModeEnvelope, Requests: 1000},
			tweak:   func(t *Thresholds) { t.Window = 90 * time.Minute },
			state:   Ready,
			reasons: []string{"unmapped 0 ≤ 0 over 90m", "upstream errors 0% ≤ 1% over 90m, 1,000 requests"},
		},
		{
			name:    "small ratios keep their precision",
			e:       Evidence{Mode: ModeShadow, Requests: 100000, Compared: 100000, Mismatches: 14},
			tweak:   func(t *Thresholds) { t.MaxMismatchRatio = 0.00012 },
			state:   NotReady,
			reasons: []string{"mismatch 0.014% > 0.012% over 24h, 100,000 compared"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			th := thresholds
			if c.tweak != nil {
				c.tweak(&th)
			}
			got := Decide(c.e, th)
			if got.State != c.state {
				t.Errorf("state: got %q; want %q", got.State, c.state)
			}
			if !slices.Equal(got.Reasons, c.reasons) {
				t.Errorf("reasons: got %q; want %q", got.Reasons, c.reasons)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		name string
		r    float64
		want string
	}{
		{"zero", 0, "0%"},
		{"tenths", 0.004, "0.4%"},
		{"one tenth", 0.001, "0.1%"},
		{"rounded to tenths", 12.0 / 3112, "0.4%"},
		{"below a tenth", 0.00012, "0.012%"},
		{"below a hundredth", 0.000012, "0.0012%"},
		{"all", 1, "100%"},
		{"half", 0.5, "50%"},
		{"with a decimal", 0.025, "2.5%"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Percent(c.r); got != c.want {
				t.Errorf("got %q; want %q", got, c.want)
			}
		})
	}
}

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want string
	}{
		{0, "0"},
		{999, "999"},
		{1000, "1,000"},
		{3112, "3,112"},
		{100000, "100,000"},
		{1234567, "1,234,567"},
	} {
		t.Run(c.want, func(t *testing.T) {
			if got := Count(c.n); got != c.want {
				t.Errorf("got %q; want %q", got, c.want)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{24 * time.Hour, "24h"},
		{90 * time.Minute, "90m"},
		{168 * time.Hour, "7d"},
		{48 * time.Hour, "2d"},
		{time.Hour + 30*time.Minute, "90m"},
		{36 * time.Hour, "36h"},
		{45 * time.Second, "45s"},
	} {
		t.Run(c.d.String(), func(t *testing.T) {
			if got := Window(c.d); got != c.want {
				t.Errorf("got %q; want %q", got, c.want)
			}
		})
	}
}
