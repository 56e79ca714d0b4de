package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// open opens a store in a fresh temporary directory and closes it when the
// test ends.
func open(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("Open: got error %q; want nil", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// bucketsString renders buckets compactly so that failures read as
// "got %q; want %q".
func bucketsString(bs []Bucket) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprintf("%s@%d=%s", b.Client, b.Minute, b.Data)
	}
	return strings.Join(parts, " ")
}

// samplesString renders samples compactly so that failures read as
// "got %q; want %q".
func samplesString(ss []Sample) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprintf("%s/%s/%s@%d=%s", s.Client, s.Kind, s.Key, s.Time, s.Data)
	}
	return strings.Join(parts, " ")
}

// minutes returns the distinct minutes of bs, in order.
func minutes(bs []Bucket) []int64 {
	var ms []int64
	for _, b := range bs {
		if len(ms) == 0 || ms[len(ms)-1] != b.Minute {
			ms = append(ms, b.Minute)
		}
	}
	return ms
}

func TestBuckets(t *testing.T) {
	cases := []struct {
		name    string
		batches [][]Bucket
		since   int64
		want    []Bucket
	}{
		{
			name: "round trip ordered by minute then client",
			batches: [][]Bucket{{
				{Client: "b", Minute: 120, Data: []byte("b2")},
				{Client: "a", Minute: 120, Data: []byte("a2")},
				{Client: "b", Minute: 60, Data: []byte("b1")},
			}},
			want: []Bucket{
				{Client: "b", Minute: 60, Data: []byte("b1")},
				{Client: "a", Minute: 120, Data: []byte("a2")},
				{Client: "b", Minute: 120, Data: []byte("b2")},
			},
		},
		{
			name: "upsert replaces data",
			batches: [][]Bucket{
				{{Client: "a", Minute: 60, Data: []byte("old")}, {Client: "a", Minute: 120, Data: []byte("keep")}},
				{{Client: "a", Minute: 60, Data: []byte("new")}},
			},
			want: []Bucket{
				{Client: "a", Minute: 60, Data: []byte("new")},
				{Client: "a", Minute: 120, Data: []byte("keep")},
			},
		},
		{
			name: "upsert within one batch keeps the last",
			batches: [][]Bucket{{
				{Client: "a", Minute: 60, Data: []byte("first")},
				{Client: "a", Minute: 60, Data: []byte("second")},
			}},
			want: []Bucket{{Client: "a", Minute: 60, Data: []byte("second")}},
		},
		{
			name: "since is inclusive and filters older minutes",
			batches: [][]Bucket{{
				{Client: "a", Minute: 60, Data: []byte("1")},
				{Client: "a", Minute: 120, Data: []byte("2")},
				{Client: "a", Minute: 180, Data: []byte("3")},
			}},
			since: 120,
			want: []Bucket{
				{Client: "a", Minute: 120, Data: []byte("2")},
				{Client: "a", Minute: 180, Data: []byte("3")},
			},
		},
		{
			name:    "since after everything",
			batches: [][]Bucket{{{Client: "a", Minute: 60, Data: []byte("1")}}},
			since:   61,
		},
		{
			name:    "empty batch",
			batches: [][]Bucket{nil, {}},
		},
		{
			name: "binary and empty data",
			batches: [][]Bucket{{
				{Client: "a", Minute: 60, Data: []byte{0, 1, 0xff, 0}},
				{Client: "b", Minute: 60, Data: nil},
			}},
			want: []Bucket{
				{Client: "a", Minute: 60, Data: []byte{0, 1, 0xff, 0}},
				{Client: "b", Minute: 60, Data: []byte{}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, Options{})
			for _, batch := range tc.batches {
				if err := s.SaveBuckets(batch); err != nil {
					t.Fatalf("SaveBuckets: got error %q; want nil", err)
				}
			}
			got, err := s.LoadBuckets(tc.since)
			if err != nil {
				t.Fatalf("LoadBuckets: got error %q; want nil", err)
			}
			if g, w := bucketsString(got), bucketsString(tc.want); g != w {
				t.Errorf("LoadBuckets(%d): got %q; want %q", tc.since, g, w)
			}
		})
	}
}

func TestSamples(t *testing.T) {
	cases := []struct {
		name    string
		batches [][]Sample
		since   int64
		want    []Sample
	}{
		{
			name: "round trip ordered by time",
			batches: [][]Sample{{
				{Client: "a", Kind: "mismatch", Key: "0", Time: 300, Data: []byte("m0")},
				{Client: "a", Kind: "unmapped", Key: "E1", Time: 100, Data: []byte("u1")},
				{Client: "b", Kind: "unmapped", Key: "E1", Time: 200, Data: []byte("bu1")},
			}},
			want: []Sample{
				{Client: "a", Kind: "unmapped", Key: "E1", Time: 100, Data: []byte("u1")},
				{Client: "b", Kind: "unmapped", Key: "E1", Time: 200, Data: []byte("bu1")},
				{Client: "a", Kind: "mismatch", Key: "0", Time: 300, Data: []byte("m0")},
			},
		},
		{
			name: "upsert replaces time and data",
			batches: [][]Sample{
				{
					{Client: "a", Kind: "mismatch", Key: "0", Time: 100, Data: []byte("old")},
					{Client: "a", Kind: "mismatch", Key: "1", Time: 200, Data: []byte("keep")},
				},
				{{Client: "a", Kind: "mismatch", Key: "0", Time: 300, Data: []byte("new")}},
			},
			want: []Sample{
				{Client: "a", Kind: "mismatch", Key: "1", Time: 200, Data: []byte("keep")},
				{Client: "a", Kind: "mismatch", Key: "0", Time: 300, Data: []byte("new")},
			},
		},
		{
			name: "same key in another kind or client is another sample",
			batches: [][]Sample{{
				{Client: "a", Kind: "mismatch", Key: "k", Time: 1, Data: []byte("1")},
				{Client: "a", Kind: "unmapped", Key: "k", Time: 2, Data: []byte("2")},
				{Client: "b", Kind: "mismatch", Key: "k", Time: 3, Data: []byte("3")},
			}},
			want: []Sample{
				{Client: "a", Kind: "mismatch", Key: "k", Time: 1, Data: []byte("1")},
				{Client: "a", Kind: "unmapped", Key: "k", Time: 2, Data: []byte("2")},
				{Client: "b", Kind: "mismatch", Key: "k", Time: 3, Data: []byte("3")},
			},
		},
		{
			name: "since is inclusive and filters older samples",
			batches: [][]Sample{{
				{Client: "a", Kind: "k", Key: "1", Time: 1_000, Data: []byte("1")},
				{Client: "a", Kind: "k", Key: "2", Time: 2_000, Data: []byte("2")},
				{Client: "a", Kind: "k", Key: "3", Time: 3_000, Data: []byte("3")},
			}},
			since: 2_000,
			want: []Sample{
				{Client: "a", Kind: "k", Key: "2", Time: 2_000, Data: []byte("2")},
				{Client: "a", Kind: "k", Key: "3", Time: 3_000, Data: []byte("3")},
			},
		},
		{
			name:    "empty batch",
			batches: [][]Sample{nil, {}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, Options{})
			for _, batch := range tc.batches {
				if err := s.SaveSamples(batch); err != nil {
					t.Fatalf("SaveSamples: got error %q; want nil", err)
				}
			}
			got, err := s.LoadSamples(tc.since)
			if err != nil {
				t.Fatalf("LoadSamples: got error %q; want nil", err)
			}
			if g, w := samplesString(got), samplesString(tc.want); g != w {
				t.Errorf("LoadSamples(%d): got %q; want %q", tc.since, g, w)
			}
		})
	}
}

func TestApply(t *testing.T) {
	stored := []Bucket{
		{Client: "a", Minute: 0, Data: []byte("a0")},
		{Client: "a", Minute: 60, Data: []byte("a1")},
		{Client: "b", Minute: 60, Data: []byte("b1")},
		{Client: "a", Minute: 120, Data: []byte("a2")},
		{Client: "a", Minute: 180, Data: []byte("a3")},
	}
	cases := []struct {
		name        string
		write       Write
		wantBuckets []Bucket
		wantSamples []Sample
	}{
		{
			name:        "empty write changes nothing",
			wantBuckets: stored,
		},
		{
			name:  "delete is from-inclusive, to-exclusive and per client",
			write: Write{Deletes: []Range{{Client: "a", From: 60, To: 180}}},
			wantBuckets: []Bucket{
				{Client: "a", Minute: 0, Data: []byte("a0")},
				{Client: "b", Minute: 60, Data: []byte("b1")},
				{Client: "a", Minute: 180, Data: []byte("a3")},
			},
		},
		{
			name: "hour row replaces its minutes",
			write: Write{
				Deletes: []Range{{Client: "a", From: 60, To: 3600}},
				Buckets: []Bucket{{Client: "a", Minute: 0, Data: []byte("hour")}},
				Samples: []Sample{{Client: "a", Kind: "k", Key: "1", Time: 5, Data: []byte("s")}},
			},
			wantBuckets: []Bucket{
				{Client: "a", Minute: 0, Data: []byte("hour")},
				{Client: "b", Minute: 60, Data: []byte("b1")},
			},
			wantSamples: []Sample{{Client: "a", Kind: "k", Key: "1", Time: 5, Data: []byte("s")}},
		},
		{
			name: "a bucket written survives a delete of its range",
			write: Write{
				Deletes: []Range{{Client: "b", From: 0, To: 3600}},
				Buckets: []Bucket{{Client: "b", Minute: 120, Data: []byte("b2")}},
			},
			wantBuckets: []Bucket{
				{Client: "a", Minute: 0, Data: []byte("a0")},
				{Client: "a", Minute: 60, Data: []byte("a1")},
				{Client: "a", Minute: 120, Data: []byte("a2")},
				{Client: "b", Minute: 120, Data: []byte("b2")},
				{Client: "a", Minute: 180, Data: []byte("a3")},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, Options{})
			if err := s.SaveBuckets(stored); err != nil {
				t.Fatalf("SaveBuckets: got error %q; want nil", err)
			}
			if err := s.Apply(tc.write); err != nil {
				t.Fatalf("Apply: got error %q; want nil", err)
			}
			bs, err := s.LoadBuckets(0)
			if err != nil {
				t.Fatalf("LoadBuckets: got error %q; want nil", err)
			}
			if g, w := bucketsString(bs), bucketsString(tc.wantBuckets); g != w {
				t.Errorf("buckets after Apply: got %q; want %q", g, w)
			}
			ss, err := s.LoadSamples(0)
			if err != nil {
				t.Fatalf("LoadSamples: got error %q; want nil", err)
			}
			if g, w := samplesString(ss), samplesString(tc.wantSamples); g != w {
				t.Errorf("samples after Apply: got %q; want %q", g, w)
			}
		})
	}
}

func TestReopenKeepsData(t *testing.T) {
	cases := []struct {
		name    string
		buckets []Bucket
		samples []Sample
	}{
		{
			name:    "buckets and samples",
			buckets: []Bucket{{Client: "a", Minute: 60, Data: []byte("b")}, {Client: "b", Minute: 120, Data: []byte("c")}},
			samples: []Sample{{Client: "a", Kind: "mismatch", Key: "0", Time: 60e9, Data: []byte("s")}},
		},
		{
			name: "nothing saved",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatalf("Open: got error %q; want nil", err)
			}
			if err := s.SaveBuckets(tc.buckets); err != nil {
				t.Fatalf("SaveBuckets: got error %q; want nil", err)
			}
			if err := s.SaveSamples(tc.samples); err != nil {
				t.Fatalf("SaveSamples: got error %q; want nil", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: got error %q; want nil", err)
			}

			s, err = Open(dir, Options{})
			if err != nil {
				t.Fatalf("reopen: got error %q; want nil", err)
			}
			defer func() { _ = s.Close() }()
			if got, want := s.Path(), filepath.Join(dir, FileName); got != want {
				t.Errorf("Path: got %q; want %q", got, want)
			}
			bs, err := s.LoadBuckets(0)
			if err != nil {
				t.Fatalf("LoadBuckets: got error %q; want nil", err)
			}
			if g, w := bucketsString(bs), bucketsString(tc.buckets); g != w {
				t.Errorf("LoadBuckets after reopen: got %q; want %q", g, w)
			}
			ss, err := s.LoadSamples(0)
			if err != nil {
				t.Fatalf("LoadSamples: got error %q; want nil", err)
			}
			if g, w := samplesString(ss), samplesString(tc.samples); g != w {
				t.Errorf("LoadSamples after reopen: got %q; want %q", g, w)
			}
		})
	}
}

func TestOpenConfiguresDatabase(t *testing.T) {
	s := open(t, Options{})
	cases := []struct {
		pragma string
		want   string
	}{
		{pragma: "journal_mode", want: "wal"},
		{pragma: "auto_vacuum", want: "2"},
		{pragma: "user_version", want: fmt.Sprint(schemaVersion)},
		{pragma: "busy_timeout", want: fmt.Sprint(busyTimeoutMillis)},
	}
	for _, tc := range cases {
		t.Run(tc.pragma, func(t *testing.T) {
			var got string
			if err := s.db.QueryRow("PRAGMA " + tc.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: got error %q; want nil", tc.pragma, err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s: got %q; want %q", tc.pragma, got, tc.want)
			}
		})
	}
}

func TestOpenOddDirectory(t *testing.T) {
	cases := []struct {
		name string
		dir  string
		// relative opens dir relative to a temporary working directory.
		relative bool
	}{
		{name: "nested directories are created", dir: "a/b/c"},
		{name: "URI characters in the path", dir: "q?x=1#frag%20 dir"},
		{name: "relative path", dir: "state", relative: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), tc.dir)
			if tc.relative {
				t.Chdir(filepath.Dir(dir))
				dir = tc.dir
			}
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatalf("Open: got error %q; want nil", err)
			}
			defer func() { _ = s.Close() }()
			if err := s.SaveBuckets([]Bucket{{Client: "a", Minute: 60, Data: []byte("x")}}); err != nil {
				t.Fatalf("SaveBuckets: got error %q; want nil", err)
			}
			if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
				t.Errorf("database file: got error %q; want it at %q", err, filepath.Join(dir, FileName))
			}
			info, err := os.Stat(dir)
			if err != nil {
				t.Fatalf("Stat: got error %q; want nil", err)
			}
			if got, want := info.Mode().Perm(), os.FileMode(0o750); got&^want != 0 {
				t.Errorf("directory mode: got %q; want at most %q", got, want)
			}
		})
	}
}

func TestPruneRetention(t *testing.T) {
	buckets := []Bucket{
		{Client: "a", Minute: 60, Data: []byte("1")},
		{Client: "b", Minute: 60, Data: []byte("1")},
		{Client: "a", Minute: 120, Data: []byte("2")},
		{Client: "a", Minute: 180, Data: []byte("3")},
	}
	samples := []Sample{
		{Client: "a", Kind: "k", Key: "1", Time: 60e9, Data: []byte("1")},
		{Client: "a", Kind: "k", Key: "1.5", Time: 120e9 - 1, Data: []byte("1.5")},
		{Client: "a", Kind: "k", Key: "2", Time: 120e9, Data: []byte("2")},
		{Client: "a", Kind: "k", Key: "3", Time: 180e9 + 5, Data: []byte("3")},
	}
	cases := []struct {
		name        string
		before      int64
		wantBuckets []Bucket
		wantSamples []Sample
	}{
		{name: "nothing older", before: 60, wantBuckets: buckets, wantSamples: samples},
		{name: "first minute", before: 120, wantBuckets: buckets[2:], wantSamples: samples[2:]},
		{name: "all but the last", before: 180, wantBuckets: buckets[3:], wantSamples: samples[3:]},
		{name: "everything", before: 240},
		{name: "far future does not overflow", before: 1 << 62},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, Options{})
			if err := s.SaveBuckets(buckets); err != nil {
				t.Fatalf("SaveBuckets: got error %q; want nil", err)
			}
			if err := s.SaveSamples(samples); err != nil {
				t.Fatalf("SaveSamples: got error %q; want nil", err)
			}
			if err := s.Prune(tc.before); err != nil {
				t.Fatalf("Prune(%d): got error %q; want nil", tc.before, err)
			}
			bs, err := s.LoadBuckets(0)
			if err != nil {
				t.Fatalf("LoadBuckets: got error %q; want nil", err)
			}
			if g, w := bucketsString(bs), bucketsString(tc.wantBuckets); g != w {
				t.Errorf("buckets after Prune(%d): got %q; want %q", tc.before, g, w)
			}
			ss, err := s.LoadSamples(0)
			if err != nil {
				t.Fatalf("LoadSamples: got error %q; want nil", err)
			}
			if g, w := samplesString(ss), samplesString(tc.wantSamples); g != w {
				t.Errorf("samples after Prune(%d): got %q; want %q", tc.before, g, w)
			}
		})
	}
}

func TestPruneMaxBytes(t *testing.T) {
	const (
		nMinutes  = 200
		clients   = 2
		dataBytes = 5 << 10 // 200 minutes * 2 clients * 5 KiB = 2 MB
		firstMin  = int64(1_700_000_040)
	)
	cases := []struct {
		name     string
		maxBytes int64
		// wantSome is whether the newest minute must survive.
		wantSome bool
	}{
		{name: "512 KiB cap keeps the newest minutes", maxBytes: 512 << 10, wantSome: true},
		{name: "1 MiB cap keeps the newest minutes", maxBytes: 1 << 20, wantSome: true},
		{name: "cap smaller than an empty database terminates", maxBytes: 1, wantSome: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, Options{MaxBytes: tc.maxBytes})
			rng := rand.New(rand.NewPCG(1, 2))
			var bs []Bucket
			var ss []Sample
			for m := range nMinutes {
				minute := firstMin + int64(m)*60
				for c := range clients {
					data := make([]byte, dataBytes)
					for i := range data {
						data[i] = byte(rng.Uint32())
					}
					bs = append(bs, Bucket{Client: fmt.Sprintf("client-%d", c), Minute: minute, Data: data})
				}
				// One sample in the middle of each minute.
				ss = append(ss, Sample{Client: "client-0", Kind: "mismatch", Key: fmt.Sprint(m), Time: (minute + 30) * 1e9, Data: []byte("sample")})
			}
			if err := s.SaveBuckets(bs); err != nil {
				t.Fatalf("SaveBuckets: got error %q; want nil", err)
			}
			if err := s.SaveSamples(ss); err != nil {
				t.Fatalf("SaveSamples: got error %q; want nil", err)
			}
			before, err := s.size()
			if err != nil {
				t.Fatalf("size: got error %q; want nil", err)
			}
			if before <= 2*tc.maxBytes && tc.maxBytes > 1 {
				t.Fatalf("size before Prune: got %d; want well over the cap %d", before, tc.maxBytes)
			}

			if err := s.Prune(0); err != nil {
				t.Fatalf("Prune: got error %q; want nil", err)
			}

			after, err := s.size()
			if err != nil {
				t.Fatalf("size: got error %q; want nil", err)
			}
			if tc.wantSome && after > tc.maxBytes {
				t.Errorf("page_count*page_size after Prune: got %d; want at most %d", after, tc.maxBytes)
			}
			info, err := os.Stat(s.Path())
			if err != nil {
				t.Fatalf("Stat: got error %q; want nil", err)
			}
			if tc.wantSome && info.Size() > tc.maxBytes {
				t.Errorf("file size after Prune: got %d; want at most %d", info.Size(), tc.maxBytes)
			}

			kept, err := s.LoadBuckets(0)
			if err != nil {
				t.Fatalf("LoadBuckets: got error %q; want nil", err)
			}
			ms := minutes(kept)
			if !tc.wantSome {
				if len(kept) != 0 {
					t.Errorf("minutes kept: got %q; want none", fmt.Sprint(ms))
				}
				return
			}
			newest := firstMin + (nMinutes-1)*60
			if len(ms) == 0 || ms[len(ms)-1] != newest {
				t.Fatalf("newest minute kept: got %q; want %d", fmt.Sprint(ms), newest)
			}
			if ms[0] == firstMin {
				t.Errorf("oldest minute kept: got %d; want it pruned", ms[0])
			}
			// The survivors are a contiguous run of the newest minutes,
			// each with all its clients.
			for i, m := range ms {
				if want := newest - int64(len(ms)-1-i)*60; m != want {
					t.Fatalf("minutes kept: got %q; want a contiguous run ending at %d", fmt.Sprint(ms), newest)
				}
			}
			if got, want := len(kept), len(ms)*clients; got != want {
				t.Errorf("buckets kept: got %d; want %d", got, want)
			}
			// Samples older than the oldest kept minute are gone, the
			// newer ones are all there.
			keptSamples, err := s.LoadSamples(0)
			if err != nil {
				t.Fatalf("LoadSamples: got error %q; want nil", err)
			}
			if got, want := len(keptSamples), len(ms); got != want {
				t.Errorf("samples kept: got %d; want %d", got, want)
			}
			for _, sm := range keptSamples {
				if sm.Time < ms[0]*1e9 {
					t.Errorf("sample kept: got time %d; want none before %d", sm.Time, ms[0]*1e9)
				}
			}
			t.Logf("size %d -> %d (cap %d), kept %d of %d minutes", before, after, tc.maxBytes, len(ms), nMinutes)
		})
	}
}

func TestPruneWithoutCapKeepsEverything(t *testing.T) {
	cases := []struct {
		name string
		opts Options
	}{
		{name: "no cap", opts: Options{}},
		{name: "generous cap", opts: Options{MaxBytes: 1 << 30}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, tc.opts)
			bs := []Bucket{{Client: "a", Minute: 60, Data: make([]byte, 100<<10)}, {Client: "a", Minute: 120, Data: []byte("x")}}
			if err := s.SaveBuckets(bs); err != nil {
				t.Fatalf("SaveBuckets: got error %q; want nil", err)
			}
			if err := s.Prune(0); err != nil {
				t.Fatalf("Prune: got error %q; want nil", err)
			}
			got, err := s.LoadBuckets(0)
			if err != nil {
				t.Fatalf("LoadBuckets: got error %q; want nil", err)
			}
			if g, w := fmt.Sprint(minutes(got)), "[60 120]"; g != w {
				t.Errorf("minutes after Prune: got %q; want %q", g, w)
			}
		})
	}
}

func TestOpenRejectsBadFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	cases := []struct {
		name    string
		prepare func(t *testing.T, dir string)
	}{
		{
			name: "random bytes",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, FileName), random(8<<10))
			},
		},
		{
			name: "SQLite header then garbage",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, FileName), append([]byte("SQLite format 3\x00"), random(8<<10)...))
			},
		},
		{
			name: "valid header with 4 KiB pages then garbage",
			prepare: func(t *testing.T, dir string) {
				header := make([]byte, 100)
				copy(header, "SQLite format 3\x00")
				header[16], header[17] = 0x10, 0x00 // page size 4096
				header[18], header[19] = 1, 1       // legacy journal
				header[21], header[22], header[23] = 64, 32, 32
				header[31] = 4 // 4 pages
				writeFile(t, filepath.Join(dir, FileName), append(header, random(4*4096-100)...))
			},
		},
		{
			name: "valid database with corrupted pages",
			prepare: func(t *testing.T, dir string) {
				s, err := Open(dir, Options{})
				if err != nil {
					t.Fatalf("Open: got error %q; want nil", err)
				}
				var bs []Bucket
				for m := range 100 {
					bs = append(bs, Bucket{Client: "a", Minute: int64(m) * 60, Data: random(1000)})
				}
				if err := s.SaveBuckets(bs); err != nil {
					t.Fatalf("SaveBuckets: got error %q; want nil", err)
				}
				if err := s.Close(); err != nil {
					t.Fatalf("Close: got error %q; want nil", err)
				}
				path := filepath.Join(dir, FileName)
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("ReadFile: got error %q; want nil", err)
				}
				// Keep page 1 (the header and schema), trash the rest.
				copy(data[4096:], random(len(data)-4096))
				writeFile(t, path, data)
			},
		},
		{
			name: "newer schema version",
			prepare: func(t *testing.T, dir string) {
				db := rawOpen(t, filepath.Join(dir, FileName))
				if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion+1)); err != nil {
					t.Fatalf("PRAGMA user_version: got error %q; want nil", err)
				}
				if err := db.Close(); err != nil {
					t.Fatalf("Close: got error %q; want nil", err)
				}
			},
		},
		{
			name: "database path is a directory",
			prepare: func(t *testing.T, dir string) {
				if err := os.Mkdir(filepath.Join(dir, FileName), 0o750); err != nil {
					t.Fatalf("Mkdir: got error %q; want nil", err)
				}
			},
		},
		{
			name: "store directory is a file",
			prepare: func(t *testing.T, dir string) {
				if err := os.Remove(dir); err != nil {
					t.Fatalf("Remove: got error %q; want nil", err)
				}
				writeFile(t, dir, []byte("not a directory"))
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.prepare(t, dir)
			s, err := Open(dir, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open: got nil error; want one")
			}
			if want := "opening evidence store " + filepath.Join(dir, FileName) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Open error: got %q; want prefix %q", err, want)
			}
			if errors.Unwrap(err) == nil {
				t.Errorf("Open error: got %q, which wraps nothing; want it to wrap the cause", err)
			}
			t.Logf("Open: %v", err)
		})
	}
}

func TestOpenLockedFile(t *testing.T) {
	cases := []struct {
		name string
		// existing creates the store before locking, so the file is
		// already in WAL mode.
		existing bool
	}{
		{name: "new file locked", existing: false},
		{name: "existing store locked", existing: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if tc.existing {
				s, err := Open(dir, Options{})
				if err != nil {
					t.Fatalf("Open: got error %q; want nil", err)
				}
				if err := s.SaveBuckets([]Bucket{{Client: "a", Minute: 60, Data: []byte("x")}}); err != nil {
					t.Fatalf("SaveBuckets: got error %q; want nil", err)
				}
				if err := s.Close(); err != nil {
					t.Fatalf("Close: got error %q; want nil", err)
				}
			}
			db := rawOpen(t, path)
			defer func() { _ = db.Close() }()
			ctx := context.Background()
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatalf("Conn: got error %q; want nil", err)
			}
			defer func() { _ = conn.Close() }()
			if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
				t.Fatalf("BEGIN EXCLUSIVE: got error %q; want nil", err)
			}
			defer func() { _, _ = conn.ExecContext(ctx, "ROLLBACK") }()

			// Open (or, failing that, the first write) must give up on
			// its own; the wait's bound only keeps a regression from
			// hanging the test run.
			result := make(chan error, 1)
			go func() {
				s, err := Open(dir, Options{})
				if err != nil {
					result <- err
					return
				}
				defer func() { _ = s.Close() }()
				result <- s.SaveBuckets([]Bucket{{Client: "b", Minute: 60, Data: []byte("y")}})
			}()
			err = await.Receive(t, "Open and SaveBuckets on a locked file to give up", result)
			if err == nil {
				t.Fatalf("Open and SaveBuckets on a locked file: got nil error; want one")
			}
			t.Logf("locked: %v", err)
		})
	}
}

func TestWriteErrorsAreReturned(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, s *Store)
		// recover undoes setup; nil when the store cannot recover, in
		// which case its contents are not checked either.
		recover func(t *testing.T, s *Store)
	}{
		{
			name: "database full",
			setup: func(t *testing.T, s *Store) {
				// max_page_count stands in for a full disk: SQLite
				// reports SQLITE_FULL either way.
				var pages int64
				if err := s.db.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
					t.Fatalf("page_count: got error %q; want nil", err)
				}
				if _, err := s.db.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
					t.Fatalf("max_page_count: got error %q; want nil", err)
				}
			},
			recover: func(t *testing.T, s *Store) {
				if _, err := s.db.Exec("PRAGMA max_page_count = 1000000"); err != nil {
					t.Fatalf("max_page_count: got error %q; want nil", err)
				}
			},
		},
		{
			name: "file deleted",
			setup: func(t *testing.T, s *Store) {
				if err := os.Remove(s.Path()); err != nil {
					t.Fatalf("Remove: got error %q; want nil", err)
				}
			},
		},
		{
			name: "file replaced",
			setup: func(t *testing.T, s *Store) {
				other := s.Path() + ".other"
				writeFile(t, other, nil)
				if err := os.Rename(other, s.Path()); err != nil {
					t.Fatalf("Rename: got error %q; want nil", err)
				}
			},
		},
		{
			name: "closed store",
			setup: func(t *testing.T, s *Store) {
				if err := s.Close(); err != nil {
					t.Fatalf("Close: got error %q; want nil", err)
				}
			},
		},
	}
	keep := []Bucket{{Client: "keep", Minute: 60, Data: []byte("kept")}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, Options{})
			if err := s.SaveBuckets(keep); err != nil {
				t.Fatalf("SaveBuckets: got error %q; want nil", err)
			}
			tc.setup(t, s)
			big := make([]byte, 64<<10)
			if err := s.SaveBuckets([]Bucket{{Client: "a", Minute: 60, Data: big}}); err == nil {
				t.Errorf("SaveBuckets: got nil error; want one")
			} else {
				t.Logf("SaveBuckets: %v", err)
			}
			if err := s.SaveSamples([]Sample{{Client: "a", Kind: "k", Key: "1", Time: 1, Data: big}}); err == nil {
				t.Errorf("SaveSamples: got nil error; want one")
			}
			w := Write{Deletes: []Range{{Client: "keep", From: 0, To: 120}}, Buckets: []Bucket{{Client: "a", Minute: 60, Data: big}}}
			if err := s.Apply(w); err == nil {
				t.Errorf("Apply: got nil error; want one")
			}
			if tc.recover == nil {
				if err := s.Prune(0); err == nil {
					t.Errorf("Prune: got nil error; want one")
				}
				return
			}
			// Pruning frees space, so it works on a full database.
			if err := s.Prune(0); err != nil {
				t.Errorf("Prune: got error %q; want nil", err)
			}
			// Whatever was refused must not be half there: the delete
			// in the failed Apply is undone too.
			bs, err := s.LoadBuckets(0)
			if err != nil {
				t.Fatalf("LoadBuckets: got error %q; want nil", err)
			}
			if g, w := bucketsString(bs), bucketsString(keep); g != w {
				t.Errorf("buckets after failed writes: got %q; want %q", g, w)
			}
			tc.recover(t, s)
			if err := s.SaveBuckets([]Bucket{{Client: "a", Minute: 60, Data: big}}); err != nil {
				t.Errorf("SaveBuckets after recovering: got error %q; want nil", err)
			}
		})
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	cases := []struct {
		name   string
		closes int
	}{
		{name: "twice", closes: 2},
		{name: "three times", closes: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.TempDir(), Options{})
			if err != nil {
				t.Fatalf("Open: got error %q; want nil", err)
			}
			for i := range tc.closes {
				if err := s.Close(); err != nil {
					t.Errorf("Close #%d: got error %q; want nil", i+1, err)
				}
			}
			if _, err := s.LoadBuckets(0); err == nil {
				t.Errorf("LoadBuckets after Close: got nil error; want one")
			}
			if err := s.Prune(0); err == nil {
				t.Errorf("Prune after Close: got nil error; want one")
			}
		})
	}
}

func BenchmarkSaveBuckets(b *testing.B) {
	s := open(b, Options{})
	data := make([]byte, 512)
	for i := range data {
		data[i] = byte(i)
	}
	bs := make([]Bucket, 1000)
	for i := range bs {
		// 100 clients times 10 minutes, saved again and again: the
		// caller's pattern of rewriting the recent minutes.
		bs[i] = Bucket{Client: fmt.Sprintf("client-%03d", i%100), Minute: int64(i/100) * 60, Data: data}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.SaveBuckets(bs); err != nil {
			b.Fatalf("SaveBuckets: got error %q; want nil", err)
		}
	}
}

// writeFile writes data to path or fails the test.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("WriteFile: got error %q; want nil", err)
	}
}

// rawOpen opens path with the driver directly, as another program would.
func rawOpen(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("sql.Open: got error %q; want nil", err)
	}
	return db
}

func TestApplyClearSamples(t *testing.T) {
	s := open(t, Options{})
	if err := s.Apply(Write{Samples: []Sample{{Client: "a", Kind: "k", Key: "1", Time: 5, Data: []byte("old")}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(Write{ClearSamples: true, Samples: []Sample{{Client: "b", Kind: "k", Key: "1", Time: 6, Data: []byte("new")}}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadSamples(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Client != "b" {
		t.Errorf("got %q; want only the sample written with the clear", samplesString(got))
	}
}
