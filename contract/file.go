package contract

import (
	"fmt"
	"os"
)

// maxDocumentBytes bounds the OpenAPI document read: a config naming the
// wrong file (a log, a database) is refused rather than read whole.
const maxDocumentBytes = 16 << 20

// readFile reads the document at path, refusing one larger than
// maxDocumentBytes.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document: %w", err)
	}
	if fi.Size() > maxDocumentBytes {
		return nil, fmt.Errorf("reading the OpenAPI document %s: %d bytes, more than %d", path, fi.Size(), maxDocumentBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document: %w", err)
	}
	return data, nil
}
