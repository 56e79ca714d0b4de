package await

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/internal/loopback"
)

// recorder is a testing.TB that notes the message of Fatalf and, like the
// real one, ends the goroutine that called it. Its other methods are the
// embedded nil TB's: the helpers must call no other.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls wait with a recorder on a goroutine of its own, as Fatalf ends
// it, and returns what the wait returned and its Fatalf message.
func run(wait func(testing.TB) int) (got int, fatal string) {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = wait(r)
	}()
	<-done
	return got, r.fatal
}

// TestWaits checks that a wait returns once its event comes, and fails
// naming the event once the bound is reached (a short one here, as the
// bound's length is no part of the behaviour).
func TestWaits(t *testing.T) {
	const bound = 20 * time.Millisecond
	ready := func() <-chan int {
		ch := make(chan int, 1)
		ch <- 7
		return ch
	}
	afterPolls := func(n int) func() bool {
		polls := 0
		return func() bool { polls++; return polls > n }
	}
	tests := []struct {
		name      string
		wait      func(testing.TB) int
		want      int
		wantFatal string
	}{
		{"receive a value", func(t testing.TB) int { return receive(t, "the value", ready(), bound) }, 7, ""},
		{"receive nothing", func(t testing.TB) int { return receive(t, "the value", make(chan int), bound) }, 0, "gave up waiting for the value after 20ms"},
		{"receive from a closed channel", func(t testing.TB) int {
			ch := make(chan int)
			close(ch)
			return receive(t, "the close", ch, bound)
		}, 0, ""},
		{"until it holds", func(t testing.TB) int { until(t, "the condition", afterPolls(2), time.Minute); return 1 }, 1, ""},
		{"until it never holds", func(t testing.TB) int { until(t, "the condition", func() bool { return false }, bound); return 1 }, 0, "gave up waiting for the condition after 20ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, fatal := run(tc.wait)
			if fatal != tc.wantFatal {
				t.Errorf("Fatalf: got %q; want %q", fatal, tc.wantFatal)
			}
			if got != tc.want {
				t.Errorf("got %d; want %d", got, tc.want)
			}
		})
	}
}

// TestExportedWaitsUsePatience checks the exported waits on events that
// have already come, where Patience is never reached.
func TestExportedWaitsUsePatience(t *testing.T) {
	ch := make(chan string, 1)
	ch <- "sent"
	if got := Receive(t, "the value", ch); got != "sent" {
		t.Errorf("Receive: got %q; want %q", got, "sent")
	}
	Until(t, "a condition that holds", func() bool { return true })
	if Client.Timeout != Patience {
		t.Errorf("Client.Timeout: got %v; want %v", Client.Timeout, Patience)
	}
}

// TestDo checks that Do returns the whole answer, and fails when there is
// none or it is cut short.
func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/short" {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "cut")
			return
		}
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "whole body")
	}))
	defer srv.Close()
	refused := loopback.RefusedURL(t)
	tests := []struct {
		name, url  string
		wantStatus int
		wantBody   string
		// wantFatal is what the Fatalf message must say, "" for no
		// Fatalf.
		wantFatal string
	}{
		{"answered", srv.URL + "/", http.StatusTeapot, "whole body", ""},
		{"cut short", srv.URL + "/short", 0, "", "GET " + srv.URL + "/short: reading the body: unexpected EOF"},
		{"refused", refused + "/", 0, "", refused + "/\": dial tcp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var status int
			var body string
			_, fatal := run(func(t testing.TB) int {
				resp, b := Get(t, tc.url)
				status, body = resp.StatusCode, string(b)
				return 0
			})
			if (fatal == "") != (tc.wantFatal == "") || !strings.Contains(fatal, tc.wantFatal) {
				t.Errorf("Fatalf: got %q; want it to say %q", fatal, tc.wantFatal)
			}
			if status != tc.wantStatus || body != tc.wantBody {
				t.Errorf("got %d %q; want %d %q", status, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}
