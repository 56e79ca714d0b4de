package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// authorized reports whether r may use the admin listener: always when no
// token is configured, else when it carries the token whose SHA-256 is
// digestHex, as a bearer token (scripts, Prometheus) or as the password of
// HTTP Basic auth (browsers, which then prompt for it and send it with
// every request of the page). The comparison takes constant time.
func authorized(r *http.Request, digestHex string) bool {
	if digestHex == "" {
		return true
	}
	want, err := hex.DecodeString(digestHex)
	if err != nil || len(want) != sha256.Size {
		// Validate refuses such a digest; refusing every request is the
		// safe reading of one that slipped through.
		return false
	}
	var token string
	if _, password, ok := r.BasicAuth(); ok {
		token = password
	} else if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(cred)
	}
	if token == "" {
		return false
	}
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// rebound reports a request that reached a loopback listener under a name
// other than localhost or an IP address, with no token configured: what a
// DNS rebinding page in the operator's browser would send. Without a token
// the loopback address is the only protection, so such requests are
// refused; probes and scrapes address the listener by IP.
func rebound(r *http.Request, digestHex string) bool {
	if digestHex != "" {
		return false
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	ap, err := netip.ParseAddrPort(local.String())
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return false
	}
	_, err = netip.ParseAddr(host)
	return err != nil
}

// unauthenticated lists the paths open without the token: the probes,
// which kubelets and load balancers call without credentials and which
// reveal nothing.
func unauthenticated(path string) bool {
	return path == "/healthz" || path == "/readyz"
}

// challenge answers 401 with both schemes, so a browser shows its login
// prompt (any user name, the token as password).
func challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="envelope-proxy admin", charset="UTF-8"`)
	w.Header().Add("WWW-Authenticate", `Bearer realm="envelope-proxy admin"`)
	http.Error(w, "unauthorized: this admin listener needs its token (admin.token_sha256)", http.StatusUnauthorized)
}
