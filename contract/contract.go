// Package contract checks envelopes against the new API's OpenAPI
// document: the envelopes envelope-proxy sends to envelope clients, those a
// shadow client's dry run computes, and those its rules make of their
// examples, so that a platform team sees, before flipping anyone and with no
// candidate service, every envelope the new API's contract does not allow.
//
// The validation is kin-openapi's (openapi3filter); this package only finds
// the response an envelope is held to and names what is wrong with it. A
// request whose method and path an operation of the document describes is
// held to that operation's response for its status; any other request to
// components.responses by status ("402"), else "default": the built-in
// contract (envelope.openapi.yaml) describes no paths, so it holds every
// route to the envelope's responses.
package contract

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/tidwall/gjson"
)

//go:embed envelope.openapi.yaml
var builtin []byte

// ExtensionKey marks a schema or response that documents what the new API's
// documentation does not, but envelope-proxy's built-in mapping emits.
const ExtensionKey = "x-envelope-proxy-extension"

// The reasons an envelope breaks the contract: the metric's reason label.
const (
	// ReasonUndocumentedStatus: no response of the document covers the
	// envelope's status.
	ReasonUndocumentedStatus = "undocumented_status"
	// ReasonUndocumentedCode: the status is documented, with its error
	// codes, and the envelope's code is not among them.
	ReasonUndocumentedCode = "undocumented_code"
	// ReasonSchema: the envelope does not match its response's schema.
	ReasonSchema = "schema"
	// ReasonNotJSON: the envelope is not JSON at all.
	ReasonNotJSON = "not_json"
)

// Reasons lists the reasons, for metrics that start at zero.
var Reasons = []string{ReasonUndocumentedStatus, ReasonUndocumentedCode, ReasonSchema, ReasonNotJSON}

// maxDetail bounds the validator's message kept with a violation.
const maxDetail = 512

// Document is a loaded contract, immutable and safe for concurrent use.
type Document struct {
	name   string
	doc    *openapi3.T
	router routers.Router
	// free caches dataFree by status (int to bool).
	free sync.Map
}

// Builtin returns the built-in envelope contract.
func Builtin() (*Document, error) { return Parse(builtin, "built-in envelope contract") }

// Load reads and checks the OpenAPI 3.0 or 3.1 document at path. External
// references are not followed: the document is read alone.
func Load(path string) (*Document, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse reads and checks an OpenAPI document (YAML or JSON) named name.
func Parse(data []byte, name string) (*Document, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("loading the OpenAPI document %s: %w", name, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the OpenAPI document %s is not valid: %w", name, err)
	}
	// The proxy's requests carry its own host: servers are matched on
	// their paths alone.
	for _, s := range doc.Servers {
		if u, err := url.Parse(s.URL); err == nil && u.Host != "" {
			s.URL = u.Path
		}
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing the OpenAPI document %s: %w", name, err)
	}
	return &Document{name: name, doc: doc, router: router}, nil
}

// Name is the document's path, or the built-in contract's name.
func (d *Document) Name() string { return d.name }

// Envelope is one envelope to check.
type Envelope struct {
	// Method and Path are the client's request, which choose the
	// operation.
	Method string
	Path   string
	Status int
	// Body is the envelope, decoded from its Content-Encoding.
	Body []byte
	// Fields reports errors keyed by field rather than by code.
	Fields bool
}

// Finding is what the check found: a Reason when the envelope breaks the
// contract, and an Extension note when it is allowed only as something the
// document marks as beyond the new API's documentation.
type Finding struct {
	Reason string
	// Detail is the validator's reason, and Pointer the JSON Pointer of
	// the value at fault ("" when unknown). A reason can quote the value:
	// it is the body's, and kept only as a sample is.
	Detail    string
	Pointer   string
	Extension string
	// Operation is the path template of the operation the envelope was
	// held to ("/v1/jobs/{id}"), "" when no operation describes its
	// request.
	Operation string
}

// Broken reports whether the envelope breaks the contract.
func (f Finding) Broken() bool { return f.Reason != "" }

// Check holds an envelope to its response in the document.
func (d *Document) Check(ctx context.Context, e Envelope) Finding {
	route, params := d.find(e)
	var f Finding
	if route != nil {
		f.Operation = route.Path
	}
	var value any
	if err := json.Unmarshal(e.Body, &value); err != nil {
		f.Reason = ReasonNotJSON
		f.Detail, _ = detail(err)
		return f
	}
	resp := d.response(route, e.Status)
	if resp == nil {
		f.Reason, f.Detail = ReasonUndocumentedStatus, fmt.Sprintf("no response for status %d, and no default", e.Status)
		return f
	}
	f.Extension = extension(resp.Extensions)
	d.codes(resp, e, &f)
	if f.Broken() {
		return f
	}
	if err := d.validate(ctx, e, route, params, resp, value); err != nil {
		f.Reason = ReasonSchema
		f.Detail, f.Pointer = detail(err)
	}
	return f
}

// describesPaths reports whether the document has operations: without
// any, every envelope is held to components.responses by its status alone.
func (d *Document) describesPaths() bool { return d.doc.Paths != nil && d.doc.Paths.Len() > 0 }

// find is the operation of e's method and path, nil when the document
// describes none. A HEAD is held to its GET.
func (d *Document) find(e Envelope) (*routers.Route, map[string]string) {
	if !d.describesPaths() {
		return nil, nil
	}
	method := e.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, (&url.URL{Path: e.Path}).String(), nil)
	if err != nil {
		return nil, nil
	}
	route, params, err := d.router.FindRoute(req)
	if err != nil {
		return nil, nil
	}
	return route, params
}

// response finds the response an envelope of status is held to: its
// operation's, for its status, its class ("4XX") or default, else
// components.responses' by status, else their default.
func (d *Document) response(route *routers.Route, status int) *openapi3.Response {
	if route != nil && route.Operation != nil && route.Operation.Responses != nil {
		rs := route.Operation.Responses
		for _, key := range []string{strconv.Itoa(status), strconv.Itoa(status/100) + "XX"} {
			if ref := rs.Value(key); ref != nil && ref.Value != nil {
				return ref.Value
			}
		}
		if ref := rs.Default(); ref != nil && ref.Value != nil {
			return ref.Value
		}
		return nil
	}
	if d.doc.Components == nil {
		return nil
	}
	for _, key := range []string{strconv.Itoa(status), "default"} {
		if ref := d.doc.Components.Responses[key]; ref != nil && ref.Value != nil {
			return ref.Value
		}
	}
	return nil
}

// validate checks value against resp's JSON schema: through the operation
// (openapi3filter.ValidateResponse) when one matched, else directly.
func (d *Document) validate(ctx context.Context, e Envelope, route *routers.Route, params map[string]string, resp *openapi3.Response, value any) error {
	if route != nil {
		req, err := http.NewRequestWithContext(ctx, route.Method, (&url.URL{Path: e.Path}).String(), nil)
		if err != nil {
			return err
		}
		return openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
			Status:                 e.Status,
			Header:                 http.Header{"Content-Type": {"application/json"}},
			Body:                   io.NopCloser(bytes.NewReader(e.Body)),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		})
	}
	mt := resp.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return nil
	}
	var opts []openapi3.SchemaValidationOption
	if d.doc.IsOpenAPI31OrLater() {
		opts = append(opts, openapi3.EnableJSONSchema2020())
	}
	return mt.Schema.Value.VisitJSON(value, opts...)
}

// codes holds the keys of e's errors entries to the codes its response
// lists, when it lists any: the errors items that are each one required
// property and nothing else name a code; one whose other properties are
// free allows field keys. An error keyed by field needs a response that
// allows field keys; any other key must be a listed code.
func (d *Document) codes(resp *openapi3.Response, e Envelope, f *Finding) {
	mt := resp.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return
	}
	l := listCodes(mt.Schema)
	if e.Fields {
		if !l.fields && len(l.codes) > 0 {
			f.Reason, f.Detail = ReasonUndocumentedCode, fmt.Sprintf("status %d documents codes %s, and no errors keyed by field", e.Status, strings.Join(l.order, ", "))
		} else if l.fieldsExtension != "" {
			f.Extension = l.fieldsExtension
		}
		return
	}
	if len(l.codes) == 0 {
		return
	}
	gjson.GetBytes(e.Body, "errors.#.@keys|@flatten").ForEach(func(_, key gjson.Result) bool {
		note, ok := l.codes[key.String()]
		if !ok {
			f.Reason, f.Detail = ReasonUndocumentedCode, fmt.Sprintf("status %d documents codes %s, not %q", e.Status, strings.Join(l.order, ", "), key.String())
			return false
		}
		if note != "" && f.Extension == "" {
			f.Extension = note
		}
		return true
	})
}

// codeList are the error codes a response's schema lists, in order, each
// with its extension note ("" when documented), and whether (with which
// note) it allows errors keyed by field.
type codeList struct {
	codes           map[string]string
	order           []string
	fields          bool
	fieldsExtension string
}

// listCodes walks a response schema to its errors items.
func listCodes(ref *openapi3.SchemaRef) codeList {
	l := codeList{codes: map[string]string{}}
	seen := map[*openapi3.Schema]bool{}
	var items func(*openapi3.SchemaRef)
	items = func(r *openapi3.SchemaRef) {
		if r == nil || r.Value == nil || seen[r.Value] {
			return
		}
		s := r.Value
		seen[s] = true
		for _, group := range [][]*openapi3.SchemaRef{s.AnyOf, s.OneOf, s.AllOf} {
			for _, sub := range group {
				items(sub)
			}
		}
		note := extension(s.Extensions)
		switch {
		case len(s.Required) == 1 && s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has:
			if _, dup := l.codes[s.Required[0]]; !dup {
				l.order = append(l.order, s.Required[0])
			}
			l.codes[s.Required[0]] = note
		case len(s.Required) == 0 && s.AdditionalProperties.Schema != nil:
			l.fields, l.fieldsExtension = true, note
		}
	}
	var walk func(*openapi3.SchemaRef)
	walk = func(r *openapi3.SchemaRef) {
		if r == nil || r.Value == nil {
			return
		}
		s := r.Value
		for _, group := range [][]*openapi3.SchemaRef{s.AllOf, s.AnyOf, s.OneOf} {
			for _, sub := range group {
				walk(sub)
			}
		}
		if errs := s.Properties["errors"]; errs != nil && errs.Value != nil && errs.Value.Items != nil {
			items(errs.Value.Items)
		}
	}
	walk(ref)
	return l
}

// extension returns a schema's or response's x-envelope-proxy-extension
// note, "" when it has none.
func extension(ext map[string]any) string {
	switch v := ext[ExtensionKey].(type) {
	case string:
		return v
	case bool:
		if v {
			return "beyond the new API's documentation"
		}
	case nil:
	default:
		return fmt.Sprint(v)
	}
	return ""
}

// detail is err's message as it may be kept, and the JSON Pointer of the
// value at fault ("" when unknown). It is the innermost schema error's
// reason, bounded: the validator's full message goes on with the schema
// and the offending value, which is the body's data and is kept only in a
// redacted sample.
func detail(err error) (msg, pointer string) {
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		for {
			var inner *openapi3.SchemaError
			if se.Origin == nil || !errors.As(se.Origin, &inner) {
				break
			}
			se = inner
		}
		if p := se.JSONPointer(); len(p) > 0 {
			pointer = "/" + strings.Join(p, "/")
		}
		msg = se.Reason
		// JSON Schema 2020 (OpenAPI 3.1) nests its causes as "- at
		// '/path': reason" lines under a heading.
		if head, causes, ok := strings.Cut(msg, "\n"); ok && strings.HasPrefix(head, "jsonschema validation failed") {
			var parts []string
			for _, c := range strings.Split(causes, "\n") {
				if c = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c), "- ")); c != "" {
					parts = append(parts, c)
				}
			}
			msg = strings.Join(parts, "; ")
		}
		msg = stripLocations(msg)
		if pointer != "" {
			msg = "at " + pointer + ": " + msg
		}
		return clipDetail(msg), pointer
	}
	var re *openapi3filter.ResponseError
	if errors.As(err, &re) && re.Err != nil {
		err = re.Err
	}
	msg, _, _ = strings.Cut(err.Error(), "\n")
	return clipDetail(msg), ""
}

// stripLocations removes the locations a validator's reason starts with
// ("error at \"/data/id\": at '/data/id': "), which repeat the pointer.
func stripLocations(msg string) string {
	for {
		rest, ok := "", false
		for _, p := range [...]string{"error at ", "at "} {
			if after, found := strings.CutPrefix(msg, p); found && len(after) > 0 && (after[0] == '"' || after[0] == '\'') {
				if i := strings.Index(after[1:], string(after[0])+": "); i >= 0 {
					rest, ok = after[i+4:], true
					break
				}
			}
		}
		if !ok {
			return msg
		}
		msg = rest
	}
}

func clipDetail(s string) string {
	s, _ = transform.CutString(s, maxDetail)
	return s
}
