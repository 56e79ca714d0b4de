package proxy

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"go.uber.org/zap"
)

// TestExchangeReset checks that a pooled exchange carries nothing of its
// last request into the next but what reset keeps on purpose: its bound
// ReverseProxy, its copy pool and the emptied buffer for unmapped bodies.
func TestExchangeReset(t *testing.T) {
	h, err := New(settingsOf(testConfig("http://127.0.0.1:1")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := h.exchanges.Get().(*exchange)
	ex.snap = h.current.Load()
	ex.decision = Decision{Mode: config.ModeEnvelope, Client: "acme", HasKey: true, KeyID: [4]byte{1, 2, 3, 4}}
	ex.method, ex.path, ex.rawQuery = "POST", "/v1/orders", "token=secret"
	ex.start, ex.upstreamStart = time.Now(), time.Now()
	ex.upstreamStatus, ex.upstreamTime, ex.upstreamError = 403, time.Second, upstreamReset
	ex.result = transform.Result{Action: transform.Rewrite, Status: 402, Rule: "insufficient_credits"}
	ex.w.status, ex.w.bytes = 402, 99
	ex.copyBufs.large = true
	ex.accessFields[0] = zap.String("method", "POST")
	ex.keyIDHex[0] = 'f'
	ex.reqBody = &requestBody{}
	ex.shadow.active = true
	ex.record.Client = "acme"
	ex.reqHeader = http.Header{"X-Api-Key": {"secret"}}
	ex.contractEnvelope.Client = "acme"
	ex.unmappedCode, ex.unmappedTruncated = "quota", true
	ex.unmappedBody = append(ex.unmappedBody[:0], `{"error":"x"}`...)
	ex.bodyErr = errBadEncoding
	ex.clientError, ex.buffered, ex.bufferedBody = clientRequestBody, true, &bufferedBody{}
	ex.headAsGet, ex.rangeSpec, ex.ifRange, ex.ifNoneMatch = true, "bytes=0-1", `"v1"`, `W/"v1.env-00000000"`
	ex.respBody = pooledBody{off: len(`{"data":`)}
	rp, pool := ex.rp, ex.copyBufs.pool
	kept := map[string]bool{"rp": true, "copyBufs": true, "unmappedBody": true}
	v := reflect.ValueOf(ex).Elem()
	for i := range v.NumField() {
		// Every other field is set, so that reset is seen to clear it; a
		// field added to exchange must be set here too.
		if name := v.Type().Field(i).Name; !kept[name] && v.Field(i).IsZero() {
			t.Fatalf("field %s is not set before reset; set it in this test", name)
		}
	}

	ex.reset()

	if ex.copyBufs.pool != pool || ex.rp.BufferPool != rp.BufferPool || ex.rp.Transport != rp.Transport {
		t.Errorf("reset lost the exchange's ReverseProxy or copy pool")
	}
	if len(ex.unmappedBody) != 0 || cap(ex.unmappedBody) == 0 {
		t.Errorf("unmapped body buffer: got len %d cap %d; want len 0, capacity kept", len(ex.unmappedBody), cap(ex.unmappedBody))
	}
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if kept[name] {
			continue
		}
		if !v.Field(i).IsZero() {
			t.Errorf("field %s survived reset: got %v; want the zero value", name, v.Field(i))
		}
	}
	if ex.copyBufs.large {
		t.Errorf("copyBufs.large survived reset")
	}
}
