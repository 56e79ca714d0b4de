package transform

import (
	"net/http"
	"strconv"
)

// StatusCode returns the envelope error code derived from an HTTP status
// alone, used when neither a rule nor the legacy body names one.
func StatusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusBadGateway:
		return "bad_gateway"
	case http.StatusGatewayTimeout:
		return "gateway_timeout"
	}
	if status >= 100 && status <= 999 {
		return statusCodeNames[status-100]
	}
	return "http_" + strconv.Itoa(status)
}

// StatusText returns the human message used when a legacy error carries
// none: the standard reason phrase, or "HTTP <status>" for unregistered codes.
func StatusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	if status >= 100 && status <= 999 {
		return statusTexts[status-100]
	}
	return "HTTP " + strconv.Itoa(status)
}

// statusCodeNames and statusTexts are built once so that the hot path never
// formats a number for a status it has already seen.
var statusCodeNames, statusTexts = func() (names, texts [900]string) {
	for i := range names {
		s := strconv.Itoa(i + 100)
		names[i] = "http_" + s
		texts[i] = "HTTP " + s
	}
	return names, texts
}()
