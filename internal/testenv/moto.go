package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// motoServer is a running moto_server process.
type motoServer struct {
	cmd     *exec.Cmd
	url     string
	logPath string
	exited  chan struct{}
}

var (
	moto    *motoServer
	motoErr error
)

// Moto returns the endpoint (http://127.0.0.1:PORT) of this test binary's
// moto_server, starting it on first use, with its state reset so the test
// starts from an empty AWS. Point the AWS SDK at it with BaseEndpoint (S3 with
// UsePathStyle) and any credentials. It sets no environment variables.
func Moto(t testing.TB) string {
	t.Helper()
	requireMain(t)
	mu.Lock()
	if moto == nil && motoErr == nil {
		began := time.Now()
		moto, motoErr = startMoto()
		if motoErr == nil {
			t.Logf("testenv: moto_server started in %s (%s)", time.Since(began).Round(time.Millisecond), moto.url)
		}
	}
	m, err := moto, motoErr
	mu.Unlock()
	if err != nil {
		unavailable(t, err)
	}
	if err := m.reset(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return m.url
}

// startMoto starts moto_server on a free port; the caller holds mu.
func startMoto() (*motoServer, error) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("%w: moto_server not found on PATH: install it with pip install 'moto[server]'", errMissing)
	}
	base, err := workDir()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 {
		m, err := tryStartMoto(path, base)
		if err == nil {
			return m, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

func tryStartMoto(path, base string) (*motoServer, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testenv: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	logPath := filepath.Join(base, "moto-"+strconv.Itoa(port)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	defer logFile.Close()
	cmd := exec.CommandContext(context.Background(), path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = motoSysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testenv: start moto_server: %w", err)
	}
	m := &motoServer{cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port), logPath: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(m.exited) }()

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, m.url+"/moto-api/", nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			return m, nil
		}
		select {
		case <-m.exited:
			return nil, fmt.Errorf("testenv: moto_server exited at start (%v); its output:\n%s", cmd.ProcessState, tail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, fmt.Errorf("testenv: moto_server did not answer on %s within a minute; its output:\n%s", m.url, tail(logPath))
		}
	}
}

// reset wipes moto's state (all services).
func (m *motoServer) reset() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reset moto_server: %w\n%s", err, tail(m.logPath))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset moto_server: %s: %s", resp.Status, body)
	}
	return nil
}

// stop terminates moto_server and its process group, forcefully after 5 s.
func (m *motoServer) stop() {
	pid := m.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-m.exited
	}
}

// stopMoto stops the shared moto_server (at teardown).
func stopMoto() {
	mu.Lock()
	m := moto
	moto, motoErr = nil, errors.New("testenv: the tests are over")
	mu.Unlock()
	if m != nil {
		m.stop()
	}
}

// tail returns the last lines of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
