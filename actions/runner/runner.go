// Package runner executes approved action requests: exactly once across
// processes (a per-target execution lease in PostgreSQL, renewed while the
// runner works and fenced before every step, and forward-only state moves),
// resumably (every step is journaled in the audit log, so an execution
// interrupted by a crash resumes where it stopped), with live progress on the
// request's card, then verifies the result and reports it.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/store"
)

// Store is what the runner needs; *postgres.DB implements it.
type Store interface {
	store.Requests
	store.Audit
	store.JobQueue
	// Leases are the per-target execution leases: no connection is held
	// while an execution runs, and a lost lease is noticed before each step.
	store.Leases
	// RequestsInState lists requests in any of states.
	RequestsInState(ctx context.Context, states ...store.RequestState) ([]store.ActionRequest, error)
}

// Status is what a request's card shows besides the request and its approvals.
type Status struct {
	Step      string // the current step's name
	StepIndex int    // 1-based index of the step in the plan; 0 when unknown
	Steps     int    // number of steps in the plan
	Progress  *actions.Progress
	Report    *actions.Report // the verification report, once verified
	Reason    string          // why the request failed (user-safe)
}

// Cards shows a request's state in its chat channel. The bot implements it.
type Cards interface {
	// Show updates the request's card in place to req's state and st.
	Show(ctx context.Context, req store.ActionRequest, st Status)
	// Note posts a line about req in its channel.
	Note(ctx context.Context, req store.ActionRequest, text string)
}

// ThreadCards is implemented by Cards that can keep a live message in a
// request card's thread (a playbook command's output tail): the first call
// with a key posts it, later calls with the same key update it in place.
// Cards without it get the text as a Note.
type ThreadCards interface {
	Thread(ctx context.Context, req store.ActionRequest, key, text string)
}

// DefaultProgressEvery is the minimum interval between progress updates of one card.
const DefaultProgressEvery = time.Second

// Options configure New.
type Options struct {
	Store   Store
	Actions actions.Registry
	Cards   Cards
	Logger  *slog.Logger
	Now     func() time.Time
	// ProgressEvery throttles progress updates (0: DefaultProgressEvery).
	ProgressEvery time.Duration
	// Lease is how long an execution lease lasts without renewal; the runner
	// renews it every Lease/3 (0: DefaultLease).
	Lease time.Duration
}

// DefaultLease is how long a target stays leased to a runner that stopped
// renewing it (its process died, or it lost the store) before another may
// take it over.
const DefaultLease = 30 * time.Second

// Runner executes approved requests.
type Runner struct {
	store   Store
	actions actions.Registry
	cards   Cards
	log     *slog.Logger
	now     func() time.Time
	every   time.Duration
	lease   time.Duration
	host    string
}

// New returns a Runner; Store, Actions and Cards are required.
func New(o Options) *Runner {
	if o.Store == nil || o.Actions == nil || o.Cards == nil {
		panic("runner.New: Store, Actions and Cards are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "drbot"
	}
	return &Runner{store: o.Store, actions: o.Actions, cards: o.Cards, log: o.Logger, now: o.Now, every: o.ProgressEvery,
		lease: o.Lease, host: fmt.Sprintf("%s/%d", host, os.Getpid())}
}

// Resume enqueues an execution job for every request left approved, running
// or verifying, typically by a process that was killed (an approved request
// whose runner died during the re-plan included). A request whose target's
// lease is live is left to its holder; its job is scheduled for when that
// lease would expire (once per lease token), so a dead holder's request
// resumes as soon as its lease runs out. Each job takes the lease first, so
// extra jobs do nothing. Call it after the job workers started.
func (r *Runner) Resume(ctx context.Context) (int, error) {
	reqs, err := r.store.RequestsInState(ctx, store.RequestApproved, store.RequestRunning, store.RequestVerifying)
	if err != nil {
		return 0, fmt.Errorf("resume requests: %w", err)
	}
	if len(reqs) == 0 {
		return 0, nil
	}
	live, err := r.store.LiveLeases(ctx)
	if err != nil {
		return 0, fmt.Errorf("resume requests: %w", err)
	}
	nonce := store.NewRef()
	jobs := make([]store.Job, 0, len(reqs))
	n := 0
	for _, q := range reqs {
		if l, ok := live[q.Target]; ok {
			jobs = append(jobs, store.Job{Args: store.ExecuteRequestArgs{RequestID: q.ID, Resume: fmt.Sprintf("after-lease-%d", l.Token)},
				RunAt: l.ExpiresAt.Add(time.Second), UniqueByArgs: true})
			continue
		}
		jobs = append(jobs, store.Job{Args: store.ExecuteRequestArgs{RequestID: q.ID, Resume: nonce}})
		n++
	}
	if err := r.store.InsertJobs(ctx, jobs...); err != nil {
		return 0, fmt.Errorf("resume requests: %w", err)
	}
	return n, nil
}

// Run executes request id if it is approved, resumes it if it is running or
// verifying, and does nothing otherwise. It returns an error only when the
// work should be retried (the store failed, or ctx ended mid-way, e.g. at
// shutdown); an action that fails moves the request to failed and returns nil.
func (r *Runner) Run(ctx context.Context, id int64) error {
	req, err := r.store.Request(ctx, id)
	if err != nil {
		return fmt.Errorf("run request %d: %w", id, err)
	}
	if !runnable(req.State) {
		return nil // pending, or final: nothing to run
	}
	h, err := r.hold(ctx, req)
	if errors.Is(err, store.ErrLeaseBusy) {
		r.log.InfoContext(ctx, "request's target is being executed by another runner", "request", id, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("run request %d: %w", id, err)
	}
	defer h.release()
	ctx = h.ctx
	// Read it again under the lease: another runner may have finished it.
	cur, err := r.store.Request(ctx, id)
	if err != nil {
		return h.stopped(ctx, req, fmt.Errorf("run request %d: %w", id, err))
	}
	if !runnable(cur.State) {
		return nil
	}
	return h.stopped(ctx, cur, r.run(ctx, h, cur))
}

func runnable(state store.RequestState) bool {
	return state == store.RequestApproved || state == store.RequestRunning || state == store.RequestVerifying
}

// run is Run under the lease h.
func (r *Runner) run(ctx context.Context, h *holding, req store.ActionRequest) error {
	id := req.ID
	var err error
	var plan actions.Plan
	if err := json.Unmarshal(req.Plan, &plan); err != nil {
		return r.fail(ctx, h, req, fmt.Sprintf("the approved plan cannot be read (ref %s)", r.logErr(ctx, req, "decode plan", err)), err)
	}
	a := r.actions[req.Kind]
	if a == nil {
		return r.fail(ctx, h, req, fmt.Sprintf("this drbot has no %s action; nothing was run", req.Kind), nil)
	}
	st := Status{Steps: len(plan.Steps)}

	switch req.State {
	case store.RequestApproved:
		changed := r.replan(ctx, req, a, plan)
		if err := h.fence(ctx, "start"); err != nil {
			return err
		}
		data, _ := json.Marshal(map[string]any{"from": store.RequestApproved, "to": store.RequestRunning, "plan_changed": changed})
		req, err = r.store.TransitionRequest(ctx, id, []store.RequestState{store.RequestApproved}, store.RequestRunning,
			store.AuditEvent{Kind: store.AuditRequestRunning, Actor: "drbot", Data: data})
		if err != nil {
			if errors.Is(err, store.ErrStateConflict) {
				return nil // cancelled or expired meanwhile
			}
			return err
		}
		r.cards.Show(ctx, req, st)
		fallthrough
	case store.RequestRunning:
		j := &journal{r: r, req: req, plan: plan, h: h}
		if req.State == store.RequestRunning && j.resumed(ctx) {
			j.Note(ctx, "Resumed after a restart: steps already done are skipped.")
		}
		if err := a.Execute(ctx, plan, j); err != nil {
			if h.lostErr(ctx, err) != nil {
				return err
			}
			if ctx.Err() != nil {
				return fmt.Errorf("run request %d: interrupted: %w", id, err) // resumed on the next start or retry
			}
			return r.fail(ctx, h, req, r.reason(ctx, req, j.currentStep(), err), err)
		}
		if err := h.fence(ctx, "verify"); err != nil {
			return err
		}
		req, err = r.store.TransitionRequest(ctx, id, []store.RequestState{store.RequestRunning}, store.RequestVerifying,
			store.AuditEvent{Kind: store.AuditRequestVerifying, Actor: "drbot"})
		if err != nil {
			return err
		}
		r.cards.Show(ctx, req, Status{Steps: st.Steps, StepIndex: st.Steps, Step: "verify"})
	}

	if err := h.fence(ctx, "verify"); err != nil {
		return err
	}
	rep, err := a.Verify(ctx, plan)
	if err != nil {
		if h.lostErr(ctx, err) != nil {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("verify request %d: interrupted: %w", id, err)
		}
		return r.fail(ctx, h, req, "verification could not run: "+r.reason(ctx, req, "verify", err), err)
	}
	data, _ := json.Marshal(map[string]any{"from": store.RequestVerifying, "report": rep, "ok": rep.OK()})
	to, reason := store.RequestSucceeded, ""
	if !rep.OK() {
		to = store.RequestFailed
		reason = fmt.Sprintf("verification failed: %d of %d checks did not pass", len(rep.Failed()), len(rep.Checks))
		if len(rep.Checks) == 0 {
			reason = "verification ran no checks"
		}
	}
	if err := h.fence(ctx, "report"); err != nil {
		return err
	}
	req, err = r.store.TransitionRequest(ctx, id, []store.RequestState{store.RequestVerifying}, to,
		store.AuditEvent{Kind: store.RequestMovedKind(to), Actor: "drbot", Data: data})
	if err != nil {
		return err
	}
	r.cards.Show(ctx, req, Status{Steps: st.Steps, Report: &rep, Reason: reason})
	return nil
}

// replan computes the plan again and reports whether it differs from the
// approved one in what it would do (actions.Identity: kind, target, steps and
// the pinned facts of the Spec), not in display text such as a backup's age.
// The approved plan runs either way: it pins every object.
func (r *Runner) replan(ctx context.Context, req store.ActionRequest, a actions.Action, approved actions.Plan) bool {
	var p actions.Params
	if len(req.Params) > 0 {
		if err := json.Unmarshal(req.Params, &p); err != nil {
			r.log.WarnContext(ctx, "re-plan: params unreadable", "request", req.ID, "err", err)
			return false
		}
	}
	now, err := a.Plan(ctx, p)
	if err != nil {
		r.log.InfoContext(ctx, "re-plan failed; running the approved plan", "request", req.ID, "err", err)
		return false
	}
	was, err := actions.IdentityOf(a, approved)
	if err != nil {
		r.log.WarnContext(ctx, "re-plan: approved plan", "request", req.ID, "err", err)
		return false
	}
	is, err := actions.IdentityOf(a, now)
	if err != nil {
		r.log.WarnContext(ctx, "re-plan: current plan", "request", req.ID, "err", err)
		return false
	}
	changed := was.Diff(is)
	if len(changed) == 0 {
		return false
	}
	h, _ := now.Hash()
	text := fmt.Sprintf("The plan would be different now (%s changed: %s); running the approved plan exactly as approved (%s).",
		strings.Join(changed, ", "), now.Summary, approved.Summary)
	data, _ := json.Marshal(map[string]any{"approved_hash": req.PlanHash, "current_hash": h, "current_summary": now.Summary, "changed": changed})
	if _, err := r.store.AppendAudit(ctx, store.AuditEvent{IncidentID: req.IncidentID, RequestID: &req.ID, Actor: "drbot", Kind: store.AuditPlanChanged, Data: data}); err != nil {
		r.log.WarnContext(ctx, "record plan change", "request", req.ID, "err", err)
	}
	r.cards.Note(ctx, req, fmt.Sprintf("Request #%d: %s", req.ID, text))
	return true
}

// reason is the user-safe failure reason of err: a refusal's own message,
// otherwise the step and a log reference.
func (r *Runner) reason(ctx context.Context, req store.ActionRequest, step string, err error) string {
	if rf, ok := usererr.As(err); ok {
		return rf.Msg
	}
	ref := r.logErr(ctx, req, "step "+step, err)
	if step == "" {
		return fmt.Sprintf("the action failed (ref %s; details in drbot's log)", ref)
	}
	return fmt.Sprintf("step %s failed (ref %s; details in drbot's log)", step, ref)
}

func (r *Runner) logErr(ctx context.Context, req store.ActionRequest, what string, err error) string {
	ref := store.NewRef()
	r.log.ErrorContext(ctx, "request "+what+" failed", "ref", ref, "request", req.ID, "kind", req.Kind, "err", err)
	return ref
}

// fail moves req to failed with reason and shows it, unless the lease was
// lost meanwhile (then the new holder decides).
func (r *Runner) fail(ctx context.Context, h *holding, req store.ActionRequest, reason string, cause error) error {
	if err := h.fence(ctx, ""); err != nil {
		return err
	}
	d := map[string]string{"from": string(req.State), "reason": reason}
	if cause != nil {
		d["error"] = cause.Error()
	}
	data, _ := json.Marshal(d)
	out, err := r.store.TransitionRequest(ctx, req.ID, []store.RequestState{store.RequestApproved, store.RequestRunning, store.RequestVerifying}, store.RequestFailed,
		store.AuditEvent{Kind: store.AuditRequestFailed, Actor: "drbot", Data: data})
	if err != nil {
		if errors.Is(err, store.ErrStateConflict) {
			return nil
		}
		return err
	}
	r.cards.Show(ctx, out, Status{Reason: reason})
	return nil
}

// journal implements actions.Journal over the audit log: step.started and
// step.finished rows per request.
type journal struct {
	r    *Runner
	req  store.ActionRequest
	plan actions.Plan
	h    *holding

	mu       sync.Mutex
	current  string
	lastShow time.Time
	lastStep string
}

var _ actions.Journal = (*journal)(nil)

type stepData struct {
	Step   string          `json:"step"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// events returns the request's step rows.
func (j *journal) events(ctx context.Context) ([]store.AuditEvent, error) {
	var out []store.AuditEvent
	after := int64(0)
	for {
		evs, err := j.r.store.AuditEvents(ctx, store.AuditFilter{RequestID: &j.req.ID, AfterSeq: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if ev.Kind == store.AuditStepStarted || ev.Kind == store.AuditStepFinished {
				out = append(out, ev)
			}
		}
		if len(evs) < 1000 {
			return out, nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// resumed reports whether an earlier attempt started any step.
func (j *journal) resumed(ctx context.Context) bool {
	evs, err := j.events(ctx)
	return err == nil && len(evs) > 0
}

// Thread shows text in the request card's thread as the message key
// (posted once, then updated in place); not written to the audit log (the
// step's own rows are). Cards without threads get it as a Note.
func (j *journal) Thread(ctx context.Context, key, text string) {
	if tc, ok := j.r.cards.(ThreadCards); ok {
		tc.Thread(ctx, j.req, key, text)
		return
	}
	j.r.cards.Note(ctx, j.req, text)
}

// RequestID is the request this journal records (a playbook's failure names
// it in the resume command it suggests).
func (j *journal) RequestID() int64 { return j.req.ID }

func (j *journal) Begin(ctx context.Context, step string) (json.RawMessage, bool, bool, error) {
	if err := j.h.fence(ctx, step); err != nil {
		return nil, false, false, err
	}
	evs, err := j.events(ctx)
	if err != nil {
		return nil, false, false, err
	}
	started := false
	for _, ev := range evs {
		var d stepData
		if err := json.Unmarshal(ev.Data, &d); err != nil || d.Step != step {
			continue
		}
		switch ev.Kind {
		case store.AuditStepStarted:
			started = true
		case store.AuditStepFinished:
			if d.Error == "" {
				return d.Result, true, true, nil
			}
			started = true // an earlier attempt failed in it: run it again
		}
	}
	data, err := json.Marshal(stepData{Step: step})
	if err != nil {
		return nil, false, false, err
	}
	if _, err := j.r.store.AppendAudit(ctx, store.AuditEvent{IncidentID: j.req.IncidentID, RequestID: &j.req.ID, Actor: "drbot", Kind: store.AuditStepStarted, Data: data}); err != nil {
		return nil, false, false, err
	}
	j.mu.Lock()
	j.current = step
	j.mu.Unlock()
	j.show(ctx, nil, true)
	return nil, false, started, nil
}

func (j *journal) Finish(ctx context.Context, step string, result any, stepErr error) error {
	// A runner that lost its lease records nothing more: the new holder
	// runs this step again (steps are idempotent).
	next := step
	if stepErr == nil {
		next = j.after(step)
	}
	if err := j.h.fence(ctx, next); err != nil {
		return err
	}
	d := stepData{Step: step}
	if stepErr != nil {
		d.Error = stepErr.Error()
	} else {
		b, err := json.Marshal(result)
		if err != nil {
			return fmt.Errorf("encode result of step %s: %w", step, err)
		}
		d.Result = b
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = j.r.store.AppendAudit(ctx, store.AuditEvent{IncidentID: j.req.IncidentID, RequestID: &j.req.ID, Actor: "drbot", Kind: store.AuditStepFinished, Data: data})
	return err
}

func (j *journal) Progress(ctx context.Context, p actions.Progress) {
	j.show(ctx, &p, p.Total > 0 && p.Done >= p.Total)
}

func (j *journal) Note(ctx context.Context, text string) {
	data, _ := json.Marshal(map[string]string{"text": text})
	if _, err := j.r.store.AppendAudit(ctx, store.AuditEvent{IncidentID: j.req.IncidentID, RequestID: &j.req.ID, Actor: "drbot", Kind: store.AuditRequestNote, Data: data}); err != nil {
		j.r.log.WarnContext(ctx, "record note", "request", j.req.ID, "err", err)
	}
	j.r.cards.Note(ctx, j.req, fmt.Sprintf("Request #%d (%s): %s", j.req.ID, j.req.Kind, text))
}

// after names the step that follows step in the plan ("verify" after the last).
func (j *journal) after(step string) string {
	for i, s := range j.plan.Steps {
		if s.Name == step && i+1 < len(j.plan.Steps) {
			return j.plan.Steps[i+1].Name
		}
	}
	return "verify"
}

func (j *journal) currentStep() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.current
}

// show updates the card, at most once per ProgressEvery unless force.
func (j *journal) show(ctx context.Context, p *actions.Progress, force bool) {
	j.mu.Lock()
	now := j.r.now()
	step := j.current
	if p != nil && p.Step != "" {
		step = p.Step
	}
	if !force && step == j.lastStep && now.Sub(j.lastShow) < j.r.every {
		j.mu.Unlock()
		return
	}
	j.lastShow, j.lastStep = now, step
	j.mu.Unlock()
	st := Status{Step: step, Steps: len(j.plan.Steps), Progress: p}
	for i, s := range j.plan.Steps {
		if s.Name == step {
			st.StepIndex = i + 1
		}
	}
	j.r.cards.Show(ctx, j.req, st)
}
