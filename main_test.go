package main

import (
	"os"
	"reflect"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// asBinary is the environment variable that makes the test binary run as
// envelope-proxy itself (main's run, on its arguments), so that tests can
// start replicas as real processes and kill them as such.
const asBinary = "ENVELOPE_PROXY_TEST_AS_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(asBinary) == "1" {
		os.Exit(run())
	}
	os.Exit(m.Run())
}

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
