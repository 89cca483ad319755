// Package playbook is the composite recovery action of a service's
// playbooks: (runbook 001 §3 "Complete Cluster Recovery"): every step is
// planned up front (action steps by their own action with the service's
// config, run: steps as their argv), the whole procedure is approved once,
// and the steps run in order through the request's journal, each action
// step verified by its own Verify. The first failure stops the playbook;
// `/dr playbook resume <request>` continues from the failed step after a new
// approval.
//
// Targets. A playbook's request holds the target "playbook:<service>": one
// playbook in flight per service. Its steps' own targets (db:…, dns:…,
// k8s:…) are not held by the request, since a request has one target; instead
// the playbook refuses to plan while any of them has a request in flight, and
// checks again before each action step runs (a step whose target became busy
// fails the playbook, naming the request that holds it; resume continues once
// it is done). A direct request made while the playbook runs is not blocked
// by the playbook: the runbook's people run the playbook or the single
// procedure, and the card of each says which.
package playbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// Lookup returns the registered action of kind (nil when this drbot has none).
type Lookup func(kind string) actions.Action

// Store is what resume and the target checks read: earlier requests and
// their journals. *postgres.DB implements it.
type Store interface {
	Request(ctx context.Context, id int64) (store.ActionRequest, error)
	AuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error)
	RequestsInState(ctx context.Context, states ...store.RequestState) ([]store.ActionRequest, error)
	// RequestsOfKind returns up to limit requests of kind for service, newest first.
	RequestsOfKind(ctx context.Context, service, kind string, limit int) ([]store.ActionRequest, error)
}

// Options configure New.
type Options struct {
	// Config is the runbook config (services, playbooks, approvals).
	Config *runbook.Config
	// Lookup finds the action of an action: step.
	Lookup Lookup
	// Store reads earlier requests (resume, busy targets); nil: resume is
	// refused and targets are not checked.
	Store Store
	// Dir is the working directory of run: steps (DirEnv; "" = drbot's own).
	Dir string
	// LookupEnv reads drbot's environment (env_from values); os.LookupEnv when nil.
	LookupEnv func(string) (string, bool)
	// TailEvery throttles a running command's output tail in the thread
	// (0: DefaultTailEvery); TailLines is how many lines it shows (0: DefaultTailLines).
	TailEvery time.Duration
	TailLines int
	Logger    *slog.Logger
}

// DirEnv names the environment variable holding the working directory of
// playbook run: steps (the checkout their relative paths, such as
// -chdir=infrastructure or ./deploy/helm/lstm-pfd, refer to). Unset: drbot's
// own working directory.
const DirEnv = "DRBOT_PLAYBOOK_DIR"

// Defaults of Options.
const (
	DefaultTailEvery = 5 * time.Second
	DefaultTailLines = 15
)

// Action is the playbook action.
type Action struct {
	o Options
}

var (
	_ actions.Action    = (*Action)(nil)
	_ actions.Drillable = (*Action)(nil)
	_ actions.Transient = (*Action)(nil)
)

// New returns the playbook action.
func New(o Options) *Action {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.TailEvery <= 0 {
		o.TailEvery = DefaultTailEvery
	}
	if o.TailLines <= 0 {
		o.TailLines = DefaultTailLines
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Action{o: o}
}

// Kind implements actions.Action.
func (*Action) Kind() string { return Kind }

// Spec is a playbook plan's execution input.
type Spec struct {
	Playbook string `json:"playbook"`
	// ResumeOf is the failed request this plan continues (0: a fresh run).
	ResumeOf int64 `json:"resume_of,omitempty"`
	// Drill marks a drill plan: steps in their drill forms, the others skipped.
	Drill bool       `json:"drill,omitempty"`
	Steps []StepSpec `json:"steps"`
	// Identity is what each step does without display text or planning-time
	// values (actions.IdentityOf of each sub-plan); Steps is transient.
	Identity []json.RawMessage `json:"identity"`
}

// StepSpec is one planned step of a playbook.
type StepSpec struct {
	Index int    `json:"index"` // 1-based, in the playbook
	Name  string `json:"name"`
	// Done: the step finished in the request this one resumes; not run again.
	Done bool `json:"done,omitempty"`
	// Skip is why a drill does not run this step ("" = it runs).
	Skip string `json:"skip,omitempty"`
	// Action steps: the action kind, its args as configured and its plan.
	Action string        `json:"action,omitempty"`
	Args   []string      `json:"args,omitempty"`
	Plan   *actions.Plan `json:"plan,omitempty"`
	// Run steps: argv, timeout, the names (never values) of env_from and
	// the working directory.
	Run     []string      `json:"run,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
	EnvFrom []string      `json:"env_from,omitempty"`
	Dir     string        `json:"dir,omitempty"`
}

func (s StepSpec) label() string { return fmt.Sprintf("step %d (%s)", s.Index, s.Name) }

func (s StepSpec) prefix() string { return strconv.Itoa(s.Index) + "." }

// TransientSpec implements actions.Transient: the sub-plans carry
// planning-time values (a side database's timestamped name); Identity holds
// what they do.
func (*Action) TransientSpec() []string { return []string{"steps"} }

// Plan implements actions.Action.
func (a *Action) Plan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	return a.planFor(ctx, p, false)
}

// DrillPlan implements actions.Drillable: each action step in its drill form
// when its action has one, as it is when its action is read-only (verify:
// no approval, nothing changed), listed as skipped otherwise; run: steps
// skipped and listed unless the step says drill: true.
func (a *Action) DrillPlan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	return a.planFor(ctx, p, true)
}

func (a *Action) planFor(ctx context.Context, p actions.Params, drill bool) (actions.Plan, error) {
	svc, err := p.ServiceIn(a.o.Config)
	if err != nil {
		return actions.Plan{}, err
	}
	name := argName.Of(p)
	if name == resumeWord {
		if drill {
			return actions.Plan{}, actions.Refusef("a drill does not resume a request; drill the playbook by its name")
		}
		return a.planResume(ctx, svc, p)
	}
	if name == "" {
		return actions.Plan{}, actions.Refusef("name the playbook to run: %s", available(svc))
	}
	if r := argRequest.Of(p); r != "" {
		return actions.Plan{}, actions.Refusef("too many arguments: %q — only /dr playbook resume <request> takes a request number", r)
	}
	pb, ok := svc.Playbook(name)
	if !ok {
		return actions.Plan{}, actions.Refusef("%s has no playbook %q: %s", svc.Name, name, available(svc))
	}
	return a.plan(ctx, svc, pb, nil, 0, drill)
}

func available(svc *runbook.Service) string {
	if len(svc.Playbooks) == 0 {
		return svc.Name + " has no playbooks (playbooks: in the runbook config)"
	}
	var names []string
	for _, pb := range svc.Playbooks {
		names = append(names, pb.Name)
	}
	return svc.Name + "'s playbooks are " + strings.Join(names, ", ")
}

// plan plans pb's steps; done are the 1-based indexes finished by request
// resumeOf, listed and not run.
func (a *Action) plan(ctx context.Context, svc *runbook.Service, pb *runbook.Playbook, done map[int]bool, resumeOf int64, drill bool) (actions.Plan, error) {
	spec := Spec{Playbook: pb.Name, ResumeOf: resumeOf, Drill: drill}
	plan := actions.Plan{Kind: Kind, Service: svc.Name, Target: "playbook:" + svc.Name}
	if drill {
		plan.Target = "drill:playbook:" + svc.Name
	}
	baseReq, _ := a.o.Config.ApprovalsFor(Kind)
	baseReq = max(baseReq, 1)
	need, needBy := baseReq, ""
	toRun := 0
	red := a.cardRedactor(pb)
	for i, st := range pb.Steps {
		// A step without name: is named after its argv or args: shown
		// redacted like the argv itself.
		ss := StepSpec{Index: i + 1, Name: red.text(st.Name)}
		label := fmt.Sprintf("Step %d · %s", ss.Index, ss.Name)
		id := json.RawMessage("null")
		switch {
		case done[ss.Index]:
			ss.Done = true
			ss.Action, ss.Run = st.Action, st.Run
			plan.Facts = append(plan.Facts, actions.Fact{Label: label, Value: fmt.Sprintf("done in request #%d; not run again", resumeOf)})
		case st.Action != "":
			ss.Action, ss.Args = st.Action, slices.Clone(st.Args)
			sub, err := a.subPlan(ctx, svc, ss, drill)
			if err != nil {
				return actions.Plan{}, err
			}
			if sub == nil {
				ss.Skip = st.Action + " has no drill form"
				plan.Facts = append(plan.Facts, actions.Fact{Label: label, Value: "skipped in a drill: " + ss.Skip})
				break
			}
			ss.Plan = sub
			toRun++
			// A drill's approvals are the drill policy's (drills.approval),
			// not those of its steps' real actions.
			n, _ := a.o.Config.ApprovalsFor(st.Action)
			if n = max(n, 1) + sub.ExtraApprovals; n > need && !drill {
				need, needBy = n, fmt.Sprintf("step %d (%s) needs %d", ss.Index, st.Action, n)
			}
			a.addSubPlan(&plan, ss, label)
			if sid, err := actions.IdentityOf(a.o.Lookup(st.Action), *sub); err == nil {
				id, _ = json.Marshal(sid)
			}
		default:
			ss.Run, ss.EnvFrom, ss.Timeout, ss.Dir = slices.Clone(st.Run), slices.Clone(st.EnvFrom), st.StepTimeout().Duration, a.o.Dir
			if drill && !st.Drill {
				ss.Skip = "a command; drills run commands only with drill: true"
				plan.Facts = append(plan.Facts, actions.Fact{Label: label, Value: "skipped in a drill: `" + red.argv(ss.Run) + "`"})
				break
			}
			for _, name := range ss.EnvFrom {
				if _, ok := a.o.LookupEnv(name); !ok {
					return actions.Plan{}, actions.Refusef("%s passes %s to its command (env_from), but drbot's environment has no %s; set it where drbot runs and plan again. Nothing was planned.", ss.label(), name, name)
				}
			}
			toRun++
			// The argv is the operator's text; a secret of drbot's own
			// environment, an env_from value or a secret-looking word
			// written into it is still not shown.
			desc := "run `" + red.argv(ss.Run) + "`"
			v := desc + " · timeout " + ss.Timeout.String()
			if len(ss.EnvFrom) > 0 {
				v += " · env " + strings.Join(ss.EnvFrom, ", ") + " (values not shown)"
			}
			if ss.Dir != "" {
				v += " · in " + ss.Dir
			}
			plan.Facts = append(plan.Facts, actions.Fact{Label: label, Value: v})
			plan.Steps = append(plan.Steps, actions.Step{Name: ss.prefix() + "run", Description: fmt.Sprintf("[%d %s] %s", ss.Index, ss.Name, desc)})
			id, _ = json.Marshal(map[string]any{"run": ss.Run, "env_from": ss.EnvFrom, "timeout": ss.Timeout.String(), "dir": ss.Dir})
		}
		spec.Steps = append(spec.Steps, ss)
		spec.Identity = append(spec.Identity, id)
	}
	if toRun == 0 {
		if resumeOf != 0 {
			return actions.Plan{}, actions.Refusef("every step of request #%d finished; nothing is left to resume (run /dr verify %s to check the service)", resumeOf, svc.Name)
		}
		return actions.Plan{}, actions.Refusef("playbook %s has no step that a drill runs", pb.Name)
	}
	if need > baseReq {
		plan.ExtraApprovals = need - baseReq
		plan.Facts = append(plan.Facts, actions.Fact{Label: "Approvals", Value: fmt.Sprintf("%d: %s", need, needBy)})
	}
	verb := "Run"
	if drill {
		verb = "Drill"
	}
	plan.Summary = fmt.Sprintf("%s playbook %s on %s: %d of %d steps", verb, pb.Name, svc.Name, toRun, len(pb.Steps))
	if pb.Description != "" {
		plan.Summary += " — " + pb.Description
	}
	if resumeOf != 0 {
		first := 0
		for _, s := range spec.Steps {
			if !s.Done {
				first = s.Index
				break
			}
		}
		plan.Summary = fmt.Sprintf("Resume playbook %s on %s (request #%d) from step %d of %d", pb.Name, svc.Name, resumeOf, first, len(pb.Steps))
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("plan playbook %s: %w", pb.Name, err)
	}
	plan.Spec = raw
	if err := a.targetsFree(ctx, spec, 0); err != nil {
		return actions.Plan{}, err
	}
	return plan, nil
}

// subPlan plans an action step with its action; nil (no error) when drill
// and the action has no drill form.
func (a *Action) subPlan(ctx context.Context, svc *runbook.Service, ss StepSpec, drill bool) (*actions.Plan, error) {
	var act actions.Action
	if a.o.Lookup != nil {
		act = a.o.Lookup(ss.Action)
	}
	if act == nil {
		return nil, actions.Refusef("%s runs %s, which this drbot cannot run (it is not configured here); nothing was planned", ss.label(), ss.Action)
	}
	args, flags, err := bindArgs(act.Command(), ss.Args)
	if err != nil {
		return nil, actions.Refusef("%s: args %q in the runbook config: %s", ss.label(), ss.Args, err)
	}
	params := actions.Params{Service: svc.Name, Args: args, Flags: flags, Resolved: svc}
	var sub actions.Plan
	if drill {
		d, ok := act.(actions.Drillable)
		switch {
		case ok:
			sub, err = d.DrillPlan(ctx, params)
		case !act.Command().Approval:
			// A read-only action (verify) changes nothing: a drill runs
			// it as it is, as an SRE rehearsing the playbook expects.
			sub, err = act.Plan(ctx, params)
		default:
			return nil, nil
		}
	} else {
		sub, err = act.Plan(ctx, params)
	}
	if err != nil {
		if rf, ok := usererr.As(err); ok {
			return nil, actions.Refusef("%s cannot be planned: %s", ss.label(), rf.Msg)
		}
		return nil, fmt.Errorf("plan %s: %w", ss.label(), err)
	}
	if sub.Kind == "" {
		sub.Kind = ss.Action
	}
	if sub.Service == "" {
		sub.Service = svc.Name
	}
	return &sub, nil
}

// addSubPlan puts an action step's plan on the playbook's card, in order:
// its summary, facts, warnings, overridden safety checks and steps (then its
// verification), each marked with the step.
func (a *Action) addSubPlan(plan *actions.Plan, ss StepSpec, label string) {
	sub := ss.Plan
	plan.Facts = append(plan.Facts, actions.Fact{Label: label, Value: sub.Summary + " (target " + sub.Target + ")"})
	for _, f := range sub.Facts {
		plan.Facts = append(plan.Facts, actions.Fact{Label: fmt.Sprintf("%d · %s", ss.Index, f.Label), Value: f.Value})
	}
	for _, w := range sub.Warnings {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("Step %d (%s): %s", ss.Index, ss.Action, w))
	}
	for _, d := range sub.Danger {
		plan.Danger = append(plan.Danger, fmt.Sprintf("Step %d (%s): %s", ss.Index, ss.Action, d))
	}
	plan.Steps = append(plan.Steps, actions.Step{Name: ss.prefix() + "target", Description: fmt.Sprintf("[%d %s] check that no other request holds %s", ss.Index, ss.Name, sub.Target)})
	for _, s := range sub.Steps {
		desc := s.Description
		if desc == "" {
			desc = s.Name
		}
		plan.Steps = append(plan.Steps, actions.Step{Name: ss.prefix() + s.Name, Description: fmt.Sprintf("[%d %s] %s", ss.Index, ss.Name, desc)})
	}
	plan.Steps = append(plan.Steps, actions.Step{Name: ss.prefix() + "verify", Description: fmt.Sprintf("[%d %s] verify the %s", ss.Index, ss.Name, ss.Action)})
}

// bindArgs parses a step's configured args as /dr <action> would: flags
// (--name value, --name=value, bool --name) and positional arguments in
// the command's order (a variadic one takes the rest).
func bindArgs(c actions.Command, words []string) (map[string]string, map[string]string, error) {
	args, flags := map[string]string{}, map[string]string{}
	var pos []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "--") || len(w) < 3 {
			pos = append(pos, w)
			continue
		}
		name, value, hasValue := strings.Cut(w[2:], "=")
		var f *actions.Flag
		for k := range c.Flags {
			if c.Flags[k].Name == name {
				f = &c.Flags[k]
			}
		}
		switch {
		case name == "dry-run" || name == "reason":
			return nil, nil, fmt.Errorf("--%s is not for a playbook step (the playbook has its own)", name)
		case f == nil:
			return nil, nil, fmt.Errorf("/dr %s has no flag --%s", c.Name, name)
		case f.Bool:
			if hasValue && value != "true" && value != "false" {
				return nil, nil, fmt.Errorf("--%s is true or false, not %q", name, value)
			}
			if !hasValue {
				value = "true"
			}
		case !hasValue:
			if i+1 >= len(words) {
				return nil, nil, fmt.Errorf("--%s needs a value", name)
			}
			i++
			value = words[i]
		}
		if _, dup := flags[name]; dup {
			return nil, nil, fmt.Errorf("--%s given twice", name)
		}
		flags[name] = value
	}
	for i, ar := range c.Args {
		if ar.Variadic {
			if len(pos) > i {
				args[ar.Name] = strings.Join(pos[i:], " ")
			}
			pos = pos[:min(i, len(pos))]
			break
		}
		if i < len(pos) {
			args[ar.Name] = pos[i]
		} else if !ar.Optional {
			return nil, nil, fmt.Errorf("/dr %s needs <%s>", c.Name, ar.Name)
		}
	}
	if len(pos) > len(c.Args) {
		return nil, nil, fmt.Errorf("too many arguments for /dr %s: %q", c.Name, pos[len(c.Args)])
	}
	for _, f := range c.Flags {
		if _, ok := flags[f.Name]; !ok && f.Default != "" {
			flags[f.Name] = f.Default
		}
	}
	return args, flags, nil
}

// inFlight are the states of a request that holds its target.
var inFlight = []store.RequestState{store.RequestPending, store.RequestApproved, store.RequestRunning, store.RequestVerifying}

// targetsFree refuses when a step's target has a request in flight other
// than self (the playbook's own request, 0 at plan time).
func (a *Action) targetsFree(ctx context.Context, spec Spec, self int64, only ...int) error {
	if a.o.Store == nil {
		return nil
	}
	reqs, err := a.o.Store.RequestsInState(ctx, inFlight...)
	if err != nil {
		return fmt.Errorf("playbook %s: read requests in flight: %w", spec.Playbook, err)
	}
	for _, ss := range spec.Steps {
		if ss.Plan == nil || ss.Done || ss.Skip != "" || (len(only) > 0 && !slices.Contains(only, ss.Index)) {
			continue
		}
		for _, r := range reqs {
			if r.ID != self && r.Target == ss.Plan.Target {
				return actions.Refusef("%s acts on %s, which request #%d (%s, %s) holds; wait for it to finish or cancel it, then run the playbook again",
					ss.label(), ss.Plan.Target, r.ID, r.Kind, r.State)
			}
		}
	}
	return nil
}

// planResume plans the continuation of a failed playbook request: the steps
// it finished are listed as done, the rest planned again from the failed one.
func (a *Action) planResume(ctx context.Context, svc *runbook.Service, p actions.Params) (actions.Plan, error) {
	ref := argRequest.Of(p)
	if ref == "" {
		return actions.Plan{}, actions.Refusef("which request? usage: /dr playbook resume <request> (the number on the failed playbook's card)")
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(ref, "#"), 10, 64)
	if err != nil || id <= 0 {
		return actions.Plan{}, actions.Refusef("%q is not a request number (the number on the failed playbook's card, e.g. 42)", ref)
	}
	if a.o.Store == nil {
		return actions.Plan{}, actions.Refusef("this drbot keeps no request history, so it cannot resume request #%d", id)
	}
	orig, err := a.o.Store.Request(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return actions.Plan{}, actions.Refusef("there is no request #%d", id)
	}
	if err != nil {
		return actions.Plan{}, fmt.Errorf("resume request %d: %w", id, err)
	}
	if orig.Kind != Kind {
		return actions.Plan{}, actions.Refusef("request #%d is a %s request, not a playbook; only a failed playbook resumes", id, orig.Kind)
	}
	if orig.Service != svc.Name {
		return actions.Plan{}, actions.Refusef("request #%d is a playbook of %s, not of %s; resume it for %s (in its incident channel, or /dr playbook resume %d %s)", id, orig.Service, svc.Name, orig.Service, id, orig.Service)
	}
	if orig.State != store.RequestFailed {
		return actions.Plan{}, actions.Refusef("request #%d did not fail (it is %s); only a failed playbook resumes", id, orig.State)
	}
	var op actions.Plan
	var prev Spec
	if err := json.Unmarshal(orig.Plan, &op); err != nil {
		return actions.Plan{}, fmt.Errorf("resume request %d: decode plan: %w", id, err)
	}
	if err := json.Unmarshal(op.Spec, &prev); err != nil {
		return actions.Plan{}, fmt.Errorf("resume request %d: decode spec: %w", id, err)
	}
	if prev.Drill {
		return actions.Plan{}, actions.Refusef("request #%d was a drill; run the drill again instead", id)
	}
	pb, ok := svc.Playbook(prev.Playbook)
	if !ok {
		return actions.Plan{}, actions.Refusef("request #%d ran playbook %s, which %s no longer has", id, prev.Playbook, svc.Name)
	}
	red := a.cardRedactor(pb)
	finished, err := a.finishedSteps(ctx, id)
	if err != nil {
		return actions.Plan{}, err
	}
	done := map[int]bool{}
	for _, ss := range prev.Steps {
		if ss.Done || (ss.Skip == "" && finished[ss.prefix()+lastStep(ss)]) {
			done[ss.Index] = true
		}
		if done[ss.Index] {
			if ss.Index > len(pb.Steps) || !sameStep(pb.Steps[ss.Index-1], ss, red) {
				return actions.Plan{}, actions.Refusef("playbook %s changed since request #%d (its step %d is no longer %s); run the playbook again whole", pb.Name, id, ss.Index, ss.Name)
			}
		}
	}
	if err := a.notRolledBack(ctx, svc.Name, id, prev, done); err != nil {
		return actions.Plan{}, err
	}
	return a.plan(ctx, svc, pb, done, id, false)
}

// kindRollback is the kind of the rollback action's requests
// (actions/restoredb.KindRollback): one that undid a restore-db step of a
// playbook names the playbook's request and the step in its spec.
const kindRollback = "rollback"

// notRolledBack refuses to resume request id when a step it finished was
// undone since (a restore-db step rolled back by /dr rollback): resuming
// would skip it and go on with the state from before it.
func (a *Action) notRolledBack(ctx context.Context, service string, id int64, prev Spec, done map[int]bool) error {
	rbs, err := a.o.Store.RequestsOfKind(ctx, service, kindRollback, 50)
	if err != nil {
		return fmt.Errorf("resume request %d: read rollbacks: %w", id, err)
	}
	// A step done in an earlier request of the chain (a resume of a
	// resume) was journaled, and is rolled back, under that request.
	chain := map[int64]bool{id: true}
	for up, n := prev.ResumeOf, 0; up != 0 && n < 20 && !chain[up]; n++ {
		chain[up] = true
		r, err := a.o.Store.Request(ctx, up)
		if err != nil {
			break
		}
		var p actions.Plan
		var sp Spec
		if json.Unmarshal(r.Plan, &p) != nil || json.Unmarshal(p.Spec, &sp) != nil {
			break
		}
		up = sp.ResumeOf
	}
	for _, r := range rbs {
		switch r.State {
		case store.RequestPending, store.RequestDenied, store.RequestExpired, store.RequestCancelled:
			continue // it did not run
		}
		var p actions.Plan
		if json.Unmarshal(r.Plan, &p) != nil {
			continue
		}
		var rs struct {
			Restore     int64 `json:"restore"`
			RestoreStep int   `json:"restore_step"`
		}
		if json.Unmarshal(p.Spec, &rs) != nil || !chain[rs.Restore] || rs.RestoreStep == 0 || !done[rs.RestoreStep] {
			continue
		}
		name := ""
		for _, ss := range prev.Steps {
			if ss.Index == rs.RestoreStep {
				name = ss.Name
			}
		}
		return actions.Refusef("step %d (%s) of request #%d was rolled back by request #%d (%s): resuming would skip it and go on with the database from before it. Run the playbook again whole (/dr playbook %s %s)",
			rs.RestoreStep, name, rs.Restore, r.ID, r.State, prev.Playbook, service)
	}
	return nil
}

// lastStep is the journal name (without the prefix) of a step's last part:
// an action step is done when its verification passed.
func lastStep(ss StepSpec) string {
	if ss.Action != "" {
		return "verify"
	}
	return "run"
}

// sameStep: the configured step st is the planned ss (whose name is shown
// redacted; a plan from before names were redacted holds it as written).
func sameStep(st runbook.PlaybookStep, ss StepSpec, red *redactor) bool {
	return (st.Name == ss.Name || red.text(st.Name) == ss.Name) && st.Action == ss.Action && slices.Equal(st.Run, ss.Run)
}

// cardRedactor redacts what pb's card and thread show: drbot's known
// secrets and the values of every env_from variable of its steps.
func (a *Action) cardRedactor(pb *runbook.Playbook) *redactor {
	var names []string
	for _, st := range pb.Steps {
		names = append(names, st.EnvFrom...)
	}
	return a.redactorFor(names...)
}

// finishedSteps returns the journal steps request id finished successfully.
func (a *Action) finishedSteps(ctx context.Context, id int64) (map[string]bool, error) {
	out := map[string]bool{}
	after := int64(0)
	for {
		evs, err := a.o.Store.AuditEvents(ctx, store.AuditFilter{RequestID: &id, AfterSeq: after, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("resume request %d: read its journal: %w", id, err)
		}
		for _, ev := range evs {
			if ev.Kind != actions.AuditStepFinished {
				continue
			}
			var r actions.StepRecord
			if json.Unmarshal(ev.Data, &r) == nil && r.Error == "" {
				out[r.Step] = true
			}
		}
		if len(evs) < 1000 {
			return out, nil
		}
		after = evs[len(evs)-1].Seq
	}
}
