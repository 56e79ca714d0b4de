package transform

import "github.com/tidwall/gjson"

// FieldsFrom names where a rule finds per-field validation messages.
type FieldsFrom string

// The sources of per-field messages.
const (
	// FieldsNone gives the single entry {code: [message]}.
	FieldsNone FieldsFrom = ""
	// FieldsDetails reads {"details": {field: [msgs]}} (invalid_payload).
	FieldsDetails FieldsFrom = "details"
	// FieldsBody reads a body that is itself {field: [msgs]}.
	FieldsBody FieldsFrom = "body"
	// FieldsPydantic reads {"detail": [{"loc": [..., field], "msg": m}]}.
	FieldsPydantic FieldsFrom = "pydantic"
)

// nonFieldErrors is the serializer's key for errors not tied to one field;
// its messages are not prefixed with a field name.
const nonFieldErrors = "non_field_errors"

// fieldMessage is one message for one field, in legacy body order.
type fieldMessage struct {
	field string
	msg   string
}

// collectFields lists the field messages a rule's FieldsFrom points at.
// Values that are not strings are kept as their raw JSON text, so that
// every envelope entry is a non-empty list of strings.
func collectFields(lb *legacyBody, from FieldsFrom, dst []fieldMessage) []fieldMessage {
	if !lb.object {
		return dst
	}
	addAll := func(field string, v gjson.Result) {
		if v.IsArray() {
			v.ForEach(func(_, m gjson.Result) bool {
				dst = append(dst, fieldMessage{field: field, msg: messageText(m)})
				return true
			})
			return
		}
		if v.Exists() {
			dst = append(dst, fieldMessage{field: field, msg: messageText(v)})
		}
	}
	switch from {
	case FieldsDetails:
		if lb.details.IsObject() {
			lb.details.ForEach(func(k, v gjson.Result) bool {
				addAll(k.Str, v)
				return true
			})
		}
	case FieldsBody:
		gjson.Parse(lb.json).ForEach(func(k, v gjson.Result) bool {
			addAll(k.Str, v)
			return true
		})
	case FieldsPydantic:
		if lb.detail.IsArray() {
			lb.detail.ForEach(func(_, e gjson.Result) bool {
				loc := e.Get("loc")
				var field string
				if loc.IsArray() {
					elems := loc.Array()
					if len(elems) > 0 {
						field = messageText(elems[len(elems)-1])
					}
				}
				if field == "" {
					field = nonFieldErrors
				}
				addAll(field, e.Get("msg"))
				return true
			})
		}
	}
	return dst
}

// messageText returns a JSON value as message text: a string's contents,
// or any other value's raw JSON.
func messageText(v gjson.Result) string {
	if v.Type == gjson.String {
		return v.Str
	}
	return v.Raw
}

// fieldSummary returns the envelope message for field errors: the first
// field's first message, prefixed with the field name.
func fieldSummary(dst []byte, fms []fieldMessage) []byte {
	if len(fms) == 0 {
		return dst
	}
	if fms[0].field != nonFieldErrors {
		dst = append(dst, fms[0].field...)
		dst = append(dst, ": "...)
	}
	return append(dst, fms[0].msg...)
}

// appendFieldErrors appends one {field: [msgs]} entry per distinct field, in
// order of first appearance, merging repeated fields. It is linear in the
// number of messages, however many distinct fields a hostile body names.
func appendFieldErrors(dst []byte, fms []fieldMessage) []byte {
	next := make([]int, len(fms)) // index of the field's next message, or 0
	last := make(map[string]int, len(fms))
	for i, fm := range fms {
		if j, ok := last[fm.field]; ok {
			next[j] = i
		}
		last[fm.field] = i
	}
	seen := make(map[string]bool, len(last))
	for i, fm := range fms {
		if seen[fm.field] {
			continue
		}
		seen[fm.field] = true
		if len(seen) > 1 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		dst = appendString(dst, fm.field)
		dst = append(dst, ":["...)
		dst = appendString(dst, fm.msg)
		for j := next[i]; j != 0; j = next[j] {
			dst = append(dst, ',')
			dst = appendString(dst, fms[j].msg)
		}
		dst = append(dst, "]}"...)
	}
	return dst
}
