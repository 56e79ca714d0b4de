// Package dashboard serves the migration dashboard on the admin listener: a
// page that tells a platform team, client by client, what format each one
// gets, what the rewrite did to its traffic, what the shadow comparison
// found and whether it is ready to be flipped to the envelope.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary, so it
// works air-gapped and needs no build step. It reads the evidence from two
// JSON endpoints, which scripts can use as well:
//
//	GET /api/clients                      the overview (evidence.Overview)
//	GET /api/clients/{name}[?replica=R]   one client (evidence.ClientDetail)
//	GET /shadow/report[?client=NAME]      the shadow report (evidence.ShadowReport)
//	GET /api/suggestions[?client=NAME][&format=yaml]
//	                                      rules and shadow.ignore entries to paste (evidence.Suggestions)
//
// Every response carries a strict Content-Security-Policy: the page runs
// only its own script and style files, and the data it shows (client names,
// sample bodies) comes from traffic, so it is only ever put in the page as
// text.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/evidence"
	"go.uber.org/zap"
)

// ContentSecurityPolicy is sent with every dashboard response. It lets the
// page load its own scripts, styles and images only, talk to its own
// origin only and be framed by nobody, so a client name or a sample body
// crafted to look like markup can neither run nor leak anything.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// assetPrefix is where the page's files are served; the page names them
// by absolute path because it is served at both / and /dashboard/.
const assetPrefix = "/dashboard/assets/"

//go:embed assets
var embedded embed.FS

// Evidence is where the dashboard reads what is known about the clients;
// it is implemented elsewhere (package evidence) so the dashboard only
// presents what is gathered. Its methods are safe for concurrent use and
// cheap enough to call every few seconds, which is how often the page
// polls.
type Evidence interface {
	// Overview returns every client's summary over the readiness window.
	Overview() evidence.Overview
	// ReplicaClient returns one client's detail, limited to one replica
	// when replica is not "", and false when no client or evidence goes
	// by that name.
	ReplicaClient(name, replica string) (evidence.ClientDetail, bool, error)
	// ShadowReport returns the shadow report, of one client when client
	// is not "".
	ShadowReport(client string) evidence.ShadowReport
	// Suggestions returns the suggested rules and shadow.ignore entries,
	// from one client's evidence when client is not "".
	Suggestions(client string) evidence.Suggestions
}

// Options tune the dashboard.
type Options struct {
	// Logger receives the failures to write a response, which are the
	// browser's doing and worth a debug line only; nil logs nothing.
	Logger *zap.Logger
	// CandidateConfigured reports whether the shadow comparison has a
	// candidate now, for the report; nil reports false.
	CandidateConfigured func() bool
}

// Dashboard serves the page, its assets and the JSON API. It holds no
// state of its own beyond the embedded files, so one value serves any
// number of requests at once.
type Dashboard struct {
	src       Evidence
	log       *zap.Logger
	candidate func() bool
	assets    map[string]asset
}

// asset is one embedded file ready to serve, with an ETag so a browser
// revalidates it cheaply and picks up a new version after an upgrade.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// New returns a dashboard that reads its evidence from src.
func New(src Evidence, opts Options) *Dashboard {
	d := &Dashboard{src: src, log: opts.Logger, candidate: opts.CandidateConfigured, assets: map[string]asset{}}
	if d.log == nil {
		d.log = zap.NewNop()
	}
	err := fs.WalkDir(embedded, "assets", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		body, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		d.assets[strings.TrimPrefix(p, "assets/")] = asset{
			body:        body,
			contentType: contentType(p),
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil {
		// The files are compiled in: failing to read them is a build bug.
		panic("dashboard: reading embedded assets: " + err.Error())
	}
	return d
}

// contentType names the type of an embedded file by its extension, so
// that nosniff never makes a browser refuse a script or a style sheet.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	}
	return "application/octet-stream"
}

// Routes returns the handlers by ServeMux path, without a method: "/{$}"
// (the page), "/dashboard/" (the page at /dashboard/ and its assets under
// /dashboard/assets/), "/api/clients" and "/api/clients/{name}". The admin
// server registers each as "GET "+path, so other methods are refused by
// its mux and the dashboard stays read-only.
func (d *Dashboard) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"/{$}":                d.secure(http.HandlerFunc(d.page)),
		"/dashboard/":         d.secure(http.HandlerFunc(d.files)),
		"/api/clients":        d.secure(http.HandlerFunc(d.overview)),
		"/api/clients/{name}": d.secure(http.HandlerFunc(d.client)),
		"/shadow/report":      d.secure(http.HandlerFunc(d.shadowReport)),
		"/api/suggestions":    d.secure(http.HandlerFunc(d.suggestions)),
	}
}

// secure sets the headers every dashboard response carries, error
// responses included.
func (d *Dashboard) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

// page serves the dashboard's HTML.
func (d *Dashboard) page(w http.ResponseWriter, r *http.Request) {
	d.serveAsset(w, r, "index.html")
}

// files serves the page at /dashboard/ and the assets below
// /dashboard/assets/; anything else under /dashboard/ is not found.
func (d *Dashboard) files(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/dashboard/":
		d.serveAsset(w, r, "index.html")
	case strings.HasPrefix(p, assetPrefix):
		d.serveAsset(w, r, strings.TrimPrefix(p, assetPrefix))
	default:
		http.NotFound(w, r)
	}
}

// serveAsset writes one embedded file, answering a matching If-None-Match
// with 304. The files are revalidated on every load (no-cache) so that an
// upgraded proxy never runs an old script against a new API.
func (d *Dashboard) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := d.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// overview serves GET /api/clients.
func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) {
	d.writeJSON(w, r, http.StatusOK, d.src.Overview())
}

// client serves GET /api/clients/{name}.
func (d *Dashboard) client(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" {
		// Mounted without the {name} wildcard: take the last segment.
		name = path.Base(r.URL.Path)
	}
	c, ok, err := d.src.ReplicaClient(name, r.URL.Query().Get("replica"))
	if err != nil {
		d.writeJSON(w, r, http.StatusServiceUnavailable, struct {
			Error string `json:"error"`
		}{"the evidence store could not be read: " + err.Error()})
		return
	}
	if !ok {
		d.writeJSON(w, r, http.StatusNotFound, struct {
			Error string `json:"error"`
		}{"unknown client"})
		return
	}
	d.writeJSON(w, r, http.StatusOK, c)
}

// shadowReport serves GET /shadow/report: the evidence's report, with
// whether this replica has a candidate configured.
func (d *Dashboard) shadowReport(w http.ResponseWriter, r *http.Request) {
	rep := d.src.ShadowReport(r.URL.Query().Get("client"))
	rep.CandidateConfigured = d.candidate != nil && d.candidate()
	d.writeJSON(w, r, http.StatusOK, rep)
}

// suggestions serves GET /api/suggestions: JSON, or with ?format=yaml the
// config fragment to paste.
func (d *Dashboard) suggestions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	if format != "" && format != "json" && format != "yaml" {
		d.writeJSON(w, r, http.StatusBadRequest, struct {
			Error string `json:"error"`
		}{"format: json or yaml"})
		return
	}
	sg := d.src.Suggestions(q.Get("client"))
	if format != "yaml" {
		d.writeJSON(w, r, http.StatusOK, sg)
		return
	}
	b, err := sg.YAML()
	if err != nil {
		d.log.Error("dashboard: encoding suggestions", zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.writeBody(w, r, http.StatusOK, "application/yaml; charset=utf-8", b)
}

// writeJSON encodes v as the response. The body is built first so that an
// encoding failure becomes a 500 and not a truncated 200.
func (d *Dashboard) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		d.log.Error("dashboard: encoding response", zap.String("path", r.URL.Path), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	d.writeBody(w, r, status, "application/json", buf.Bytes())
}

// writeBody writes an API response, never cached; a HEAD gets its header
// only.
func (d *Dashboard) writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(b); err != nil {
		d.log.Debug("dashboard: writing response", zap.String("path", r.URL.Path), zap.Error(err))
	}
}
