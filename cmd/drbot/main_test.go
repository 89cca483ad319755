package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// drbotBinary builds the real binary once per test run: these tests drive it the
// way an operator or a Kubernetes kubelet would.
func drbotBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "drbot-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "drbot")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// command returns drbot with a clean environment: nothing from the developer's
// shell (a stray DATABASE_URL or SLACK_BOT_TOKEN) leaks into the test.
func command(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(drbotBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	return cmd
}

// repoFile is the absolute path of a file in the repository (the binary prints
// the absolute paths kong resolves).
func repoFile(parts ...string) string {
	p, err := filepath.Abs(filepath.Join(append([]string{"..", ".."}, parts...)...))
	if err != nil {
		panic(err)
	}
	return p
}

func TestConfigValidate(t *testing.T) {
	t.Run("reference configs pass", func(t *testing.T) {
		files := []string{repoFile("deploy", "examples", "drbot.yaml"), repoFile("deploy", "examples", "demo.yaml")}
		if _, err := os.Stat(repoFile("..", "shared", "examples", "drbot.yaml")); err == nil {
			files = append(files, repoFile("..", "shared", "examples", "drbot.yaml"))
		}
		out, err := command(t, nil, append([]string{"config", "validate"}, files...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("config validate: %v\n%s", err, out)
		}
		for _, f := range files {
			if !strings.Contains(string(out), f+": OK") {
				t.Errorf("output does not report %s OK:\n%s", f, out)
			}
		}
	})

	t.Run("broken config exits 1 naming file line and key", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "drbot.yaml")
		ref, err := os.ReadFile(repoFile("deploy", "examples", "drbot.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		// Two mistakes at once: both must be reported in one run.
		broken := strings.Replace(string(ref), "- after: 15m", `- after: "15"`, 1)
		broken = strings.Replace(broken, "rto: ", "rtoo: ", 1)
		if broken == string(ref) {
			t.Fatal("test fixture did not change the reference config")
		}
		if err := os.WriteFile(bad, []byte(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := command(t, nil, "config", "validate", bad)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit = %v, want exit status 1; stderr:\n%s", err, stderr.String())
		}
		got := stderr.String()
		for _, want := range []string{
			`drbot.yaml:`, `.escalation[0].after: "15" is not a duration (want e.g. 15m)`,
			`objectives.rtoo: unknown key "rtoo" (did you mean "rto"?)`,
		} {
			if !strings.Contains(got, want) {
				t.Errorf("stderr lacks %q:\n%s", want, got)
			}
		}
		if strings.Contains(got, "goroutine ") || strings.Contains(got, "panic") {
			t.Errorf("stderr shows a stack trace:\n%s", got)
		}
	})

	t.Run("missing file is a clear error", func(t *testing.T) {
		out, err := command(t, nil, "config", "validate", filepath.Join(t.TempDir(), "nope.yaml")).CombinedOutput()
		if err == nil {
			t.Fatalf("config validate of a missing file succeeded:\n%s", out)
		}
		if !strings.Contains(string(out), "nope.yaml") {
			t.Errorf("error does not name the file:\n%s", out)
		}
	})
}

func TestVersion(t *testing.T) {
	out, err := command(t, nil, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "drbot ") {
		t.Errorf("version output = %q, want it to start with \"drbot \"", out)
	}
}

func TestShellAnswersHelpOnTheStoreFromDatabaseURL(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	cmd := command(t, []string{"DATABASE_URL=" + dbURL}, "shell", "--demo", "--as", "alice", "--data-dir", t.TempDir())
	cmd.Stdin = strings.NewReader("/dr help\n/dr helpp\n/as bob\n/dr help help\n/quit\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("shell: %v\n%s", err, out)
	}
	for _, want := range []string{
		"drbot commands",
		"/dr help",
		"did you mean help?",
		"you are now bob",
		"Usage: /dr help [<command>]",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("shell output lacks %q:\n%s", want, out)
		}
	}
}

func TestShellRejectsBadUserName(t *testing.T) {
	cmd := command(t, []string{"DATABASE_URL=postgres://127.0.0.1:1/none"}, "shell", "--as", "Robert'); DROP")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("shell accepted a bad --as:\n%s", out)
	}
	if !strings.Contains(string(out), "--as:") || strings.Contains(string(out), "goroutine") {
		t.Errorf("unexpected output:\n%s", out)
	}
}

// TestShellPrivatePostgresIsReusedAcrossRestarts runs the shell twice on one data
// directory without DATABASE_URL: the first run creates the private cluster, the
// second reuses it and still sees the first run's incident.
func TestShellPrivatePostgresIsReusedAcrossRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL twice")
	}
	// As root the cluster runs as postgres, which must be able to reach the data
	// directory: open up the test's private temp dirs on the way to it.
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := filepath.Join(tmp, "data")
	run := func(input string) string {
		cmd := command(t, nil, "shell", "--demo", "--log-level", "info", "--data-dir", dataDir)
		cmd.Stdin = strings.NewReader(input)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("shell: %v\n%s", err, out)
		}
		return string(out)
	}
	first := run("/trigger demo-shop checkout returns 500\n/quit\n")
	if !strings.Contains(first, "created #incident-demo-shop-") {
		t.Fatalf("first run did not open an incident channel:\n%s", first)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		if _, err2 := os.Stat(filepath.Join(dataDir, "pgdata", "PG_VERSION")); err2 != nil {
			t.Fatalf("no PostgreSQL cluster under the data dir: %v / %v", err, err2)
		}
	}
	// Same service, same day: the second channel must not reuse the name, which
	// proves the first run's incident survived the restart.
	second := run("/trigger demo-shop checkout still returns 500\n/quit\n")
	if !strings.Contains(second, "created #incident-demo-shop-") || !strings.Contains(second, "-2\n") && !strings.Contains(second, "-2 ") {
		t.Fatalf("second run did not take the -2 channel name (first incident lost?):\n%s", second)
	}
	if strings.Contains(second, "initializing a new PostgreSQL cluster") {
		t.Errorf("second run re-initialised the cluster instead of reusing it:\n%s", second)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is one running drbot serve.
type server struct {
	cmd    *exec.Cmd
	base   string
	logs   *lockedBuffer
	exited chan error
	once   sync.Once
	err    error // the exit status, once exited
}

// startServer starts cmd (a `drbot serve` listening on addr), waits until
// /readyz answers 200 and kills it at the end of the test if still running.
func startServer(t *testing.T, cmd *exec.Cmd, addr string) *server {
	t.Helper()
	s := &server{cmd: cmd, base: "http://" + addr, logs: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() { s.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.exited:
			s.once.Do(func() { s.err = err })
			t.Fatalf("serve exited before it was ready: %v\n%s", err, s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready after 60s:\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill is kill -9: no graceful shutdown, jobs left as they are.
func (s *server) kill() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		s.err = <-s.exited
	})
}

// terminate sends SIGTERM and returns the exit status; it fails the test when
// the process does not exit within 60 s.
func (s *server) terminate(t *testing.T) error {
	t.Helper()
	s.once.Do(func() {
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case s.err = <-s.exited:
		case <-time.After(60 * time.Second):
			_ = s.cmd.Process.Kill()
			s.err = <-s.exited
			t.Fatalf("serve did not exit within 60s of SIGTERM:\n%s", s.logs.String())
		}
	})
	return s.err
}

func TestServeEndToEnd(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	slack := fakeslack.New()
	t.Cleanup(slack.Close)
	alice := slack.AddUser(fakeslack.User{Name: "alice", Email: "alice@example.com"})
	general := slack.AddChannel("general", alice)

	const secret = "test-signing-secret"
	addr := freeAddr(t)
	cmd := command(t, []string{
		"DATABASE_URL=" + dbURL,
		"DRBOT_LISTEN=" + addr,
		"SLACK_BOT_TOKEN=" + slack.BotToken(),
		"SLACK_SIGNING_SECRET=" + secret,
		"SLACK_API_URL=" + slack.APIURL(),
		"PAGERDUTY_WEBHOOK_SECRET=pd-secret",
	}, "serve", "--config", repoFile("deploy", "examples", "drbot.yaml"), "--log-format", "json")
	srv := startServer(t, cmd, addr)
	base := srv.base

	if body := get(t, base+"/healthz"); !strings.Contains(body, "ok") {
		t.Errorf("/healthz = %q", body)
	}

	// A signed slash command is acked and answered privately through the Web API.
	form := fakeslack.SlashCommand{Text: "help", UserID: alice, UserName: "alice", ChannelID: general, ChannelName: "general"}.Form().Encode()
	resp := postSigned(t, base+"/slack/commands", secret, time.Now(), form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed /slack/commands = %d", resp.StatusCode)
	}
	if !slack.WaitFor(10*time.Second, func() bool {
		for _, e := range slack.Ephemerals() {
			if e.User == alice && strings.Contains(e.Text+string(e.Blocks), "drbot commands") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no ephemeral help reply; calls: %+v\nlogs:\n%s", slack.Calls(""), srv.logs.String())
	}

	// Forged and stale requests are refused before anything runs.
	before := len(slack.Ephemerals())
	if resp := postSigned(t, base+"/slack/commands", "wrong-secret", time.Now(), form); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged signature = %d, want 401", resp.StatusCode)
	}
	if resp := postSigned(t, base+"/slack/commands", secret, time.Now().Add(-6*time.Minute), form); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("6-minute-old request = %d, want 401", resp.StatusCode)
	}
	// An unsigned PagerDuty webhook is refused.
	pd, err := http.Post(base+"/webhooks/pagerduty", "application/json", strings.NewReader(`{"event":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	pd.Body.Close()
	if pd.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned PagerDuty webhook = %d, want 401", pd.StatusCode)
	}

	metrics := get(t, base+"/metrics")
	for _, want := range []string{"drbot_build_info", `route="POST /slack/commands"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// SIGTERM: clean exit, River and the HTTP server stopped.
	if err := srv.terminate(t); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, srv.logs.String())
	}
	if len(slack.Ephemerals()) != before {
		t.Errorf("a refused request produced a reply")
	}
	out := srv.logs.String()
	for _, want := range []string{"http server stopped", "drbot stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q", want)
		}
	}
	for _, secretValue := range []string{secret, slack.BotToken(), "pd-secret"} {
		if strings.Contains(out, secretValue) {
			t.Errorf("a secret reached the logs: %q", secretValue)
		}
	}
}

func TestServeRefusesToStartWithoutSlackSettings(t *testing.T) {
	cmd := command(t, []string{"DATABASE_URL=postgres://127.0.0.1:1/none"}, "serve", "--config", repoFile("deploy", "examples", "drbot.yaml"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("serve started without Slack settings:\n%s", out)
	}
	for _, want := range []string{"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error does not mention %s:\n%s", want, out)
		}
	}
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func postSigned(t *testing.T, u, secret string, at time.Time, body string) *http.Response {
	t.Helper()
	ts, sig := fakeslack.Sign(secret, at, []byte(body))
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
