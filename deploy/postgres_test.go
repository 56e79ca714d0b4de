package deploy_test

// The fleet's database, as deploy/README.md tells an operator to make it: the
// psql steps run on a real PostgreSQL server, and the replicas open it with
// the environment the Deployment gives a pod from the example Secret.

import (
	"context"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/internal/pgserver"
	"github.com/envelope-proxy/envelope-proxy/store"
	"go.yaml.in/yaml/v3"
)

// psqlCommandRE finds the SQL of each `-c "..."` argument of a README's
// psql steps.
var psqlCommandRE = regexp.MustCompile(`-c "([^"]+)"`)

// TestFleetDatabase checks that deploy/README.md's steps (which the
// repository's README.md repeats) give the replicas a database they can
// use: the role and database its psql lines create (an
// ordinary role that owns the database, no superuser) are the ones the
// example Secret's URL names, and three replicas opening it at once, with
// the ConfigMap's state_url expanded from the pod's environment, create and
// migrate the schema without failing. The test server has no TLS and
// trusts loopback, so the URL's sslmode is turned off and the password is
// passed but not checked. Skipped only when PostgreSQL is not installed,
// never under CI=true.
func TestFleetDatabase(t *testing.T) {
	srv := pgserver.Start(t)

	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	top, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var stmts, topStmts []string
	for _, m := range psqlCommandRE.FindAllStringSubmatch(string(readme), -1) {
		stmts = append(stmts, m[1])
	}
	for _, m := range psqlCommandRE.FindAllStringSubmatch(string(top), -1) {
		topStmts = append(topStmts, m[1])
	}
	if len(stmts) == 0 {
		t.Fatal(`README.md shows no psql -c "..." step creating the database`)
	}
	for _, sql := range stmts {
		srv.Exec(t, "postgres", sql)
	}

	// The pod's environment: each variable the Deployment sets from the
	// Secret, with the example's value; the one state_url names points at
	// the test server instead.
	objs := readManifests(t, "kubernetes")
	proxy := containerNamed(t, find(t, objs, "Deployment", "").Spec.Template.Spec, proxyName)
	raw := find(t, objs, "ConfigMap", "").Data[path.Base(configPath)]
	var doc struct {
		StateURL string `yaml:"state_url"`
	}
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	refs := envRefRE.FindStringSubmatch(doc.StateURL)
	if refs == nil {
		t.Fatalf("state_url %q names no environment variable", doc.StateURL)
	}
	test, err := url.Parse(srv.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := readManifests(t, secretsDir)
	var role, db string
	for _, v := range proxy.Env {
		sk := v.secretRef()
		if sk == nil {
			continue
		}
		val, ok := secretValue(t, find(t, secrets, "Secret", sk.Name), sk.Key)
		if !ok {
			continue
		}
		if v.Name == refs[1] {
			u, err := url.Parse(val)
			if err != nil {
				t.Fatalf("the example %s: %v", v.Name, err)
			}
			role, db = u.User.Username(), strings.TrimPrefix(u.Path, "/")
			u.Host = test.Host
			q := u.Query()
			q.Set("sslmode", "disable")
			u.RawQuery = q.Encode()
			val = u.String()
		}
		t.Setenv(v.Name, val)
	}
	cfg, err := config.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("ConfigMap: %v", err)
	}

	// Three replicas start together on the empty database.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			st, err := store.OpenPostgres(ctx, config.Expand(cfg.StateURL))
			if err == nil {
				err = st.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}

	checks := []check{
		eq("../README.md's psql steps are these", strings.Join(topStmts, "; "), strings.Join(stmts, "; ")),
		eq("role is no superuser", srv.Exec(t, "postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = '"+role+"'"), "f"),
		eq("database owned by the role", srv.Exec(t, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '"+db+"'"), role),
		eq("tables created by the role", srv.Exec(t, db, `SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE tablename LIKE 'envelope\_proxy\_%'`), role),
	}
	run(t, checks)
}
