package evidence

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

const suspendedBody = `{"error": "Your account is suspended", "code": "account_suspended"}`

// unmappedDryRun is a shadow dry run of watcher's whose error no rule
// matched.
func unmappedDryRun(status int, code, body string) event.Comparison {
	return event.Comparison{Client: "watcher", Outcome: event.OutcomeDryRun, Route: "POST /v1/detect", LegacyStatus: status, LegacyCode: transform.OtherCode,
		EnvelopeStatus: status, EnvelopeCode: code, Unmapped: true, LegacyBodyCode: code, UnmappedSample: body}
}

// answered is a comparison of watcher's in which the candidate answered
// candStatus and candCode to a legacy 403 account_suspended that the dry
// run sent as a 403.
func answered(candStatus int, candCode string) event.Comparison {
	outcome := event.OutcomeMismatch
	if candStatus == 403 {
		outcome = event.OutcomeMatch
	}
	return event.Comparison{Client: "watcher", Outcome: outcome, Route: "GET /v1/account", LegacyStatus: 403, LegacyCode: transform.OtherCode,
		EnvelopeStatus: 403, EnvelopeCode: "account_suspended", CandidateStatus: candStatus, CandidateCode: candCode,
		Unmapped: true, LegacyBodyCode: "account_suspended", UnmappedSample: suspendedBody}
}

func withRules(rules ...transform.Rule) func(*Settings) {
	return func(s *Settings) { s.Rules = rules }
}

func TestRuleSuggestions(t *testing.T) {
	suspended402 := transform.Rule{Name: "account_suspended", Match: transform.Match{Status: 403, Code: "account_suspended"}, Status: 402, Code: "account_suspended"}
	suspended403 := transform.Rule{Name: "account_suspended", Match: transform.Match{Status: 403, Code: "account_suspended"}, Status: 403, Code: "account_suspended"}
	tests := []struct {
		name     string
		events   []event.Comparison
		settings func(*Settings)
		want     []transform.Rule
		kinds    []string
	}{
		{
			name:   "an unmapped code: keep the status, name the code",
			events: []event.Comparison{unmappedDryRun(403, "account_suspended", suspendedBody), unmappedDryRun(403, "account_suspended", suspendedBody)},
			want:   []transform.Rule{suspended403},
			kinds:  []string{SuggestUnmapped},
		},
		{
			name:     "an unmapped code a rule covers now",
			events:   []event.Comparison{unmappedDryRun(403, "account_suspended", suspendedBody)},
			settings: withRules(suspended403),
		},
		{
			name:   "an unmapped error without a code: matched by its message",
			events: []event.Comparison{unmappedDryRun(409, "", `{"error": "Job already running"}`)},
			want:   []transform.Rule{{Name: "conflict", Match: transform.Match{Status: 409, Message: `^Job already running$`}, Status: 409, Code: "conflict"}},
			kinds:  []string{SuggestUnmapped},
		},
		{
			name:   "an unmapped error with neither code nor message: no rule that would take every 409",
			events: []event.Comparison{unmappedDryRun(409, "", `[1, 2]`)},
		},
		{
			name:   "the candidate answers otherwise, consistently: its answer",
			events: []event.Comparison{answered(402, "account_suspended"), answered(402, "account_suspended"), answered(402, "account_suspended")},
			want:   []transform.Rule{suspended402},
			kinds:  []string{SuggestCandidate},
		},
		{
			name:     "a rule answering as the candidate does covers it",
			events:   []event.Comparison{answered(402, "account_suspended"), answered(402, "account_suspended"), answered(402, "account_suspended")},
			settings: withRules(suspended402),
		},
		{
			name:   "the candidate answers alike once in three: the unmapped rule only",
			events: []event.Comparison{answered(402, "account_suspended"), answered(403, "account_suspended"), answered(402, "payment_failed")},
			want:   []transform.Rule{suspended403},
			kinds:  []string{SuggestUnmapped},
		},
		{
			name:   "too few comparisons to call it consistent",
			events: []event.Comparison{answered(402, "account_suspended"), answered(402, "account_suspended")},
			want:   []transform.Rule{suspended403},
			kinds:  []string{SuggestUnmapped},
		},
		{
			name: "a mapped error the candidate answers otherwise",
			events: slices.Repeat([]event.Comparison{{Client: "watcher", Outcome: event.OutcomeMismatch, Route: "GET /v1/keys", LegacyStatus: 403, LegacyCode: "key_limit_reached", LegacyBodyCode: "key_limit_reached",
				EnvelopeStatus: 403, EnvelopeCode: "key_limit_reached", CandidateStatus: 429, CandidateCode: "key_limit_reached"}}, 4),
			want:  []transform.Rule{{Name: "key_limit_reached", Match: transform.Match{Status: 403, Code: "key_limit_reached"}, Status: 429, Code: "key_limit_reached"}},
			kinds: []string{SuggestCandidate},
		},
		{
			// The built-in invalid_key rule matches every 401 by its
			// status: the rules name no code, the legacy body does.
			name: "an error a rule matches by status alone: matched by the body's code",
			events: slices.Repeat([]event.Comparison{{Client: "watcher", Outcome: event.OutcomeMismatch, Route: "GET /v1/keys", LegacyStatus: 401, LegacyCode: transform.OtherCode,
				LegacyBodyCode: "token_revoked", EnvelopeStatus: 401, EnvelopeCode: "invalid_key", CandidateStatus: 403, CandidateCode: "token_revoked"}}, 4),
			want:  []transform.Rule{{Name: "token_revoked", Match: transform.Match{Status: 401, Code: "token_revoked"}, Status: 403, Code: "token_revoked"}},
			kinds: []string{SuggestCandidate},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := testConfig("")
			if tt.settings != nil {
				tt.settings(&ts.Settings)
			}
			r := newTestRecorder(t, ts, start())
			for _, ev := range tt.events {
				r.RecordComparison(ev)
			}
			sg := r.Suggestions("")
			var got []transform.Rule
			var kinds []string
			for _, rs := range sg.Rules {
				got = append(got, rs.Rule)
				kinds = append(kinds, rs.Kind)
				if rs.Reason == "" || !slices.Equal(rs.Clients, []string{"watcher"}) {
					t.Errorf("suggestion %+v: want a reason and the client watcher", rs)
				}
			}
			if !slices.EqualFunc(got, tt.want, func(a, b transform.Rule) bool {
				return a.Name == b.Name && a.Match.Status == b.Match.Status && a.Match.Code == b.Match.Code && a.Match.Message == b.Match.Message && a.Status == b.Status && a.Code == b.Code
			}) {
				t.Errorf("rules:\n got %+v\nwant %+v", got, tt.want)
			}
			if !slices.Equal(kinds, tt.kinds) {
				t.Errorf("kinds: got %q; want %q", kinds, tt.kinds)
			}
			if other := r.Suggestions("acme"); len(other.Rules) != 0 {
				t.Errorf("acme's suggestions: got %+v; want none", other.Rules)
			}
		})
	}
}

// TestCoveredErrorsLeaveTheVerdict: an unmapped error that a rule added
// since covers no longer counts against the verdict, and is listed as
// covered.
func TestCoveredErrorsLeaveTheVerdict(t *testing.T) {
	ts := testConfig("")
	c := start()
	r := newTestRecorder(t, ts, c)
	for range 3 {
		r.RecordComparison(unmappedDryRun(403, "account_suspended", suspendedBody))
		r.RecordComparison(unmappedDryRun(418, "teapot", `{"error": "I'm a teapot", "code": "teapot"}`))
	}
	if got := summary(t, r, "watcher"); got.Unmapped != 6 {
		t.Fatalf("unmapped before: got %d; want 6", got.Unmapped)
	}
	withRules(transform.Rule{Match: transform.Match{Status: 403, Code: "account_suspended"}, Status: 402, Code: "account_suspended"})(&ts.Settings)
	r.Swap(ts.Settings)
	got := summary(t, r, "watcher")
	if got.Unmapped != 3 {
		t.Errorf("unmapped after the rule: got %d; want 3 (the teapots)", got.Unmapped)
	}
	if reasons := strings.Join(got.Verdict.Reasons, "; "); strings.Contains(reasons, "account_suspended") || !strings.Contains(reasons, "teapot") {
		t.Errorf("reasons: got %q; want the teapot, not the covered code", reasons)
	}
	d, _ := r.Client("watcher")
	for _, u := range d.UnmappedCodes {
		if want := u.Code == "account_suspended"; u.Covered != want {
			t.Errorf("%s: covered %v; want %v", u.Code, u.Covered, want)
		}
	}
}

func TestLearnedNoiseAndIgnoreSuggestions(t *testing.T) {
	ts := testConfig("")
	c := start()
	r := newTestRecorder(t, ts, c)
	noisy := func(route string, paths ...string) event.Comparison {
		return event.Comparison{Client: "watcher", Outcome: event.OutcomeMismatch, Route: route, LegacyStatus: 200, EnvelopeStatus: 200, CandidateStatus: 200,
			NoiseChecked: true, Noise: paths}
	}
	r.RecordComparison(noisy("GET /v1/jobs/{id}", "/data/request_id", "/data/at"))
	r.RecordComparison(noisy("GET /v1/jobs/{id}", "/data/request_id"))
	r.RecordComparison(noisy("GET /v1/jobs/{id}"))
	r.RecordComparison(noisy("GET /v1/keys", "/data/request_id"))
	if got, want := r.LearnedIgnores("GET /v1/jobs/{id}"), []string{"/data/at", "/data/request_id"}; !slices.Equal(got, want) {
		t.Errorf("learned on jobs: got %q; want %q", got, want)
	}
	if got := r.LearnedIgnores("GET /v1/other"); len(got) != 0 {
		t.Errorf("learned on a route never checked: got %q", got)
	}
	sg := r.Suggestions("")
	if len(sg.Ignore) != 2 || sg.Ignore[0].Pointer != "/data/request_id" || sg.Ignore[0].Count != 3 || sg.Ignore[0].Checks != 4 ||
		!slices.Equal(sg.Ignore[0].Routes, []string{"GET /v1/jobs/{id}", "GET /v1/keys"}) {
		t.Errorf("ignore suggestions: got %+v; want /data/request_id (3 of 4, two routes), then /data/at", sg.Ignore)
	}
	ts.Ignore = []string{"/data/request_id"}
	r.Swap(ts.Settings)
	if sg := r.Suggestions(""); len(sg.Ignore) != 1 || sg.Ignore[0].Pointer != "/data/at" {
		t.Errorf("with /data/request_id ignored already: got %+v; want /data/at only", sg.Ignore)
	}
	// The sum the comparison reads is kept a few seconds, then summed
	// again: newer noise shows after that.
	r.RecordComparison(noisy("GET /v1/jobs/{id}", "/data/etag"))
	c.advance(learnedTTL + time.Second)
	if got := r.LearnedIgnores("GET /v1/jobs/{id}"); !slices.Contains(got, "/data/etag") {
		t.Errorf("after %v: got %q; want /data/etag learned too", learnedTTL, got)
	}
}

// TestSuggestionsYAMLIsAConfig checks that the YAML the suggest command
// prints is a config validate accepts, with the rules and ignores in it.
func TestSuggestionsYAMLIsAConfig(t *testing.T) {
	ts := testConfig("")
	r := newTestRecorder(t, ts, start())
	for range 3 {
		r.RecordComparison(answered(402, "account_suspended"))
	}
	r.RecordComparison(unmappedDryRun(409, "", `{"error": "Job (7) already running: retry?"}`))
	r.RecordComparison(event.Comparison{Client: "watcher", Outcome: event.OutcomeMatch, Route: "GET /v1/jobs/{id}", LegacyStatus: 200, EnvelopeStatus: 200, CandidateStatus: 200,
		NoiseChecked: true, Noise: []string{"/data/at"}})
	sg := r.Suggestions("")
	b, err := sg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b)
	if err != nil {
		t.Fatalf("the YAML is not a valid config: %v\n%s", err, b)
	}
	if len(cfg.Rules) != 2 || cfg.Rules[0].Status != 402 || cfg.Rules[1].Match.Message != `^Job \(7\) already running: retry\?$` {
		t.Errorf("rules: got %+v\n%s", cfg.Rules, b)
	}
	if !slices.Equal(cfg.Shadow.Ignore, []string{"/data/at"}) {
		t.Errorf("shadow.ignore: got %q\n%s", cfg.Shadow.Ignore, b)
	}
	for _, want := range []string{"# the candidate answers legacy 403 account_suspended with 402 account_suspended in 3 of 3 comparisons", "# legacy: {\"error\": \"Your account is suspended\""} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the YAML lacks %q:\n%s", want, b)
		}
	}
	empty := Suggestions{Window: "24h"}
	b, err = empty.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse(b); err != nil || !strings.Contains(string(b), "No suggestion") {
		t.Errorf("no suggestion: got %q, %v; want a comment in a valid config", b, err)
	}
}
