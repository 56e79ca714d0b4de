package contract

import (
	"context"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	builtin, jobs := builtinDoc(t), jobsDoc(t)
	tests := []struct {
		name      string
		doc       *Document
		e         Envelope
		reason    string
		extension bool
		operation string
		detail    string
	}{
		{name: "success", doc: builtin, e: Envelope{Method: "GET", Path: "/v1/jobs/1", Status: 200, Body: []byte(`{"data":{"id":1},"success":true,"message":"OK"}`)}},
		{name: "success with null data", doc: builtin, e: Envelope{Method: "POST", Path: "/v1/jobs", Status: 201, Body: []byte(`{"data":null,"success":true,"message":"OK"}`)}},
		{name: "success without message", doc: builtin, e: Envelope{Method: "GET", Path: "/", Status: 200, Body: []byte(`{"data":[],"success":true}`)}, reason: ReasonSchema, detail: "message"},
		{name: "success false on 200", doc: builtin, e: Envelope{Method: "GET", Path: "/", Status: 200, Body: []byte(`{"data":[],"success":false,"message":"OK"}`)}, reason: ReasonSchema},
		{name: "documented code", doc: builtin, e: Envelope{Method: "POST", Path: "/v1/jobs", Status: 402, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"insufficient_credits":["m"]}]}`)}},
		{name: "extension code", doc: builtin, e: Envelope{Method: "POST", Path: "/v1/jobs", Status: 402, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"trial_expired":["m"]}]}`)}, extension: true},
		{name: "undocumented code", doc: builtin, e: Envelope{Method: "POST", Path: "/v1/jobs", Status: 402, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"payment_required":["m"]}]}`)}, reason: ReasonUndocumentedCode, detail: `not "payment_required"`},
		{name: "code of another status", doc: builtin, e: Envelope{Method: "GET", Path: "/", Status: 403, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"insufficient_credits":["m"]}]}`)}, reason: ReasonUndocumentedCode},
		{name: "undocumented status", doc: builtin, e: Envelope{Method: "GET", Path: "/", Status: 404, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"not_found":["m"]}]}`)}, reason: ReasonUndocumentedStatus},
		{name: "errors keyed by field", doc: builtin, e: Envelope{Method: "POST", Path: "/v1/jobs", Status: 400, Fields: true, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"session_id":["required"]}]}`)}, extension: true},
		{name: "fields where only codes are documented", doc: builtin, e: Envelope{Method: "POST", Path: "/v1/jobs", Status: 402, Fields: true, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"session_id":["required"]}]}`)}, reason: ReasonUndocumentedCode},
		{name: "an error without errors", doc: builtin, e: Envelope{Method: "GET", Path: "/", Status: 500, Body: []byte(`{"data":null,"success":false,"message":"m"}`)}, reason: ReasonSchema},
		{name: "data on an error", doc: builtin, e: Envelope{Method: "GET", Path: "/", Status: 500, Body: []byte(`{"data":{},"success":false,"message":"m","errors":[{"internal_error":["m"]}]}`)}, reason: ReasonSchema},
		{name: "the proxy's 502", doc: builtin, e: Envelope{Method: "GET", Path: "/", Status: 502, Body: []byte(`{"data":null,"success":false,"message":"Bad Gateway","errors":[{"bad_gateway":["Bad Gateway"]}]}`)}, extension: true},
		{name: "not JSON", doc: builtin, e: Envelope{Method: "GET", Path: "/", Status: 200, Body: []byte(`{"data":`)}, reason: ReasonNotJSON},
		{name: "route: valid", doc: jobs, e: Envelope{Method: "GET", Path: "/v1/jobs/7", Status: 200, Body: []byte(`{"data":{"id":7,"state":"done"},"success":true,"message":"OK"}`)}, operation: "/jobs/{id}"},
		{name: "route: HEAD is held to GET", doc: jobs, e: Envelope{Method: "HEAD", Path: "/v1/jobs/7", Status: 200, Body: []byte(`{"data":{"id":7,"state":"done"},"success":true,"message":"OK"}`)}, operation: "/jobs/{id}"},
		{name: "route: its schema", doc: jobs, e: Envelope{Method: "GET", Path: "/v1/jobs/7", Status: 200, Body: []byte(`{"data":{"id":"7","state":"done"},"success":true,"message":"OK"}`)}, reason: ReasonSchema, operation: "/jobs/{id}"},
		{name: "route: its enum", doc: jobs, e: Envelope{Method: "GET", Path: "/v1/jobs/7", Status: 200, Body: []byte(`{"data":{"id":7,"state":"lost"},"success":true,"message":"OK"}`)}, reason: ReasonSchema, operation: "/jobs/{id}"},
		{name: "route: its error codes", doc: jobs, e: Envelope{Method: "GET", Path: "/v1/jobs/7", Status: 404, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"not_found":["m"]}]}`)}, operation: "/jobs/{id}"},
		{name: "route: a code it does not document", doc: jobs, e: Envelope{Method: "GET", Path: "/v1/jobs/7", Status: 404, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"gone":["m"]}]}`)}, reason: ReasonUndocumentedCode, operation: "/jobs/{id}"},
		{name: "route: a status it does not document", doc: jobs, e: Envelope{Method: "GET", Path: "/v1/jobs/7", Status: 402, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"insufficient_credits":["m"]}]}`)}, reason: ReasonUndocumentedStatus, operation: "/jobs/{id}"},
		{name: "route: default response", doc: jobs, e: Envelope{Method: "GET", Path: "/v1/health", Status: 503, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"x":["m"]}]}`)}, operation: "/health"},
		{name: "no route: components by status", doc: jobs, e: Envelope{Method: "POST", Path: "/v1/other", Status: 402, Body: []byte(`{"data":null,"success":false,"message":"m","errors":[{"insufficient_credits":["m"]}]}`)}},
		{name: "no route: no response", doc: jobs, e: Envelope{Method: "POST", Path: "/v1/other", Status: 200, Body: []byte(`{"data":1,"success":true,"message":"OK"}`)}, reason: ReasonUndocumentedStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.doc.Check(context.Background(), tt.e)
			if f.Reason != tt.reason {
				t.Errorf("reason: got %q (%s); want %q", f.Reason, f.Detail, tt.reason)
			}
			if (f.Extension != "") != tt.extension {
				t.Errorf("extension: got %q; want one: %v", f.Extension, tt.extension)
			}
			if f.Operation != tt.operation {
				t.Errorf("operation: got %q; want %q", f.Operation, tt.operation)
			}
			if !strings.Contains(f.Detail, tt.detail) {
				t.Errorf("detail: got %q; want it to hold %q", f.Detail, tt.detail)
			}
		})
	}
}

// builtinDoc is the built-in contract, and jobsDoc the test document with
// a route of its own (testdata/jobs.openapi.yaml).
func builtinDoc(t *testing.T) *Document {
	t.Helper()
	doc, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func jobsDoc(t *testing.T) *Document {
	t.Helper()
	doc, err := Load("testdata/jobs.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return doc
}
