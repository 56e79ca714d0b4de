package contract

import (
	"context"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// freeDataDoc describes no paths and leaves data free but not nullable on
// 200, and constrains it on 201.
const freeDataDoc = `openapi: 3.0.3
info: {title: t, version: "1"}
paths: {}
components:
  responses:
    "200":
      description: free data, not nullable
      content:
        application/json:
          schema:
            type: object
            required: [data, success, message]
            additionalProperties: false
            properties:
              data: {description: anything but null}
              success: {type: boolean, enum: [true]}
              message: {type: string}
    "201":
      description: data must be an array
      content:
        application/json:
          schema:
            type: object
            properties:
              data: {type: array, items: {}}
    "202":
      description: the envelope through allOf
      content:
        application/json:
          schema:
            allOf:
              - type: object
                properties:
                  data: {}
`

func TestDataFree(t *testing.T) {
	builtin := testSettings(t).Document
	free, err := Parse([]byte(freeDataDoc), "free")
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := Load("testdata/jobs.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		doc    *Document
		status int
		want   bool
	}{
		{"built-in 200", builtin, 200, true},
		{"built-in 206", builtin, 206, true},
		{"built-in 402 (an error)", builtin, 402, false},
		{"built-in 299 (no response)", builtin, 299, false},
		{"free, not nullable", free, 200, true},
		{"data an array", free, 201, false},
		{"allOf", free, 202, false},
		{"a document with paths", jobs, 200, false},
	} {
		if got := tc.doc.dataFree(tc.status); got != tc.want {
			t.Errorf("%s: dataFree(%d) = %v; want %v", tc.name, tc.status, got, tc.want)
		}
	}
}

// wrapped is the envelope the proxy sends for a success body data, padded
// to at least minWrappedStandIn bytes with whitespace inside data.
func wrapped(data string) *event.Envelope {
	if pad := minWrappedStandIn - len(data); pad > 0 {
		data += strings.Repeat(" ", pad)
	}
	e := envelope(200, "", string(transform.AppendSuccess(nil, []byte(data))))
	e.Wrapped = true
	return e
}

// TestStandInKeepsTheFinding holds the whole envelope and its stand-in to
// the same documents: the findings must be the same.
func TestStandInKeepsTheFinding(t *testing.T) {
	builtin := testSettings(t).Document
	free, err := Parse([]byte(freeDataDoc), "free")
	if err != nil {
		t.Fatal(err)
	}
	large := `[` + strings.Repeat(`{"id":9007199254740993,"name":"caf\u00e9","tags":["a","b"],"v":-3.5e2,"ok":true,"n":null},`, 200) + `{}]`
	datas := []string{large, `{"a":[1,{"b":null}]}`, `"text"`, `-12.5e3`, `0`, `true`, `false`, `null`, " \n\t[1,2]"}
	for _, doc := range []*Document{builtin, free} {
		for _, data := range datas {
			e := wrapped(data)
			stand, ok := standIn(doc, e)
			if !ok {
				t.Fatalf("%s: no stand-in for %.20q", doc.name, data)
			}
			if len(stand) > 64 {
				t.Errorf("stand-in of %d bytes: %q", len(stand), stand)
			}
			whole := doc.Check(context.Background(), Envelope{Method: "GET", Path: "/x", Status: 200, Body: e.Body})
			got := doc.Check(context.Background(), Envelope{Method: "GET", Path: "/x", Status: 200, Body: stand})
			if got.Reason != whole.Reason || got.Extension != whole.Extension || got.Operation != whole.Operation {
				t.Errorf("%s, data %.20q: stand-in %q gets %+v; the whole envelope %+v", doc.name, data, stand, got, whole)
			}
		}
	}
	// The free, not nullable document refuses null data: the stand-in
	// keeps that.
	if f := free.Check(context.Background(), Envelope{Status: 200, Body: []byte(`{"data":null,"success":true,"message":"OK"}`)}); !f.Broken() {
		t.Error("free document: null data passes; the test above would not tell null from a value")
	}
}

// TestStandInOnlyForLargeWraps: an envelope that is not the proxy's wrap,
// a small one, or one held to data constraints is checked whole.
func TestStandInOnlyForLargeWraps(t *testing.T) {
	builtin := testSettings(t).Document
	free, err := Parse([]byte(freeDataDoc), "free")
	if err != nil {
		t.Fatal(err)
	}
	notMarked := wrapped(`[1]`)
	notMarked.Wrapped = false
	small := wrapped(`[1]`)
	small.Body = transform.AppendSuccess(nil, []byte(`[1]`))
	otherSuffix := wrapped(`[1]`)
	otherSuffix.Body = append(otherSuffix.Body[:len(otherSuffix.Body)-1], `,"x":1}`...)
	constrained := wrapped(`[1]`)
	constrained.Status = 201
	for _, tc := range []struct {
		name string
		doc  *Document
		e    *event.Envelope
	}{
		{"not marked wrapped", builtin, notMarked},
		{"small", builtin, small},
		{"another member after data", builtin, otherSuffix},
		{"data constrained", free, constrained},
	} {
		if b, ok := standIn(tc.doc, tc.e); ok {
			t.Errorf("%s: stand-in %q; want the whole envelope checked", tc.name, b)
		}
	}
}

// TestSubmitOfALargeWrap: the request path copies the stand-in, not the
// body, and the check is recorded as the whole envelope's.
func TestSubmitOfALargeWrap(t *testing.T) {
	rec := newRecording()
	c := newChecker(testSettings(t), Options{Recorder: rec})
	defer c.Close()
	e := wrapped(`[` + strings.Repeat(`{"id":1},`, 1000) + `{}]`)
	c.Submit(e)
	j := <-c.queue
	if len(j.body) > 64 {
		t.Errorf("queued %d bytes; want the stand-in", len(j.body))
	}
	c.run(j)
	if got := rec.next(t); got.Violation() || got.Status != 200 {
		t.Errorf("got %+v; want a conforming 200", got)
	}
	// Every later wrap of an array is the same stand-in: remembered.
	c.Submit(wrapped(`[2]`))
	if got := rec.next(t); got.Violation() {
		t.Errorf("got %+v; want a conforming 200", got)
	}
	if n := c.inflight.Load(); n != 0 {
		t.Errorf("checks in flight: %d; want 0", n)
	}
}
