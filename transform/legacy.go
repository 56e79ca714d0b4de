package transform

import (
	"unsafe"

	"github.com/tidwall/gjson"
)

// Shape names the form of a legacy error body, as matched by Match.Shape.
type Shape string

// The body shapes the legacy API is known to produce.
const (
	// ShapeAny matches every body, JSON or not.
	ShapeAny Shape = ""
	// ShapeError is the documented {"error": "...", "code": ..., "details": ...}.
	ShapeError Shape = "error"
	// ShapeDetail is {"detail": "..."}, from the framework's permission layer.
	ShapeDetail Shape = "detail"
	// ShapeFields is a serializer's {"field": ["msg", ...], ...}.
	ShapeFields Shape = "fields"
	// ShapePydantic is FastAPI's {"detail": [{"loc": [...], "msg": "..."}]}.
	ShapePydantic Shape = "pydantic"
	// ShapeNotJSON is a body that is not a JSON object at all (an HTML page
	// from a load balancer, an empty body, malformed JSON).
	ShapeNotJSON Shape = "not_json"
)

// legacyBody is what one pass over a legacy error body finds. All strings
// are views into the body, which the caller keeps alive and unmodified for
// as long as the legacyBody is used.
type legacyBody struct {
	json    string // the body, viewed as a string without copying
	object  bool   // the body is a valid JSON object
	shape   Shape
	message string // first present of error, message, detail (string)
	hasMsg  bool
	code    string
	hasCode bool
	details gjson.Result
	detail  gjson.Result
	// envelope reports a body that is already in envelope form: boolean
	// "success" and a "data" key.
	envelope bool
	// paths remembers the paths read with getPath; AppendError sets it.
	paths *pathCache
}

// pathCache remembers the first few paths read from one legacy body and
// what they found: a rule that requires a value usually puts it in its
// message too (the credits rule reads details.credits and details.required
// twice), and each read parses the body from its start. It lives in the
// rewrite's pooled scratch space rather than in legacyBody, which is on the
// stack of every rewrite.
type pathCache struct {
	paths [4]string
	found [4]gjson.Result
	n     int
}

// viewString returns b as a string without copying. The caller must not
// modify b while the string is in use; every caller here only reads bodies
// it owns for the duration of one rewrite.
func viewString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// parseLegacy reads the parts of a legacy error body that rules match on, in
// one pass over its top-level keys. Invalid JSON yields ShapeNotJSON.
func parseLegacy(body []byte) legacyBody {
	lb := legacyBody{shape: ShapeNotJSON}
	if !gjson.ValidBytes(body) {
		return lb
	}
	lb.json = viewString(body)
	root := gjson.Parse(lb.json)
	if !root.IsObject() {
		return lb
	}
	lb.object = true
	var (
		errMsg, msgMsg, detailMsg gjson.Result
		hasSuccess, hasData       bool
		fieldsOnly                = true
		keys                      int
	)
	root.ForEach(func(key, value gjson.Result) bool {
		keys++
		switch key.Str {
		case "error":
			errMsg = value
		case "message":
			msgMsg = value
		case "detail":
			lb.detail = value
			detailMsg = value
		case "code":
			if value.Type == gjson.String {
				lb.code, lb.hasCode = value.Str, true
			}
		case "details":
			lb.details = value
		case "success":
			hasSuccess = value.Type == gjson.True || value.Type == gjson.False
		case "data":
			hasData = true
		}
		if fieldsOnly && !isFieldMessages(value) {
			fieldsOnly = false
		}
		return true
	})
	lb.envelope = hasSuccess && hasData
	switch {
	case errMsg.Type == gjson.String:
		lb.message, lb.hasMsg = errMsg.Str, true
	case msgMsg.Type == gjson.String:
		lb.message, lb.hasMsg = msgMsg.Str, true
	case detailMsg.Type == gjson.String:
		lb.message, lb.hasMsg = detailMsg.Str, true
	}
	switch {
	case errMsg.Exists():
		lb.shape = ShapeError
	case lb.detail.Type == gjson.String:
		lb.shape = ShapeDetail
	case isPydantic(lb.detail):
		lb.shape = ShapePydantic
	case fieldsOnly && keys > 0:
		lb.shape = ShapeFields
	default:
		lb.shape = ShapeAny
	}
	return lb
}

// isFieldMessages reports whether v looks like a serializer's list of
// messages for one field: a non-empty array whose first element is a string.
func isFieldMessages(v gjson.Result) bool {
	if !v.IsArray() {
		return false
	}
	first := v.Get("0")
	return first.Type == gjson.String
}

// isPydantic reports whether detail is FastAPI's validation error list.
func isPydantic(detail gjson.Result) bool {
	if !detail.IsArray() {
		return false
	}
	first := detail.Get("0")
	return first.IsObject() && first.Get("loc").IsArray() && first.Get("msg").Exists()
}
