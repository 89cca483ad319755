// Package buildinfo reports which build of drbot is running.
//
// Release builds set Version and Commit with
//
//	go build -ldflags "-X github.com/drbot-dev/drbot/internal/buildinfo.Version=v1.2.3 -X github.com/drbot-dev/drbot/internal/buildinfo.Commit=abc1234"
//
// Otherwise they come from the module and VCS information the Go toolchain embeds,
// and finally default to "dev" and "unknown".
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// Version is the release version, set at link time with -ldflags -X.
var Version = ""

// Commit is the VCS revision, set at link time with -ldflags -X.
var Commit = ""

// Info is the resolved build information.
type Info struct {
	Version   string
	Commit    string
	Modified  bool // the working tree had uncommitted changes (from VCS info)
	GoVersion string
	OS        string
	Arch      string
}

var (
	once     sync.Once
	resolved Info
)

// Get returns the build information, resolving link-time values first, then the
// toolchain's embedded build info, then defaults.
func Get() Info {
	once.Do(func() {
		resolved = resolve(Version, Commit, debug.ReadBuildInfo)
	})
	return resolved
}

// resolve is Get without the caching, with the build-info reader injected for tests.
func resolve(version, commit string, read func() (*debug.BuildInfo, bool)) Info {
	info := Info{
		Version:   version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
	if bi, ok := read(); ok && bi != nil {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

// ShortCommit returns the first 12 characters of the commit.
func (i Info) ShortCommit() string {
	if len(i.Commit) > 12 {
		return i.Commit[:12]
	}
	return i.Commit
}

// String formats the information on one line, as `drbot version` prints it.
func (i Info) String() string {
	commit := i.ShortCommit()
	if i.Modified {
		commit += "-dirty"
	}
	return fmt.Sprintf("drbot %s (commit %s, %s, %s/%s)", i.Version, commit, i.GoVersion, i.OS, i.Arch)
}

// String returns the running build's information on one line, for `drbot version`.
func String() string { return Get().String() }
