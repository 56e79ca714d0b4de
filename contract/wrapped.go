package contract

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/getkin/kin-openapi/openapi3"
)

// minWrappedStandIn is the smallest wrapped success whose data is replaced
// by a stand-in when the contract leaves data free: below it, the memo
// (which keeps bodies up to maxMemoBody) already makes repeats cheap, and
// a check costs microseconds.
const minWrappedStandIn = maxMemoBody

// standIn returns, for a large success the proxy wrapped (e.Wrapped) whose
// response in the document leaves data free (dataFree), the same envelope
// with data replaced by the smallest value of the same JSON type: {} for
// an object, [] for an array, "" for a string, 0 for a number, and true,
// false or null as they are. The finding is then the one the whole
// envelope would get: a free data schema accepts every value but null
// unless it is nullable, and the stand-in is null exactly when data is;
// the rest of the envelope is byte for byte the same. It spares the
// request path a copy of the body, up to max_body_bytes, and the checks a
// decoding of it: on the load benchmark's 1 MiB wrap, a check of the whole
// envelope takes 32 ms and 182,658 allocations (kin-openapi walks the
// decoded MiB), and Submit's copy is a fresh MiB per request, since pooled
// job buffers are kept only up to maxKeptBody. With stand-ins,
// envelope-proxy's CPU per request on that workload went from 2.3 to
// 1.5 ms in interleaved runs (1.2 ms with the checks off, which this
// machine's noise does not tell apart), and the checks left its CPU
// profile; the stand-ins are shared, so Submit still allocates nothing
// (BenchmarkSubmit/1MiB-wrap). ok is false when e does not qualify, and it
// is then checked whole.
//
// A violation found on the stand-in (only the envelope's other members,
// which the proxy writes itself, can break the contract) is sampled from
// the stand-in.
func standIn(d *Document, e *event.Envelope) (body []byte, ok bool) {
	prefix, suffix := transform.SuccessPrefix(), transform.SuccessSuffix()
	b := e.Body
	if !e.Wrapped || len(b) < minWrappedStandIn || !bytes.HasPrefix(b, []byte(prefix)) || !bytes.HasSuffix(b, []byte(suffix)) {
		return nil, false
	}
	data := bytes.TrimLeft(b[len(prefix):len(b)-len(suffix)], " \t\r\n")
	if len(data) == 0 {
		return nil, false
	}
	c := data[0]
	if c == '-' || c >= '0' && c <= '9' {
		c = '0'
	}
	body = standIns[c]
	if body == nil || !d.dataFree(e.Status) {
		return nil, false
	}
	return body, true
}

// standIns are the stand-in envelopes by the first byte of data ('0' for
// every number). They are shared and never written to.
var standIns = func() map[byte][]byte {
	m := map[byte][]byte{}
	for c, value := range map[byte]string{'{': "{}", '[': "[]", '"': `""`, '0': "0", 't': "true", 'f': "false", 'n': "null"} {
		m[c] = transform.AppendSuccess(nil, []byte(value))
	}
	return m
}()

// dataFree reports whether every success envelope of status is held to a
// schema that leaves data free: the document describes no paths (so the
// response is components.responses' for the status, whatever the route),
// the response's schema is an object schema that constrains data only
// through properties.data, and that schema has no keyword that constrains
// a value (dataSchemaFree). The answer is computed once per status.
func (d *Document) dataFree(status int) bool {
	if v, ok := d.free.Load(status); ok {
		return v.(bool)
	}
	free := d.computeDataFree(status)
	d.free.Store(status, free)
	return free
}

func (d *Document) computeDataFree(status int) bool {
	if d.describesPaths() {
		return false
	}
	resp := d.response(nil, status)
	if resp == nil {
		return false
	}
	mt := resp.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return false
	}
	s := mt.Schema.Value
	// The envelope's schema: an object schema with no keyword that could
	// reach data other than properties (no allOf, patternProperties,
	// dependentSchemas, if/then, unevaluatedProperties, ...). required,
	// additionalProperties and the other properties hold the stand-in
	// exactly as the whole envelope: its members are the same.
	if !onlyKeywords(s, "type", "required", "properties", "additionalProperties", "description", "title", "nullable") ||
		s.Type == nil || !s.Type.Is("object") {
		return false
	}
	ref := s.Properties["data"]
	if ref == nil || ref.Value == nil {
		// No data property: data is then held to additionalProperties,
		// which is not looked into here.
		return false
	}
	return dataSchemaFree(ref.Value)
}

// dataSchemaFree reports whether s accepts every JSON value (and null when
// nullable): it has no keyword but the annotations.
func dataSchemaFree(s *openapi3.Schema) bool {
	return onlyKeywords(s, "nullable", "description", "title", "example", "examples", "deprecated", "externalDocs")
}

// onlyKeywords reports whether s, as the document states it, has no
// keyword but the allowed ones and extensions ("x-..."). It reads s's JSON
// form, so that a keyword kin-openapi adds later is refused rather than
// missed; a boolean schema (true or false) is refused too.
func onlyKeywords(s *openapi3.Schema, allowed ...string) bool {
	raw, err := json.Marshal(s)
	if err != nil {
		return false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return false
	}
outer:
	for k := range m {
		if strings.HasPrefix(k, "x-") {
			continue
		}
		for _, a := range allowed {
			if k == a {
				continue outer
			}
		}
		return false
	}
	return true
}
