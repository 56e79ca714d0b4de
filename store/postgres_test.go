package store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/internal/loopback"
	"github.com/envelope-proxy/envelope-proxy/internal/pgserver"
)

func TestPostgresConcurrentOpen(t *testing.T) {
	cases := []struct {
		name string
		n    int
	}{
		{name: "three at once", n: 3},
		{name: "six at once", n: 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, db, u := newDatabase(t)
			ctx := testContext(t)
			type result struct {
				s   *Postgres
				err error
			}
			results := make(chan result, tc.n)
			start := make(chan struct{})
			for range tc.n {
				go func() {
					<-start
					s, err := OpenPostgres(ctx, u)
					results <- result{s, err}
				}()
			}
			close(start)
			var stores []*Postgres
			for i := range tc.n {
				r := await.Receive(t, fmt.Sprintf("OpenPostgres #%d to return", i+1), results)
				if r.err != nil {
					t.Errorf("OpenPostgres: got error %q; want nil", r.err)
					continue
				}
				t.Cleanup(func() { _ = r.s.Close() })
				stores = append(stores, r.s)
			}
			if got, want := srv.Exec(t, db, `SELECT count(*), min(version), min(compatible_from) FROM envelope_proxy_schema`), fmt.Sprintf("1|%d|%d", SchemaVersion, CompatibleFrom); got != want {
				t.Errorf("envelope_proxy_schema (rows|version|compatible_from): got %q; want %q", got, want)
			}
			// Every one of them can write, and sees the others' writes.
			for i, s := range stores {
				runSteps(t, s, []step{batch(fmt.Sprintf("r%d", i), 1, d{"x", at(0), 1})})
			}
			for i, s := range stores {
				if got, want := len(load(t, s).Deltas), len(stores); got != want {
					t.Errorf("store #%d: deltas loaded: got %d; want %d", i+1, got, want)
				}
			}
		})
	}
}

func TestPostgresSchemaVersions(t *testing.T) {
	cases := []struct {
		name                string
		version, compatible int
		// wantErr is the error the open must wrap, nil for none.
		wantErr error
		// wantRow is envelope_proxy_schema's version|compatible_from after
		// the open.
		wantRow string
	}{
		{name: "this binary's", version: 2, compatible: 2, wantRow: "2|2"},
		{name: "newer and compatible with this binary", version: 3, compatible: 2, wantRow: "3|2"},
		{name: "much newer and compatible with this binary", version: 9, compatible: 2, wantRow: "9|2"},
		{name: "newer and compatible with older binaries", version: 3, compatible: 1, wantRow: "3|1"},
		{name: "newer and not compatible", version: 3, compatible: 3, wantErr: ErrNewerSchema, wantRow: "3|3"},
		{name: "much newer and not compatible", version: 9, compatible: 5, wantErr: ErrNewerSchema, wantRow: "9|5"},
		{name: "older is brought to this binary's", version: 1, compatible: 1, wantRow: "2|2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, db, u := newDatabase(t)
			// The layout of this binary, as the newer one would have left
			// it: its own, plus what it added.
			if err := openPostgres(t, u).Close(); err != nil {
				t.Fatalf("Close: got error %q; want nil", err)
			}
			srv.Exec(t, db, fmt.Sprintf(`UPDATE envelope_proxy_schema SET version = %d, compatible_from = %d`, tc.version, tc.compatible))
			if tc.version > SchemaVersion {
				srv.Exec(t, db, `ALTER TABLE envelope_proxy_deltas ADD COLUMN added_later text; CREATE TABLE added_later (v text)`)
			}
			s, err := OpenPostgres(testContext(t), u)
			if err == nil {
				t.Cleanup(func() { _ = s.Close() })
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) || tc.wantErr == nil && err != nil {
				t.Fatalf("OpenPostgres: got %v; want %v", err, tc.wantErr)
			}
			if got := srv.Exec(t, db, `SELECT version || '|' || compatible_from FROM envelope_proxy_schema`); got != tc.wantRow {
				t.Errorf("envelope_proxy_schema (version|compatible_from): got %q; want %q", got, tc.wantRow)
			}
			if err != nil {
				return
			}
			runSteps(t, s, []step{batch("a", 1, d{"x", at(0), 1}), Maintenance{MinutesBefore: at(1)}, batch("a", 2, d{"x", at(1), 2})})
			checkSnapshot(t, "Load", load(t, s), want{replicas: reg("a", 2, 1), rolled: "a/x@0+60#0=1", deltas: "a/x@60+60#2=2"})
		})
	}
}

// TestPostgresMaintainOneAtATime runs the maintenance of two replicas (two
// stores, two pools) on one database at once: the second finds the first
// holding the lock and skips its turn, the first folds once, and a delta
// written while it ran is left for the next.
func TestPostgresMaintainOneAtATime(t *testing.T) {
	_, _, u := newDatabase(t)
	s1, s2 := openPostgres(t, u), openPostgres(t, u)
	ctx := testContext(t)
	runSteps(t, s1, []step{batch("a", 1, d{"x", at(0), 1}, d{"y", at(0), 2}), batch("b", 1, d{"x", at(0), 4})})

	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	blocking := Maintenance{MinutesBefore: at(1), Merge: func(span int64, blobs [][]byte) ([]byte, error) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return sumMerge(span, blobs)
	}}
	type result struct {
		ran bool
		err error
	}
	first := make(chan result, 1)
	go func() {
		ran, err := s1.Maintain(ctx, blocking)
		first <- result{ran, err}
	}()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	await.Receive(t, "the first maintenance to merge", entered)

	merged := 0
	ran, err := s2.Maintain(ctx, Maintenance{MinutesBefore: at(1), Merge: func(span int64, blobs [][]byte) ([]byte, error) {
		merged++
		return sumMerge(span, blobs)
	}})
	if err != nil || ran {
		t.Errorf("Maintain while another runs: got %t, %v; want false, nil", ran, err)
	}
	if merged != 0 {
		t.Errorf("merges by the maintenance that did not run: got %d; want 0", merged)
	}
	// A late delta of the minute being folded, written while the fold
	// runs: it is not among what the fold read, so it must survive it.
	runSteps(t, s2, []step{batch("a", 2, d{"x", at(0), 8})})

	close(release)
	released = true
	if r := await.Receive(t, "the first maintenance to end", first); r.err != nil || !r.ran {
		t.Fatalf("the first Maintain: got %t, %v; want true, nil", r.ran, r.err)
	}
	checkSnapshot(t, "Load after the first maintenance", load(t, s2), want{
		replicas: reg("a", 2, 1) + " " + reg("b", 1, 1),
		rolled:   "a/x@0+60#0=1 a/y@0+60#0=2 b/x@0+60#0=4",
		deltas:   "a/x@0+60#2=8",
	})

	runSteps(t, s2, []step{Maintenance{MinutesBefore: at(1)}})
	checkSnapshot(t, "Load after the second maintenance", load(t, s1), want{
		replicas: reg("a", 2, 2) + " " + reg("b", 1, 1),
		rolled:   "a/x@0+60#0=9 a/y@0+60#0=2 b/x@0+60#0=4",
	})
}

// withPassword returns the URL u of the test server with the password in
// the form given, and the port replaced when port is not empty.
func withPassword(t *testing.T, u, form, password, port string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("url.Parse: got error %q; want nil", err)
	}
	if port != "" {
		p.Host = "127.0.0.1:" + port
	}
	switch form {
	case "user info":
		p.User = url.UserPassword(pgserver.Superuser, password)
	case "parameter":
		q := p.Query()
		q.Set("password", password)
		p.RawQuery = q.Encode()
	case "key=value":
		return fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable",
			p.Hostname(), p.Port(), pgserver.Superuser, password, strings.TrimPrefix(p.Path, "/"))
	default:
		t.Fatalf("no form %q", form)
	}
	return p.String()
}

func TestPostgresPasswordHidden(t *testing.T) {
	const password = "s3cr3t-pw"
	cases := []struct {
		form string
		// wantLocation is a part of the location.
		wantLocation string
	}{
		{form: "user info", wantLocation: pgserver.Superuser + ":%5Bredacted%5D@127.0.0.1:"},
		{form: "parameter", wantLocation: "password=%5Bredacted%5D"},
		{form: "key=value", wantLocation: "(connection string)"},
	}
	_, _, u := newDatabase(t)
	refused, err := url.Parse(loopback.RefusedURL(t))
	if err != nil {
		t.Fatalf("url.Parse: got error %q; want nil", err)
	}
	for _, tc := range cases {
		t.Run(tc.form, func(t *testing.T) {
			// The server trusts the loopback and never asks for the
			// password: the open succeeds and shows the location.
			s := openPostgres(t, withPassword(t, u, tc.form, password, ""))
			loc := s.Location()
			if strings.Contains(loc, password) {
				t.Errorf("Location: got %q; want it without the password", loc)
			}
			if !strings.Contains(loc, tc.wantLocation) {
				t.Errorf("Location: got %q; want it to hold %q", loc, tc.wantLocation)
			}
			runSteps(t, s, []step{batch("a", 1, d{"x", at(0), 1})})

			// Nothing listens on the port: the open fails, and says so
			// without the password.
			_, err := OpenPostgres(testContext(t), withPassword(t, u, tc.form, password, refused.Port()))
			if err == nil {
				t.Fatalf("OpenPostgres on a refused port: got nil error; want one")
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("OpenPostgres on a refused port: got %q; want it without the password", err)
			}
			if !strings.HasPrefix(err.Error(), "opening evidence store ") {
				t.Errorf("OpenPostgres on a refused port: got %q; want it to name the store", err)
			}
			t.Logf("OpenPostgres: %v", err)
		})
	}
	bad := []struct{ name, url string }{
		{name: "port out of range", url: "postgres://envelope:" + password + "@127.0.0.1:99999999/db"},
		{name: "not a URL", url: "postgres://envelope:" + password + "@[127.0.0.1/db"},
		{name: "key=value unterminated quote", url: "host=127.0.0.1 password='" + password},
		{name: "bad parameter", url: "postgres://envelope:" + password + "@127.0.0.1/db?connect_timeout=soon"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenPostgres(testContext(t), tc.url)
			if err == nil {
				t.Fatalf("OpenPostgres(%s): got nil error; want one", tc.name)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("OpenPostgres: got %q; want it without the password", err)
			}
			t.Logf("OpenPostgres: %v", err)
		})
	}
}

// TestPostgresServerRestart takes the shared server away under an open
// store and brings it back: the writes fail meanwhile, and the same store
// works again once the server is back (the pool reconnects).
func TestPostgresServerRestart(t *testing.T) {
	cases := []struct {
		name string
		down func(srv *pgserver.Server, t testing.TB)
		// downFails is set when the calls must fail while the server is
		// down: a killed postmaster's sessions live on until they notice,
		// and may still answer a call meanwhile.
		downFails bool
	}{
		{name: "stopped", down: (*pgserver.Server).Stop, downFails: true},
		{name: "killed", down: (*pgserver.Server).Kill},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _, u := newDatabase(t)
			s := openPostgres(t, u)
			ctx := testContext(t)
			runSteps(t, s, []step{batch("a", 1, d{"x", at(0), 1})})
			// Fill the pool with more than one connection.
			done := make(chan error, 3)
			for range 3 {
				go func() { _, err := s.Load(ctx, 0); done <- err }()
			}
			for range 3 {
				if err := await.Receive(t, "Load", done); err != nil {
					t.Fatalf("Load: got error %q; want nil", err)
				}
			}

			tc.down(srv, t)
			up := false
			defer func() {
				// The server is shared: the tests after this one need it.
				if !up {
					srv.Restart(t)
				}
			}()
			b2 := batch("a", 2, d{"x", at(0), 2})
			if tc.downFails {
				if err := s.Apply(ctx, b2); err == nil {
					t.Errorf("Apply with the server down: got nil error; want one")
				}
				if _, err := s.Load(ctx, 0); err == nil {
					t.Errorf("Load with the server down: got nil error; want one")
				}
				if _, err := s.Maintain(ctx, withMerge(Maintenance{})); err == nil {
					t.Errorf("Maintain with the server down: got nil error; want one")
				}
			}
			srv.Restart(t)
			up = true

			// A connection of the pool that died with the server may fail
			// one call; the store is back once the pool has replaced it.
			attempts := 0
			await.Until(t, "Apply to succeed after the restart", func() bool {
				attempts++
				err := s.Apply(ctx, b2)
				if err != nil {
					t.Logf("Apply #%d after the restart: %v", attempts, err)
				}
				return err == nil
			})
			checkSnapshot(t, "Load after the restart", load(t, s), want{
				replicas: reg("a", 2, 0),
				deltas:   "a/x@0+60#1=1 a/x@0+60#2=2",
			})
		})
	}
}
