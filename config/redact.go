package config

import (
	"errors"
	"fmt"

	"github.com/envelope-proxy/envelope-proxy/redact"
	"go.yaml.in/yaml/v3"
)

// RedactPaths is dashboard.redact: JSON Pointers compiled once, when the
// config is decoded, so that the evidence and the shadow comparison mask
// with the same compiled paths, and a pointer that does not parse is
// refused with its field path like any other bad value.
type RedactPaths struct {
	redact.Paths
}

// NewRedactPaths compiles pointers, for configs built in code.
func NewRedactPaths(pointers ...string) (RedactPaths, error) {
	p, err := redact.Compile(pointers)
	if err != nil {
		return RedactPaths{}, fmt.Errorf("dashboard.redact: %w", err)
	}
	return RedactPaths{p}, nil
}

// UnmarshalYAML compiles the list. A bad pointer is reported as a type
// error on its own line, which Parse turns into its field path
// (dashboard.redact[1]).
func (r *RedactPaths) UnmarshalYAML(n *yaml.Node) error {
	var pointers []string
	if err := n.Decode(&pointers); err != nil {
		return err
	}
	p, err := redact.Compile(pointers)
	if err != nil {
		line := n.Line
		var pe *redact.PointerError
		if errors.As(err, &pe) && pe.Index < len(n.Content) {
			line = n.Content[pe.Index].Line
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", line, err)}}
	}
	r.Paths = p
	return nil
}

// MarshalYAML writes the pointers as they were given.
func (r RedactPaths) MarshalYAML() (any, error) {
	ptrs := r.Pointers()
	if ptrs == nil {
		ptrs = []string{}
	}
	return ptrs, nil
}
