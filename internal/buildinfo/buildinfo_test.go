package buildinfo

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveLinkTimeValuesWin(t *testing.T) {
	read := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Version: "v0.0.1"},
			Settings:  []debug.BuildSetting{{Key: "vcs.revision", Value: "feedface"}},
		}, true
	}
	got := resolve("v1.2.3", "abc", read)
	if got.Version != "v1.2.3" || got.Commit != "abc" {
		t.Fatalf("got %+v, want link-time values", got)
	}
}

func TestResolveFallsBackToBuildInfo(t *testing.T) {
	read := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Version: "v0.4.0"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123456789abcdef0123"},
				{Key: "vcs.modified", Value: "true"},
			},
		}, true
	}
	got := resolve("", "", read)
	if got.Version != "v0.4.0" || got.Commit != "0123456789abcdef0123" || !got.Modified {
		t.Fatalf("got %+v", got)
	}
	want := "drbot v0.4.0 (commit 0123456789ab-dirty, go1.26.8, " + runtime.GOOS + "/" + runtime.GOARCH + ")"
	if s := got.String(); s != want {
		t.Fatalf("String() = %q, want %q", s, want)
	}
}

func TestResolveDefaults(t *testing.T) {
	read := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true
	}
	got := resolve("", "", read)
	if got.Version != "dev" || got.Commit != "unknown" || got.GoVersion != runtime.Version() {
		t.Fatalf("got %+v", got)
	}
	got = resolve("", "", func() (*debug.BuildInfo, bool) { return nil, false })
	if got.Version != "dev" || got.Commit != "unknown" {
		t.Fatalf("got %+v without build info", got)
	}
}

// TestLdflags builds a tiny program with -ldflags -X and checks the values arrive.
func TestLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "v")
	const pkg = "github.com/drbot-dev/drbot/internal/buildinfo"
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X "+pkg+".Version=v9.9.9 -X "+pkg+".Commit=cafebabe", "./testdata/printversion")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.HasPrefix(string(out), "drbot v9.9.9 (commit cafebabe, go") {
		t.Fatalf("output %q", out)
	}
}
