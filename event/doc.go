// Package event holds what the proxy and the shadow comparison hand over
// about each exchange they finish: a Request for every request served, a
// Capture of each shadowed exchange for the comparison, and a Comparison for
// each comparison's outcome, with its Sample.
//
// These are plain values with no behaviour of their own, in a package of
// their own so that the producers (packages proxy and shadow) and the
// consumer (package evidence) agree on them without importing each other:
// the request path never links the evidence's storage, and nothing flows
// back from the evidence into the proxy.
package event
