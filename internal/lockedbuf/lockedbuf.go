// Package lockedbuf is a bytes.Buffer safe for concurrent writers, for the
// tests that read what a running component logs (the proxy's loggers, a
// replica's stderr) while it is still writing.
package lockedbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes from any number of goroutines; String reads what
// has been written so far.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
