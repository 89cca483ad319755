// Package testenv gives tests real infrastructure: a throwaway PostgreSQL
// cluster (one per test binary, one fresh database per test cloned from a
// template) and a moto_server AWS emulator. Packages using it must call Main:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// so the servers are stopped when the tests end. Missing binaries fail the test
// with an install hint; set DRBOT_TEST_ALLOW_SKIP=1 (outside CI) to skip instead.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// errMissing marks errors caused by a program that is not installed.
var errMissing = errors.New("missing program")

var (
	mu          sync.Mutex
	mainRunning bool
	baseDir     string // drbot-testenv-<pid>-* under os.TempDir, removed by Main
)

// Main runs the tests and then stops every server testenv started. Call it from
// TestMain. An interrupt (Ctrl-C, SIGTERM) also stops them before exiting.
func Main(m *testing.M) {
	mu.Lock()
	mainRunning = true
	mu.Unlock()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "testenv: %v: stopping test servers\n", s)
		teardown()
		os.Exit(1)
	}()
	code := m.Run()
	signal.Stop(sigs)
	teardown()
	os.Exit(code)
}

// teardown stops the shared servers and removes the working directory.
func teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopPostgres(ctx)
	stopMoto()
	mu.Lock()
	dir := baseDir
	baseDir = ""
	mu.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// requireMain fails t when the package has no TestMain calling Main: without
// it the servers would outlive the test binary.
func requireMain(t testing.TB) {
	t.Helper()
	mu.Lock()
	ok := mainRunning
	mu.Unlock()
	if !ok {
		t.Fatalf("testenv: add `func TestMain(m *testing.M) { testenv.Main(m) }` to this package's tests so the servers testenv starts are stopped at the end")
	}
}

// unavailable reports a missing program: a loud failure, or a loud skip when
// DRBOT_TEST_ALLOW_SKIP=1 outside CI. Other errors always fail.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, errMissing) && os.Getenv("DRBOT_TEST_ALLOW_SKIP") == "1" && os.Getenv("CI") == "" {
		t.Skipf("SKIPPED (DRBOT_TEST_ALLOW_SKIP=1): %v", err)
	}
	if errors.Is(err, errMissing) {
		t.Fatalf("%v\n(tests need it; to skip them locally instead, set DRBOT_TEST_ALLOW_SKIP=1)", err)
	}
	t.Fatalf("%v", err)
}

// workDir returns this process's working directory, creating it (and sweeping
// what killed test binaries left behind) on first use. The caller holds mu.
func workDir() (string, error) {
	if baseDir != "" {
		return baseDir, nil
	}
	sweepStale()
	dir, err := os.MkdirTemp("", "drbot-testenv-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("testenv: create a working directory: %w", err)
	}
	// The PostgreSQL server may run as another user (as root: postgres); it must
	// be able to pass through (not list) this directory.
	if err := os.Chmod(dir, 0o711); err != nil { //nolint:gosec // postgres must traverse, not list
		return "", fmt.Errorf("testenv: %w", err)
	}
	baseDir = dir
	return dir, nil
}

// sweepStale stops the servers and removes the directories of test binaries
// that died without running their teardown (e.g. a test timeout or kill -9).
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "drbot-testenv-*-*"))
	for _, dir := range dirs {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), "drbot-testenv-"), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || running(pid) {
			continue
		}
		pidFiles, _ := filepath.Glob(filepath.Join(dir, "*", "pgdata", "postmaster.pid"))
		for _, pf := range pidFiles {
			if b, err := os.ReadFile(pf); err == nil {
				first, _, _ := strings.Cut(string(b), "\n")
				if ppid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && running(ppid) && comm(ppid) == "postgres" {
					_ = syscall.Kill(ppid, syscall.SIGQUIT) // immediate shutdown
				}
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}
