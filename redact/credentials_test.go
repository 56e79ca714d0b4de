package redact

import (
	"net/http"
	"testing"
)

func TestCredentials(t *testing.T) {
	h := http.Header{
		"X-Api-Key":     {"sk_live_0123456789"},
		"Authorization": {"Bearer tok-abcdefgh"},
		"Cookie":        {"session=SESSION-SECRET-abcdef; theme=dark-mode-on"},
		"X-Auth-Token":  {"xat-123456"},
		"Accept":        {"application/json-long-value"},
		"X-Short-Key":   {"abc"},
	}
	s := Credentials("X-API-Key", h)
	body := `{"error":"refused sk_live_0123456789 with tok-abcdefgh, session=SESSION-SECRET-abcdef, xat-123456; accept application/json-long-value; abc"}`
	want := `{"error":"refused [redacted] with [redacted], session=[redacted], [redacted]; accept application/json-long-value; abc"}`
	for _, tc := range []struct {
		name string
		got  string
	}{
		{"String", s.String(body)},
		{"Bytes", string(s.Bytes([]byte(body)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != want {
				t.Errorf("got %q; want %q", tc.got, want)
			}
		})
	}
	for i := 1; i < len(s); i++ {
		if len(s[i]) > len(s[i-1]) {
			t.Errorf("secrets not longest first: %q", []string(s))
		}
	}
}
