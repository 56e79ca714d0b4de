package cli

import "runtime/debug"

// version is set at link time (-ldflags "-X .../cli.version=v1.2.3");
// otherwise the module version or VCS revision from the build info is used.
var version = ""

// Version returns the binary's version.
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
