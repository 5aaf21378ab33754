package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/deoss/deoss/internal/types"
)

// Version is the release version; release builds set it with
// -ldflags "-X github.com/deoss/deoss/internal/version.Version=v1.2.3".
var Version = "v0.1.0-dev"

// Info describes the running build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"go_version"`
	// FormatVersion is the format new files are written in; every older
	// one is still read.
	FormatVersion uint8 `json:"format_version"`
}

// Get returns the build's Info.
func Get() Info {
	i := Info{Version: Version, GoVersion: runtime.Version(), FormatVersion: types.FormatV2}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				i.Commit = s.Value
			}
		}
	}
	return i
}

// String is the one-line form `deoss version` prints.
func (i Info) String() string {
	s := fmt.Sprintf("deoss %s (writes format v%d, reads v1-v%d, %s)", i.Version, i.FormatVersion, i.FormatVersion, i.GoVersion)
	if i.Commit != "" {
		s += " commit " + i.Commit
	}
	return s
}
