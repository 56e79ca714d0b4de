package evidence

import (
	"bytes"
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/envelope-proxy/envelope-proxy/verdict"
	"go.yaml.in/yaml/v3"
)

// The bounds and thresholds of the suggestions.
const (
	maxAnswerKeys = 128
	// minAgreement is the least number of compared exchanges of a legacy
	// status and code, and consistentShare the share of them the
	// candidate must answer alike, before its answer is suggested as the
	// rule: one odd answer is not a migration decision.
	minAgreement    = 3
	consistentShare = 0.9
)

// answerKey is one compared exchange's legacy, envelope (dry run) and
// candidate status and code. LegacyCode is the legacy body's own code,
// even where no rule names it.
type answerKey struct {
	LegacyStatus    int    `json:"legacy_status"`
	LegacyCode      string `json:"legacy_code"`
	EnvelopeStatus  int    `json:"envelope_status"`
	EnvelopeCode    string `json:"envelope_code"`
	CandidateStatus int    `json:"candidate_status"`
	CandidateCode   string `json:"candidate_code"`
}

// otherAnswer is the key the answers past maxAnswerKeys fold into.
var otherAnswer = answerKey{LegacyCode: otherKey}

// clipped is k with its codes bounded, as kept.
func (k answerKey) clipped() answerKey {
	k.LegacyCode, k.EnvelopeCode, k.CandidateCode = clip(k.LegacyCode, maxCodeLen), clip(k.EnvelopeCode, maxCodeLen), clip(k.CandidateCode, maxCodeLen)
	return k
}

type storedAnswer struct {
	answerKey
	Count uint64 `json:"count"`
}

// addAnswer counts a comparison the candidate answered by its three
// statuses and codes.
func (b *bucket) addAnswer(ev *event.Comparison) {
	if !ev.Outcome.Compared() || ev.LegacyStatus < 400 {
		return
	}
	k := answerKey{ev.LegacyStatus, ev.LegacyBodyCode, ev.EnvelopeStatus, ev.EnvelopeCode, ev.CandidateStatus, ev.CandidateCode}
	bump(&b.answers, k.clipped(), otherAnswer, maxAnswerKeys, 1)
}

// The kinds of a rule suggestion.
const (
	// SuggestUnmapped: a legacy error fell to the generic fallback; the
	// rule keeps its status and names its code.
	SuggestUnmapped = "unmapped"
	// SuggestCandidate: the candidate answers a legacy error otherwise
	// than the dry run, consistently; the rule answers as it does.
	SuggestCandidate = "candidate"
)

// Suggestions are GET /api/suggestions: ready-to-paste rules and
// shadow.ignore entries drawn from the evidence over the window. A
// suggestion the config in force already covers is not listed.
type Suggestions struct {
	GeneratedAt time.Time `json:"generated_at"`
	Window      string    `json:"window"`
	// Client limits the rule suggestions to one client's evidence; "" is
	// every client's. The ignore suggestions are always the fleet's:
	// shadow.ignore applies to every client.
	Client string             `json:"client,omitempty"`
	Rules  []RuleSuggestion   `json:"rules"`
	Ignore []IgnoreSuggestion `json:"ignore"`
}

// RuleSuggestion is one rule, with what motivated it.
type RuleSuggestion struct {
	Kind         string   `json:"kind"`
	LegacyStatus int      `json:"legacy_status"`
	LegacyCode   string   `json:"legacy_code"`
	Clients      []string `json:"clients"`
	// Count is the errors that motivated it: unmapped ones, or the
	// comparisons where the candidate answered as the rule does.
	Count  uint64         `json:"count"`
	Reason string         `json:"reason"`
	Rule   transform.Rule `json:"rule"`
	// Sample is a legacy body of the error (redacted, cut); for a
	// candidate suggestion, EnvelopeSample and CandidateSample are the
	// pair a mismatch showed.
	Sample          string `json:"sample,omitempty"`
	EnvelopeSample  string `json:"envelope_sample,omitempty"`
	CandidateSample string `json:"candidate_sample,omitempty"`
}

// IgnoreSuggestion is one JSON Pointer learned as the candidate's noise.
type IgnoreSuggestion struct {
	Pointer string `json:"pointer"`
	// Routes are the routes it was learned on; Count the double replays
	// whose answers differed there, of Checks on those routes.
	Routes []string `json:"routes"`
	Count  uint64   `json:"count"`
	Checks uint64   `json:"checks"`
}

// legacyKey is a legacy error's status and code.
type legacyKey struct {
	status int
	code   string
}

// suggestion gathers one legacy error's evidence across clients.
type suggestion struct {
	clients  []string
	unmapped uint64
	sample   string
	answers  map[answerKey]uint64
	pair     *event.Sample
}

// Suggestions draws rules from the evidence in the window, for one client
// when client is not "": for each legacy error the candidate consistently
// answers otherwise than the dry run, the rule that answers as it does;
// for each other error that fell to the generic fallback, a rule that
// keeps its status and names its code. And the JSON Pointers learned as the
// candidate's noise over every client's evidence, since shadow.ignore
// applies to every client, as shadow.ignore entries. What the rules and
// shadow.ignore in force cover is left out.
func (r *Recorder) Suggestions(client string) Suggestions {
	s := r.settings.Load()
	now := r.now()
	from := now.Add(-s.window()).Unix()
	out := Suggestions{GeneratedAt: now.UTC(), Window: verdict.Window(s.window()), Client: client, Rules: []RuleSuggestion{}, Ignore: []IgnoreSuggestion{}}
	byKey := map[legacyKey]*suggestion{}
	get := func(k legacyKey, name string) *suggestion {
		sg := byKey[k]
		if sg == nil {
			sg = &suggestion{answers: map[answerKey]uint64{}}
			byKey[k] = sg
		}
		if !slices.Contains(sg.clients, name) {
			sg.clients = append(sg.clients, name)
		}
		return sg
	}
	for name, cs := range *r.clients.Load() {
		if client != "" && name != client {
			continue
		}
		cs.mu.Lock()
		sum := cs.aggregate(from, true)
		for k, n := range sum.unmapped {
			if k.Code == otherKey {
				continue
			}
			sg := get(legacyKey{k.Status, k.Code}, name)
			sg.unmapped += n
			if u := cs.unmapped[k]; u != nil && sg.sample == "" && s.Samples {
				sg.sample = u.body
			}
		}
		for k, n := range sum.answers {
			if k == otherAnswer || k.LegacyCode == otherKey {
				continue
			}
			sg := get(legacyKey{k.LegacyStatus, k.LegacyCode}, name)
			sg.answers[k] += n
		}
		for _, m := range cs.mismatches {
			smp := m.sample
			if !s.Samples || smp.Time.Unix() < from {
				continue
			}
			k := legacyKey{smp.LegacyStatus, transform.LegacyCode([]byte(smp.LegacyBody))}
			if sg := byKey[k]; sg != nil && (sg.pair == nil || smp.Time.After(sg.pair.Time)) {
				cp := *smp
				sg.pair = &cp
			}
		}
		cs.mu.Unlock()
	}
	for k, sg := range byKey {
		if rs, ok := s.suggest(k, sg); ok {
			out.Rules = append(out.Rules, rs)
		}
	}
	slices.SortFunc(out.Rules, func(a, b RuleSuggestion) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.LegacyStatus, b.LegacyStatus), cmp.Compare(a.LegacyCode, b.LegacyCode))
	})
	out.Ignore = s.ignoreSuggestions(r.learnedNoise().report)
	return out
}

// suggest makes the rule for one legacy error, if there is one to make and
// the rules in force do not cover it already.
func (s *settings) suggest(k legacyKey, sg *suggestion) (RuleSuggestion, bool) {
	slices.Sort(sg.clients)
	rs := RuleSuggestion{LegacyStatus: k.status, LegacyCode: k.code, Clients: sg.clients, Sample: sg.sample}
	body := legacyBody(k, sg.sample, sg.pair)
	if cand, n, total, ok := consistentAnswer(sg.answers); ok {
		if res := s.rewrite(k.status, body); res.Status == cand.CandidateStatus && res.Code == cand.CandidateCode {
			return rs, false
		}
		rs.Kind, rs.Count = SuggestCandidate, n
		rs.Reason = fmt.Sprintf("the candidate answers legacy %s with %d %s in %d of %d comparisons, where the dry run sends %d %s",
			legacyName(k), cand.CandidateStatus, cand.CandidateCode, n, total, cand.EnvelopeStatus, codeLabel(cand.EnvelopeCode))
		rs.Rule = matchRule(k, body)
		rs.Rule.Status, rs.Rule.Code = cand.CandidateStatus, cand.CandidateCode
		if sg.pair != nil {
			rs.Sample = cmp.Or(rs.Sample, sg.pair.LegacyBody)
			rs.EnvelopeSample, rs.CandidateSample = sg.pair.EnvelopeBody, sg.pair.CandidateBody
		}
		return rs, rs.Rule.Match.Code != "" || rs.Rule.Match.Message != ""
	}
	if sg.unmapped == 0 || !s.rewrite(k.status, body).Unmapped {
		return rs, false
	}
	rs.Kind, rs.Count = SuggestUnmapped, sg.unmapped
	rs.Reason = fmt.Sprintf("legacy %s fell to the generic fallback %s", legacyName(k), times(sg.unmapped))
	rs.Rule = matchRule(k, body)
	rs.Rule.Status, rs.Rule.Code = k.status, cmp.Or(k.code, transform.StatusCode(k.status))
	if k.code == "" && rs.Rule.Match.Message == "" {
		// Without a code or a message, the rule would take every error of
		// the status, the built-in rules' too.
		return rs, false
	}
	return rs, true
}

// consistentAnswer is the candidate's answer to a legacy error when it is
// the same (status and code) in at least consistentShare of at least
// minAgreement comparisons, and differs from the dry run's.
func consistentAnswer(answers map[answerKey]uint64) (top answerKey, n, total uint64, ok bool) {
	type reply struct {
		status int
		code   string
	}
	byReply := map[reply]uint64{}
	var keyOf = map[reply]answerKey{}
	for k, c := range answers {
		total += c
		rp := reply{k.CandidateStatus, k.CandidateCode}
		byReply[rp] += c
		if cur, seen := keyOf[rp]; !seen || answers[cur] < c {
			keyOf[rp] = k
		}
	}
	for rp, c := range byReply {
		if c > n {
			n, top = c, keyOf[rp]
		}
	}
	if total < minAgreement || float64(n) < consistentShare*float64(total) {
		return answerKey{}, 0, 0, false
	}
	if top.CandidateStatus == top.EnvelopeStatus && top.CandidateCode == top.EnvelopeCode {
		return answerKey{}, 0, 0, false
	}
	return top, n, total, true
}

// legacyBody is the body a suggestion is tested with: its sample when it
// is the legacy error's JSON, else one made of its code.
func legacyBody(k legacyKey, sample string, pair *event.Sample) []byte {
	candidates := []string{sample}
	if pair != nil {
		candidates = append(candidates, pair.LegacyBody)
	}
	for _, b := range candidates {
		if b != "" && transform.Valid([]byte(b)) && transform.LegacyCode([]byte(b)) == k.code {
			return []byte(b)
		}
	}
	if k.code == "" {
		return []byte(`{}`)
	}
	return fmt.Appendf(nil, `{"error": "", "code": %s}`, strconv.Quote(k.code))
}

// matchRule is a rule matching the legacy error k: by status and code, or
// by status and exact message when it has no code.
func matchRule(k legacyKey, body []byte) transform.Rule {
	r := transform.Rule{Name: cmp.Or(k.code, transform.StatusCode(k.status)), Match: transform.Match{Status: k.status, Code: k.code}}
	if k.code == "" {
		if msg := transform.LegacyMessage(body); msg != "" {
			r.Match.Message = "^" + regexp.QuoteMeta(msg) + "$"
		}
	}
	return r
}

// rewrite is what the rules in force make of a legacy error.
func (s *settings) rewrite(status int, body []byte) transform.Result {
	if s.transformer == nil {
		return transform.Result{Unmapped: true}
	}
	_, res := s.transformer.AppendError(nil, status, body)
	return res
}

// ignoreSuggestions turns the learned noise into shadow.ignore entries,
// one per pointer, leaving out those shadow.ignore has already.
func (s *settings) ignoreSuggestions(noise []routeNoise) []IgnoreSuggestion {
	byPointer := map[string]*IgnoreSuggestion{}
	for _, rn := range noise {
		for _, p := range rn.paths {
			if slices.Contains(s.Ignore, p.Path) {
				continue
			}
			is := byPointer[p.Path]
			if is == nil {
				is = &IgnoreSuggestion{Pointer: p.Path}
				byPointer[p.Path] = is
			}
			is.Routes = append(is.Routes, rn.route)
			is.Count += p.Count
			is.Checks += rn.checks
		}
	}
	out := []IgnoreSuggestion{}
	for _, is := range byPointer {
		slices.Sort(is.Routes)
		out = append(out, *is)
	}
	slices.SortFunc(out, func(a, b IgnoreSuggestion) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Pointer, b.Pointer))
	})
	return out
}

// times is "once", "2 times".
func times(n uint64) string {
	if n == 1 {
		return "once"
	}
	return verdict.Count(n) + " times"
}

func legacyName(k legacyKey) string {
	if k.code == "" {
		return strconv.Itoa(k.status) + " (no code)"
	}
	return strconv.Itoa(k.status) + " " + k.code
}

// YAML renders the suggestions as a config fragment: a rules: block, and a
// shadow.ignore block when noise was learned, each entry under a comment
// saying what motivated it. `envelope-proxy validate` accepts it as it is.
func (s *Suggestions) YAML() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
	if len(s.Rules) == 0 && len(s.Ignore) == 0 {
		doc.HeadComment = "No suggestion: no unmapped error, no consistent difference with the candidate and no learned noise over " + s.Window + "."
		root.Style = yaml.FlowStyle
		return encodeYAML(doc)
	}
	if len(s.Rules) > 0 {
		rules := &yaml.Node{Kind: yaml.SequenceNode}
		for _, rs := range s.Rules {
			n := &yaml.Node{}
			if err := n.Encode(rs.Rule); err != nil {
				return nil, fmt.Errorf("encoding a suggested rule: %w", err)
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "match" {
					n.Content[i+1].Style = yaml.FlowStyle
				}
			}
			n.HeadComment = rs.Reason + " (" + strings.Join(rs.Clients, ", ") + ")"
			if rs.Sample != "" {
				n.HeadComment += "\nlegacy: " + oneLine(rs.Sample)
			}
			if rs.CandidateSample != "" {
				n.HeadComment += "\ncandidate: " + oneLine(rs.CandidateSample)
			}
			rules.Content = append(rules.Content, n)
		}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "rules"}, rules)
	}
	if len(s.Ignore) > 0 {
		ignore := &yaml.Node{Kind: yaml.SequenceNode}
		for _, is := range s.Ignore {
			ignore.Content = append(ignore.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: is.Pointer,
				HeadComment: fmt.Sprintf("the candidate's two answers differed here in %d of %d double replays (%s)", is.Count, is.Checks, strings.Join(is.Routes, ", "))})
		}
		shadow := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "ignore"}, ignore}}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "shadow"}, shadow)
	}
	return encodeYAML(doc)
}

// encodeYAML writes doc indented as config.yaml is, by two spaces.
func encodeYAML(doc *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding suggestions: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding suggestions: %w", err)
	}
	return b.Bytes(), nil
}

// oneLine is a sample fit for a YAML comment: one line, cut.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	out, cut := transform.CutString(s, 200)
	if cut {
		out += "…"
	}
	return out
}
