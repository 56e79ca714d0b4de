package main

import (
	"reflect"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// TestEmbeddedConfigIsTheDefault keeps config.yaml, which documents the
// defaults and is built into the binary, equal to config.Default.
func TestEmbeddedConfigIsTheDefault(t *testing.T) {
	got, err := config.Parse(defaultConfig)
	if err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	if want := config.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("config.yaml differs from config.Default():\n got %+v\nwant %+v", got, want)
	}
}
