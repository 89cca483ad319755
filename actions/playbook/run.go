package playbook

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/internal/childenv"
)

// runResult is what a finished run: step records in the journal.
type runResult struct {
	Exit     int           `json:"exit"`
	Lines    int           `json:"lines"`
	Duration time.Duration `json:"duration"`
}

// maxLine is how much of one output line is kept (the rest is dropped);
// shownLine is how much of it the thread shows.
const (
	maxLine   = 64 << 10
	shownLine = 400
	redacted  = "[redacted]"
)

// runStep runs a run: step's argv without a shell, in its own process group,
// with the minimal child environment plus exactly its env_from variables;
// the step's timeout (or ctx) kills the whole group. Its output (stdout and
// stderr) goes to the thread as a throttled tail with every env_from value
// and every known secret of drbot's environment redacted.
func (a *Action) runStep(ctx context.Context, ss StepSpec, j actions.Journal) (runResult, error) {
	var set, secrets []string
	for _, name := range ss.EnvFrom {
		v, ok := a.o.LookupEnv(name)
		if !ok {
			return runResult{}, actions.Refusef("%s passes %s to its command (env_from), but drbot's environment has no %s now; nothing was run", ss.label(), name, name)
		}
		set = append(set, name+"="+v)
		secrets = append(secrets, v)
	}
	secrets = append(secrets, knownSecrets()...)
	red := newRedactor(secrets)

	tctx, cancel := context.WithTimeout(ctx, ss.Timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, ss.Run[0], ss.Run[1:]...) // #nosec G204 -- argv from the runbook config (trusted operator text), never chat text; no shell
	cmd.Dir = ss.Dir
	cmd.Env = childenv.Build(nil, set...)
	cmd.SysProcAttr = procAttr()
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = 5 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw

	tail := &tailer{a: a, j: j, ss: ss, red: red, max: a.o.TailLines}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		tail.read(ctx, pr)
	}()
	start := time.Now()
	err := cmd.Start()
	if err != nil {
		_ = pw.Close()
		<-readDone
		var ee *exec.Error
		if errors.As(err, &ee) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return runResult{}, actions.Refusef("%s: %s could not be started: %s", ss.label(), red.text(ss.Run[0]), red.line(startErr(err)))
		}
		return runResult{}, fmt.Errorf("%s: start %s: %w", ss.label(), red.text(ss.Run[0]), err)
	}
	stopTicker := make(chan struct{})
	var tickWG sync.WaitGroup
	tickWG.Add(1)
	go func() {
		defer tickWG.Done()
		t := time.NewTicker(a.o.TailEvery)
		defer t.Stop()
		for {
			select {
			case <-stopTicker:
				return
			case <-t.C:
				tail.post(ctx, false, "")
			}
		}
	}()
	werr := cmd.Wait()
	_ = pw.Close()
	<-readDone
	close(stopTicker)
	tickWG.Wait()
	res := runResult{Lines: tail.count(), Duration: time.Since(start).Round(time.Millisecond)}
	if cmd.ProcessState != nil {
		res.Exit = cmd.ProcessState.ExitCode()
	}
	prog := red.text(ss.Run[0])
	switch {
	case tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		tail.post(ctx, true, fmt.Sprintf("killed after %s (timeout)", ss.Timeout))
		return res, actions.Refusef("%s did not finish within its timeout of %s: %s and its process group were killed", prog, ss.Timeout, prog)
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s: interrupted: %w", ss.label(), ctx.Err())
	case werr != nil:
		var xe *exec.ExitError
		if errors.As(werr, &xe) {
			tail.post(ctx, true, fmt.Sprintf("exited with status %d", res.Exit))
			if res.Exit < 0 {
				return res, actions.Refusef("%s was killed by a signal (%s); the last lines of its output are in the thread", prog, xe.String())
			}
			return res, actions.Refusef("%s exited with status %d; the last lines of its output are in the thread", prog, res.Exit)
		}
		return res, fmt.Errorf("%s: wait for %s: %w", ss.label(), prog, werr)
	}
	tail.post(ctx, true, "exited 0 in "+res.Duration.String())
	return res, nil
}

// startErr is a start failure without the absolute paths of drbot's host
// beyond the program's own name.
func startErr(err error) string {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err.Error()
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func procAttr() *syscall.SysProcAttr {
	// Its own process group, so a timeout kills what it started too; killed
	// by the kernel when drbot dies, so a restart never races an orphan.
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return cmd.Process.Kill()
	}
	return nil
}

// secretName matches environment variable names whose values are secrets.
var secretName = regexp.MustCompile(`(?i)(TOKEN|SECRET|PASSW(OR)?D|CREDENTIAL|PRIVATE|_KEY$|_KEY_ID$|DATABASE_URL$|_DSN$)`)

// knownSecrets are the values of drbot's own secret-looking environment
// variables (Slack and PagerDuty tokens, AWS keys, database URLs, …).
func knownSecrets() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, v, ok := strings.Cut(kv, "=")
		if ok && len(v) >= 6 && secretName.MatchString(name) {
			out = append(out, v)
		}
	}
	return out
}

// redactor replaces secret values in output lines.
type redactor struct{ secrets []string }

func newRedactor(secrets []string) *redactor {
	var s []string
	for _, v := range secrets {
		if len(v) >= 3 && !slices.Contains(s, v) {
			s = append(s, v)
		}
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.Slice(s, func(i, k int) bool { return len(s[i]) > len(s[k]) })
	return &redactor{secrets: s}
}

func (r *redactor) line(l string) string {
	for _, s := range r.secrets {
		l = strings.ReplaceAll(l, s, redacted)
	}
	return l
}

// secretArg matches the names of arguments whose values are secrets
// (--password, --token=…, API_KEY=…, -var=db_secret=…).
var secretArg = regexp.MustCompile(`(?i)(passw(or)?d|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth)`)

// secretShapes are tokens recognisable by their form alone.
var secretShapes = []*regexp.Regexp{
	regexp.MustCompile(`xox[abposre]-[A-Za-z0-9-]+`),                             // Slack
	regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`),                            // AWS access key id
	regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{20,}`),                           // GitHub
	regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20,}`),                             // GitLab
	regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----[^ ]*`),                // a key pasted whole
	regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`), // JWT
}

// urlPassword is the password of a URL's user info (scheme://user:pw@host).
var urlPassword = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s/]+@`)

// argv is a command's argv as the card and the thread show it: the known
// secrets redacted (line), and so is whatever looks like a secret typed
// into it: the value of a secret-named argument (--password X,
// --token=X, API_KEY=X), a URL's password, a token of a known shape.
func (r *redactor) argv(run []string) string {
	out := make([]string, len(run))
	hideNext := false
	for i, w := range run {
		if hideNext && !strings.HasPrefix(w, "-") {
			out[i], hideNext = redacted, false
			continue
		}
		hideNext = false
		if strings.HasPrefix(w, "-") && !strings.Contains(w, "=") && secretArg.MatchString(w) {
			hideNext = true
		}
		if strings.EqualFold(w, "bearer") || strings.EqualFold(w, "basic") {
			hideNext = true
		}
		for k := 0; k < len(w); k++ {
			if w[k] == '=' && secretArg.MatchString(w[:k]) && k+1 < len(w) {
				w = w[:k+1] + redacted
				break
			}
		}
		w = urlPassword.ReplaceAllString(w, "${1}"+redacted+"@")
		for _, re := range secretShapes {
			w = re.ReplaceAllString(w, redacted)
		}
		out[i] = w
	}
	return r.line(strings.Join(out, " "))
}

// text is free text built from argv words (a run: step named after its
// argv) redacted as argv is.
func (r *redactor) text(s string) string { return r.argv(strings.Split(s, " ")) }

// redactorFor is the redactor of a step's shown text: drbot's known
// secrets and the values of the env_from variables named (those set now).
func (a *Action) redactorFor(envFrom ...string) *redactor {
	secrets := knownSecrets()
	for _, name := range envFrom {
		if v, ok := a.o.LookupEnv(name); ok {
			secrets = append(secrets, v)
		}
	}
	return newRedactor(secrets)
}

// inert keeps a command's output from acting in chat: it cannot close the
// code block it is shown in, nor mention a channel, a group or a person.
var inert = strings.NewReplacer("```", "'''", "<!", "< !", "<@", "< @", "<#", "< #")

// tailer keeps the last lines of a command's output (redacted) and posts
// them to the thread, at most every TailEvery while it runs.
type tailer struct {
	a   *Action
	j   actions.Journal
	ss  StepSpec
	red *redactor
	max int

	mu      sync.Mutex
	lines   []string
	n       int
	changed bool
}

func (t *tailer) read(ctx context.Context, r io.Reader) {
	br := bufio.NewReaderSize(r, 32<<10)
	var cur []byte
	flush := func() {
		line := inert.Replace(t.red.line(strings.TrimRight(string(cur), "\r")))
		cur = cur[:0]
		if len(line) > shownLine {
			line = line[:shownLine] + "…"
		}
		t.mu.Lock()
		t.lines = append(t.lines, line)
		if len(t.lines) > t.max {
			t.lines = t.lines[len(t.lines)-t.max:]
		}
		t.n++
		t.changed = true
		n := t.n
		t.mu.Unlock()
		t.j.Progress(ctx, actions.Progress{Step: t.ss.prefix() + "run", Done: int64(n), Unit: "lines"})
	}
	for {
		frag, isPrefix, err := br.ReadLine()
		if len(frag) > 0 && len(cur) < maxLine {
			cur = append(cur, frag[:min(len(frag), maxLine-len(cur))]...)
		}
		if err != nil {
			if len(cur) > 0 {
				flush()
			}
			_, _ = io.Copy(io.Discard, r)
			return
		}
		if !isPrefix {
			flush()
		}
	}
}

func (t *tailer) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// post posts the tail when it changed since the last post (or final).
func (t *tailer) post(ctx context.Context, final bool, status string) {
	t.mu.Lock()
	if !t.changed && !final {
		t.mu.Unlock()
		return
	}
	t.changed = false
	lines := slices.Clone(t.lines)
	n := t.n
	t.mu.Unlock()
	head := fmt.Sprintf("Step %d (%s) `%s`", t.ss.Index, t.red.text(t.ss.Name), t.red.argv(t.ss.Run))
	if status != "" {
		head += ": " + status
	} else {
		head += ": running"
	}
	head = t.red.line(head)
	if n == 0 {
		show(ctx, t.j, fmt.Sprintf("step-%d-output", t.ss.Index), head+" (no output)")
		return
	}
	shown := fmt.Sprintf("last %d of %d lines", len(lines), n)
	if len(lines) == n {
		shown = fmt.Sprintf("%d lines", n)
	}
	show(ctx, t.j, fmt.Sprintf("step-%d-output", t.ss.Index), head+" — output, "+shown+":\n```\n"+strings.Join(lines, "\n")+"\n```")
}

// threader is implemented by the runner's journal: a live message in the
// request card's thread, posted once per key and updated in place.
type threader interface {
	Thread(ctx context.Context, key, text string)
}

// show puts text in the card's thread as the message key where the journal
// has threads, as a note otherwise.
func show(ctx context.Context, j actions.Journal, key, text string) {
	if th, ok := j.(threader); ok {
		th.Thread(ctx, key, text)
		return
	}
	j.Note(ctx, text)
}
