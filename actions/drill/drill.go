// Package drill implements /dr drill <procedure> <service> (issue 11,
// point 1): a recovery procedure run for real against throwaway targets,
// never touching live, through the drill form of its action
// (actions.Drillable), and the drill schedule that /dr drills, the
// reminders and `drbot drills report` read (schedule.go).
//
// A drill is a request of kind store.KindDrill whose plan is the drilled
// action's drill plan (its Kind stays the action's kind): the runner runs it
// like any request, this action handing Execute and Verify to the drilled
// action. Verify adds the drill's timing — each step and the total against
// the service's RTO and the scenario's estimate. A drill needs no second
// person unless drills.approval is set (approvals.PolicyForRequest).
package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// Kind is the drill action's kind: the request kind of every drill.
const Kind = store.KindDrill

// PlaybookKind is the kind of the action that runs playbooks; a procedure
// that names one of the service's playbooks is drilled through it, with the
// playbook's name as its "name" argument.
const PlaybookKind = "playbook"

// The drill command's argument and flags. Flags are handed to the drilled
// action, which reads those it declares (restore-db's --db and --backup,
// restore-models' --backup).
var (
	ArgProcedure = actions.Arg{Name: "procedure", Help: "What to drill: an action (restore-db, restore-models, failover, restore-vault) or one of the service's playbooks."}
	// FlagKeep keeps a restore-db drill's copy instead of dropping it.
	FlagKeep = actions.Flag{Name: "keep", Bool: true, Help: "restore-db: keep the drill copy <db>_drill_<ts> afterwards (dropped by default)."}
	flagDB   = actions.Flag{Name: "db", Help: "restore-db: the database to drill; the service's only database if omitted.", Value: "NAME"}
	flagBack = actions.Flag{Name: "backup", Help: "The backup (restore-db: object key; restore-models: snapshot folder) to drill with; the newest if omitted.", Value: "KEY"}
)

// Command declares /dr drill.
var Command = actions.Command{
	Name:    Kind,
	Summary: "Rehearse a recovery procedure against throwaway targets (never live)",
	Description: "Runs the procedure for real without touching live: restore-db restores the real backup into <db>_drill_<ts>, runs the database's checks " +
		"on it and drops it; restore-models copies the snapshot to drills/<ts>/ in the target bucket, compares it object by object and deletes it; " +
		"failover runs every preflight check without promoting or changing DNS; restore-vault checks the snapshot's integrity; a playbook runs each " +
		"step's drill form (run: steps only with drill: true, verify as it is: it changes nothing). The card reports each step's time and the total against the RTO. No second person is needed unless drills.approval is set.",
	Approval:     true,
	ApprovalNote: "No second person needed unless the service sets drills.approval: true: the bot posts the plan and runs it at once, recording why in the audit log.",
	Args:         []actions.Arg{ArgProcedure},
	ServiceLast:  true,
	Flags:        []actions.Flag{flagDB, flagBack, FlagKeep},
	Examples: []string{
		"/dr drill restore-db lstm-pfd",
		"/dr drill restore-db lstm-pfd --keep --dry-run",
		"/dr drill failover inflow",
	},
}

// Store is what a drill reads back about its own request (its step times).
type Store interface {
	RequestsInState(ctx context.Context, states ...store.RequestState) ([]store.ActionRequest, error)
	AuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error)
}

// Action is the drill action.
type Action struct {
	cfg   func() *runbook.Config
	store Store
	now   func() time.Time

	mu   sync.RWMutex
	acts actions.Registry
}

var _ actions.Action = (*Action)(nil)

// New returns the drill action; st (nil: no step times) reads its own
// requests. The drillable actions are handed over with Use once built.
func New(cfg func() *runbook.Config, st Store) *Action {
	return &Action{cfg: cfg, store: st, now: time.Now, acts: actions.Registry{}}
}

// Use sets the actions drills are run through (the binary's registry).
func (a *Action) Use(acts actions.Registry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acts = acts
}

func (a *Action) action(kind string) actions.Action {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if kind == Kind {
		return nil
	}
	return a.acts[kind]
}

// Drillable returns the kinds of the actions with a drill form, sorted.
func (a *Action) Drillable() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []string
	for k, act := range a.acts {
		if _, ok := act.(actions.Drillable); ok && k != Kind {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Kind implements actions.Action.
func (*Action) Kind() string { return Kind }

// Command implements actions.Action.
func (*Action) Command() actions.Command { return Command }

// TransientSpec implements actions.Transient: a drill's throwaway target is
// named after the moment it was planned.
func (*Action) TransientSpec() []string {
	return []string{"stamp", "incoming", "outgoing", "scratch", "target_prefix"}
}

// Plan implements actions.Action: the drill plan of the procedure.
func (a *Action) Plan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	svc, err := p.ServiceIn(a.cfg())
	if err != nil {
		return actions.Plan{}, err
	}
	proc := strings.ToLower(ArgProcedure.Of(p))
	inner, params, err := a.resolve(svc, proc, p)
	if err != nil {
		return actions.Plan{}, err
	}
	plan, err := inner.DrillPlan(ctx, params)
	if err != nil {
		return actions.Plan{}, err
	}
	if plan.Kind == "" {
		plan.Kind = inner.Kind()
	}
	if plan.Service == "" {
		plan.Service = svc.Name
	}
	if !strings.HasPrefix(strings.ToLower(plan.Summary), "drill") {
		plan.Summary = "Drill: " + plan.Summary
	}
	facts := []actions.Fact{{Label: "Drill", Value: proc + " against throwaway targets: nothing live is changed"}}
	if rto := svc.Objectives.RTO; rto.Duration > 0 {
		facts = append(facts, actions.Fact{Label: "RTO", Value: rto.String()})
	}
	if sc := scenarioFor(svc, proc); sc != nil {
		facts = append(facts, actions.Fact{Label: "Scenario estimate", Value: fmt.Sprintf("%s (%s)", sc.Estimate, sc.Name)})
	}
	plan.Facts = append(facts, plan.Facts...)
	return plan, nil
}

// resolve finds the drillable action of proc and the parameters of its drill.
func (a *Action) resolve(svc *runbook.Service, proc string, p actions.Params) (actions.Drillable, actions.Params, error) {
	params := actions.Params{Service: p.Service, Args: map[string]string{}, Flags: map[string]string{}, Resolved: p.Resolved}
	for k, v := range p.Flags {
		params.Flags[k] = v
	}
	kind := proc
	if _, ok := svc.Playbook(proc); ok && !slices.Contains(runbook.ActionKinds, proc) {
		kind = PlaybookKind
		params.Args["name"] = proc
	}
	if proc == "" || kind == Kind {
		return nil, params, a.refuse(svc, proc)
	}
	d, ok := a.action(kind).(actions.Drillable)
	if !ok {
		return nil, params, a.refuse(svc, proc)
	}
	return d, params, nil
}

func (a *Action) refuse(svc *runbook.Service, proc string) error {
	can := a.Drillable()
	var pbs []string
	if slices.Contains(can, PlaybookKind) {
		can = slices.DeleteFunc(can, func(k string) bool { return k == PlaybookKind })
		for _, pb := range svc.Playbooks {
			pbs = append(pbs, pb.Name)
		}
	}
	list := strings.Join(can, ", ")
	if len(pbs) > 0 {
		list += "; playbooks of " + svc.Name + ": " + strings.Join(pbs, ", ")
	}
	if list == "" {
		list = "none in this drbot"
	}
	if proc == "" {
		return actions.Refusef("name the procedure to drill: /dr drill <procedure> %s (drillable: %s)", svc.Name, list)
	}
	return actions.Refusef("%q has no drill form here, so nothing was planned (drillable: %s)", proc, list)
}

// scenarioFor is the service's first scenario whose playbook is proc and
// that has an estimate.
func scenarioFor(svc *runbook.Service, proc string) *runbook.Scenario {
	for i := range svc.Scenarios {
		if s := &svc.Scenarios[i]; s.Playbook == proc && s.Estimate.Duration > 0 {
			return s
		}
	}
	return nil
}

// Execute implements actions.Action: the drilled action executes its drill plan.
func (a *Action) Execute(ctx context.Context, plan actions.Plan, j actions.Journal) error {
	inner := a.action(plan.Kind)
	if inner == nil {
		return actions.Refusef("this drbot has no %s action; the drill did not run", plan.Kind)
	}
	return inner.Execute(ctx, plan, j)
}

// Verify implements actions.Action: the drilled action's verification, the
// checks its steps recorded (a step whose result is a report), and the
// drill's time against the RTO.
func (a *Action) Verify(ctx context.Context, plan actions.Plan) (actions.Report, error) {
	inner := a.action(plan.Kind)
	if inner == nil {
		return actions.Report{}, actions.Refusef("this drbot has no %s action; the drill cannot be verified", plan.Kind)
	}
	rep, err := inner.Verify(ctx, plan)
	if err != nil {
		return rep, err
	}
	t, err := a.timing(ctx, plan)
	if err != nil || t == nil {
		return rep, err
	}
	rep.Checks = append(t.Checks, rep.Checks...)
	rep.Checks = append(rep.Checks, t.check(a.cfg(), plan))
	return rep, nil
}

// Procedure is what a drill plan drills: the playbook's name for a
// playbook drill (its plan's Kind is the playbook action's), else the
// drilled action's kind.
func Procedure(plan actions.Plan) string {
	if plan.Kind == PlaybookKind {
		var s struct {
			Playbook string `json:"playbook"`
		}
		if json.Unmarshal(plan.Spec, &s) == nil && s.Playbook != "" {
			return s.Playbook
		}
	}
	return plan.Kind
}

// Timing is a drill's steps with their times, read from its journal.
type Timing struct {
	Started time.Time
	Ended   time.Time
	Steps   []StepTime
	// Checks are the checks the drill's steps recorded (e.g. the
	// database's checks run on the drill copy).
	Checks []actions.CheckResult
}

// StepTime is one step's time.
type StepTime struct {
	Name string
	Took time.Duration
}

// Total is the drill's time so far.
func (t Timing) Total() time.Duration { return t.Ended.Sub(t.Started) }

// timing reads the in-flight drill request of plan's target and its journal.
func (a *Action) timing(ctx context.Context, plan actions.Plan) (*Timing, error) {
	if a.store == nil {
		return nil, nil
	}
	reqs, err := a.store.RequestsInState(ctx, store.RequestRunning, store.RequestVerifying)
	if err != nil {
		return nil, fmt.Errorf("drill timing: %w", err)
	}
	var req *store.ActionRequest
	for i := range reqs {
		if reqs[i].Kind == Kind && reqs[i].Target == plan.Target {
			req = &reqs[i]
		}
	}
	if req == nil {
		return nil, nil
	}
	var evs []store.AuditEvent
	after := int64(0)
	for {
		page, err := a.store.AuditEvents(ctx, store.AuditFilter{RequestID: &req.ID, AfterSeq: after, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("drill timing: %w", err)
		}
		evs = append(evs, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Seq
	}
	t := StepTimes(evs)
	t.Ended = a.now()
	if t.Started.IsZero() {
		t.Started = req.CreatedAt
	}
	return &t, nil
}

// StepTimes reads a request's audit rows: when it started running, each
// step's time (from its last start to its successful finish) and the
// reports its steps recorded.
func StepTimes(evs []store.AuditEvent) Timing {
	var t Timing
	begun := map[string]time.Time{}
	for _, ev := range evs {
		switch ev.Kind {
		case store.AuditRequestRunning:
			if t.Started.IsZero() {
				t.Started = ev.At
			}
		case store.AuditStepStarted, store.AuditStepFinished:
			var d struct {
				Step   string          `json:"step"`
				Result json.RawMessage `json:"result"`
				Error  string          `json:"error"`
			}
			if json.Unmarshal(ev.Data, &d) != nil || d.Step == "" {
				continue
			}
			if ev.Kind == store.AuditStepStarted {
				begun[d.Step] = ev.At
				continue
			}
			if d.Error != "" {
				continue
			}
			if at, ok := begun[d.Step]; ok {
				t.Steps = append(t.Steps, StepTime{Name: d.Step, Took: ev.At.Sub(at)})
			}
			// A playbook step's own verification (N.verify) is run
			// again by the playbook's Verify, named after its step.
			idx, inner, nested := strings.Cut(d.Step, ".")
			if nested && inner == "verify" {
				continue
			}
			var rep actions.Report
			if len(d.Result) > 0 && json.Unmarshal(d.Result, &rep) == nil && len(rep.Checks) > 0 {
				for _, c := range rep.Checks {
					if nested {
						c.Name = "step " + idx + ": " + c.Name
					}
					t.Checks = append(t.Checks, c)
				}
			}
		}
	}
	return t
}

// check is the drill's time as a check: the total within the RTO.
func (t Timing) check(cfg *runbook.Config, plan actions.Plan) actions.CheckResult {
	total := t.Total()
	proc := Procedure(plan)
	c := actions.CheckResult{Name: "drill time", Kind: "drill", Target: proc, OK: true}
	c.Observed = Summary(proc, total, cfg, plan.Service)
	var parts []string
	for _, s := range t.Steps {
		parts = append(parts, s.Name+" "+Took(s.Took))
	}
	if len(parts) > 0 {
		c.Observed += " — " + strings.Join(parts, ", ")
	}
	if svc, ok := cfg.Service(plan.Service); ok && svc.Objectives.RTO.Duration > 0 {
		c.Expected = "≤ RTO " + svc.Objectives.RTO.String()
		c.OK = total <= svc.Objectives.RTO.Duration
	}
	return c
}

// Summary is a drill's one-line time: "restore-db drill: 4m12s, RTO 1h,
// scenario estimate 30m".
func Summary(proc string, total time.Duration, cfg *runbook.Config, service string) string {
	s := fmt.Sprintf("%s drill: %s", proc, Took(total))
	if svc, ok := cfg.Service(service); ok {
		if rto := svc.Objectives.RTO; rto.Duration > 0 {
			s += ", RTO " + rto.String()
		}
		if sc := scenarioFor(svc, proc); sc != nil {
			s += ", scenario estimate " + sc.Estimate.String()
		}
	}
	return s
}

// Took formats a duration as drills report it: "850ms", "12.4s", "4m12s", "1h3m".
func Took(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
}
