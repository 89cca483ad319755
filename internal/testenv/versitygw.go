package testenv

import (
	"context"
	"fmt"
	"go/build"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchS3Env selects the S3 server of the S3 benchmarks: "moto" (or unset) for
// this binary's moto_server, "versitygw" for a versitygw of their own.
const BenchS3Env = "DRBOT_BENCH_S3"

// VersityGWInstall is the command that installs the versitygw VersityGW runs.
const VersityGWInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// BenchS3 returns the S3 server a benchmark should use, as chosen by
// DRBOT_BENCH_S3: its name ("moto" or "versitygw"), endpoint and credentials.
func BenchS3(tb testing.TB) (server, endpoint, access, secret string) {
	tb.Helper()
	switch v := os.Getenv(BenchS3Env); v {
	case "", "moto":
		return "moto", Moto(tb), "test", "test"
	case "versitygw":
		endpoint, access, secret = VersityGW(tb)
		return "versitygw", endpoint, access, secret
	default:
		tb.Fatalf("%s=%q: want moto or versitygw", BenchS3Env, v)
		return "", "", "", ""
	}
}

// VersityGW starts a versitygw (a fast S3-compatible server, posix backend)
// for tb alone, on a free loopback port and an empty directory, and returns
// its endpoint (http://127.0.0.1:PORT) and root credentials. It is stopped
// when tb ends. Point the AWS SDK at it like at Moto (BaseEndpoint, S3 with
// UsePathStyle). versitygw is looked up on PATH, then in $(go env GOPATH)/bin;
// when missing, tb fails with the install command (it is asked for by name, so
// DRBOT_TEST_ALLOW_SKIP does not turn that into a skip).
func VersityGW(tb testing.TB) (endpoint, access, secret string) {
	tb.Helper()
	path, err := versityGWPath()
	if err != nil {
		tb.Fatalf("testenv: versitygw not found on PATH nor in $(go env GOPATH)/bin: install it with %s", VersityGWInstall)
	}
	access, secret = "drbot-bench", "drbot-bench-secret" //nolint:gosec // a throwaway loopback server's root account
	dir := tb.TempDir()
	var lastErr error
	for range 3 {
		began := time.Now()
		endpoint, err = startVersityGW(tb, path, dir, access, secret)
		if err == nil {
			tb.Logf("testenv: versitygw started in %s (%s)", time.Since(began).Round(time.Millisecond), endpoint)
			return endpoint, access, secret
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	tb.Fatalf("testenv: %v", lastErr)
	return "", "", ""
}

// versityGWPath finds the versitygw binary.
func versityGWPath() (string, error) {
	if path, err := exec.LookPath("versitygw"); err == nil {
		return path, nil
	}
	gopath := build.Default.GOPATH
	if out, err := exec.CommandContext(context.Background(), "go", "env", "GOPATH").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		gopath = strings.TrimSpace(string(out))
	}
	for _, p := range filepath.SplitList(gopath) {
		path := filepath.Join(p, "bin", "versitygw")
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", errMissing
}

// startVersityGW starts versitygw serving dir/data on a free port and waits
// until it answers HTTP; tb's cleanup stops it.
func startVersityGW(tb testing.TB, path, dir, access, secret string) (string, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	data := filepath.Join(dir, "data-"+port)
	if err := os.Mkdir(data, 0o700); err != nil {
		return "", err
	}
	logPath := filepath.Join(dir, "versitygw-"+port+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	cmd := exec.CommandContext(context.Background(), path, "--access", access, "--secret", secret,
		"--port", "127.0.0.1:"+port, "posix", data)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = motoSysProcAttr() // own process group; killed if the test binary dies
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start versitygw: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	url := "http://127.0.0.1:" + port
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Any HTTP answer (an unsigned request gets 403) means it is serving.
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url+"/", nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			tb.Cleanup(stop)
			return url, nil
		}
		select {
		case <-exited:
			return "", fmt.Errorf("versitygw exited at start (%v); its output:\n%s", cmd.ProcessState, tail(logPath))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("versitygw did not answer on %s within 30 s; its output:\n%s", url, tail(logPath))
		}
	}
}
