package config

import (
	"maps"
	"slices"
)

func sortedKeys(m map[string]int64) []string {
	return slices.Sorted(maps.Keys(m))
}
