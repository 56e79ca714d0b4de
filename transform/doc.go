// Package transform rewrites legacy API responses into the JSON envelope.
//
// It is pure: bytes, a status and headers go in, bytes, a status and headers
// come out. It does no I/O and keeps no global state, so the proxy, the
// command-line "transform" tool, the fuzz targets and the conformance tests
// all exercise the same code. Legacy bodies are untrusted: they are checked
// with gjson.ValidBytes before any field is read, a body about to be wrapped
// whole is checked by Valid (or, streamed, by a Scanner), and values are
// sliced out of the original bytes rather than decoded, so a success body's
// "data" stays byte-identical to what the upstream sent.
package transform
