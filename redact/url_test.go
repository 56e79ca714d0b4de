package redact

import (
	"strings"
	"testing"
)

func TestURLPassword(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"${ENVELOPE_PROXY_STATE_URL}", "${ENVELOPE_PROXY_STATE_URL}"},
		{"${A}x", "(connection string)"},
		{"postgres://envelope@db:5432/evidence?sslmode=require", "postgres://envelope@db:5432/evidence?sslmode=require"},
		{"postgres://envelope:s3cret@db:5432/evidence", "postgres://envelope:%5Bredacted%5D@db:5432/evidence"},
		{"postgresql://db/evidence?user=e&password=s3cret", "postgresql://db/evidence?password=%5Bredacted%5D&user=e"},
		{"host=db user=e password=s3cret dbname=evidence", "(connection string)"},
		{"postgres://e:s3cret@[::1", "(connection string)"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := URLPassword(tc.in)
			if got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("got %q, which holds the password", got)
			}
		})
	}
}
