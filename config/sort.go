package config

import (
	"maps"
	"slices"
)

// sortedKeys returns m's keys in order, so that problems are reported in
// the same order on every run.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
