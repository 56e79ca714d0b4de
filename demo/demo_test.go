package demo

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// TestExamplesMatchTestdata keeps the demo's bodies and the golden files in
// step, so the demo shows exactly what the conformance tests check.
func TestExamplesMatchTestdata(t *testing.T) {
	for _, e := range Examples {
		t.Run(e.Name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("..", "transform", "testdata", e.Name+".legacy.json"))
			if err != nil {
				t.Fatal(err)
			}
			if e.Body != string(want) {
				t.Errorf("got %q; want %q", e.Body, want)
			}
		})
	}
}

func TestBackendServesEveryExample(t *testing.T) {
	srv := httptest.NewServer(Backend())
	defer srv.Close()
	for _, e := range Examples {
		t.Run(e.Name, func(t *testing.T) {
			resp, err := await.Client.Get(srv.URL + e.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != e.Status || string(body) != e.Body || resp.Header.Get("Content-Type") != e.ContentType {
				t.Errorf("got %d %q %q; want %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, e.Status, e.ContentType, e.Body)
			}
		})
	}
}
