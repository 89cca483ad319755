package playbook

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/store"
)

// requestIdentified is implemented by the runner's journal: the request an
// execution belongs to (for the resume command a failure names).
type requestIdentified interface{ RequestID() int64 }

// Execute implements actions.Action: the steps in order, each action step
// through its own action with its journal steps prefixed by the step's
// index ("2.restore"), then its own Verify ("2.verify"); each run: step as
// "N.run". The first failure stops the playbook with a refusal that says
// which steps ran, which failed and why, which did not run, and how to
// continue.
func (a *Action) Execute(ctx context.Context, plan actions.Plan, j actions.Journal) error {
	spec, err := decodeSpec(plan)
	if err != nil {
		return err
	}
	var self int64
	if ri, ok := j.(requestIdentified); ok {
		self = ri.RequestID()
	}
	for i, ss := range spec.Steps {
		if ss.Done || ss.Skip != "" {
			continue
		}
		var stepErr error
		if ss.Plan != nil {
			stepErr = a.actionStep(ctx, spec, ss, j, self)
		} else {
			_, stepErr = actions.RunStep(ctx, j, ss.prefix()+"run", func(ctx context.Context, resumed bool) (runResult, error) {
				if resumed {
					// Killed with drbot (Pdeathsig) before it finished:
					// whether it did part of its work is unknown.
					j.Note(ctx, fmt.Sprintf("Resumed after a restart: the command of %s was interrupted (it died with drbot) and runs again from the start; run: steps must be safe to repeat.", ss.label()))
				}
				return a.runStep(ctx, ss, j)
			})
		}
		if stepErr != nil {
			if ctx.Err() != nil {
				return stepErr // interrupted (shutdown): resumed, not failed
			}
			return a.stopped(ctx, plan, spec, i, stepErr, self, j)
		}
	}
	return nil
}

func decodeSpec(plan actions.Plan) (Spec, error) {
	var spec Spec
	if err := json.Unmarshal(plan.Spec, &spec); err != nil {
		return Spec{}, fmt.Errorf("playbook: decode plan spec: %w", err)
	}
	return spec, nil
}

// actionStep executes one action step and its verification.
func (a *Action) actionStep(ctx context.Context, spec Spec, ss StepSpec, j actions.Journal, self int64) error {
	act := a.o.Lookup(ss.Action)
	if act == nil {
		return actions.Refusef("this drbot has no %s action any more; nothing of the step ran", ss.Action)
	}
	pj := &prefixed{Journal: j, prefix: ss.prefix(), label: ss.label()}
	// A step already begun (resumed after a restart) holds nothing else;
	// only a step about to start checks its target.
	if _, done, _, err := j.Begin(ctx, ss.prefix()+"target"); err != nil {
		return err
	} else if !done {
		ferr := a.targetsFree(ctx, spec, self, ss.Index)
		if err := j.Finish(ctx, ss.prefix()+"target", ss.Plan.Target, ferr); err != nil {
			return err
		}
		if ferr != nil {
			return ferr
		}
	}
	if err := act.Execute(ctx, *ss.Plan, pj); err != nil {
		return err
	}
	_, err := actions.RunStep(ctx, j, ss.prefix()+"verify", func(ctx context.Context, _ bool) (actions.Report, error) {
		rep, err := act.Verify(ctx, *ss.Plan)
		if err != nil {
			return rep, err
		}
		show(ctx, j, fmt.Sprintf("step-%d-verify", ss.Index), fmt.Sprintf("Step %d (%s) verification:\n%s", ss.Index, ss.Name, reportText(rep)))
		if !rep.OK() {
			if len(rep.Checks) == 0 {
				return rep, actions.Refusef("its verification ran no checks")
			}
			var names []string
			for _, c := range rep.Failed() {
				names = append(names, c.Name)
			}
			return rep, actions.Refusef("its verification failed: %d of %d checks did not pass (%s)", len(rep.Failed()), len(rep.Checks), strings.Join(names, ", "))
		}
		return rep, nil
	})
	return err
}

func reportText(rep actions.Report) string {
	if len(rep.Checks) == 0 {
		return "no checks ran"
	}
	var b strings.Builder
	for i, c := range rep.Checks {
		if i > 0 {
			b.WriteString("\n")
		}
		mark := "✅"
		if !c.OK {
			mark = "❌"
		}
		fmt.Fprintf(&b, "%s %s (%s %s): %s", mark, c.Name, c.Kind, c.Target, c.Observed)
		if c.Error != "" {
			b.WriteString(" — " + c.Error)
		}
	}
	return b.String()
}

// stopped turns the failure of step i into the playbook's user-safe
// failure: what ran, what failed and why, what did not run, how to continue.
func (a *Action) stopped(ctx context.Context, plan actions.Plan, spec Spec, i int, stepErr error, self int64, j actions.Journal) error {
	failed := spec.Steps[i]
	why := ""
	if rf, ok := usererr.As(stepErr); ok {
		why = rf.Msg
	} else {
		ref := store.NewRef()
		a.o.Logger.ErrorContext(ctx, "playbook step failed", "ref", ref, "playbook", spec.Playbook, "step", failed.Index, "err", stepErr)
		why = fmt.Sprintf("it failed (ref %s; details in drbot's log)", ref)
	}
	var ran, notRun []string
	for k, ss := range spec.Steps {
		name := fmt.Sprintf("%d %s", ss.Index, ss.Name)
		switch {
		case ss.Done:
			ran = append(ran, name+fmt.Sprintf(" (done in #%d)", spec.ResumeOf))
		case ss.Skip != "":
			if k < i {
				ran = append(ran, name+" (skipped)")
			} else {
				notRun = append(notRun, name+" (skipped)")
			}
		case k < i:
			ran = append(ran, name)
		case k > i:
			notRun = append(notRun, name)
		}
	}
	list := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, "; ")
	}
	msg := fmt.Sprintf("playbook %s stopped at step %d of %d (%s): %s\nRan: %s.\nNot run: %s.",
		spec.Playbook, failed.Index, len(spec.Steps), failed.Name, why, list(ran), list(notRun))
	switch {
	case spec.Drill:
		msg += "\nA drill is not resumed: fix the cause and run the drill again."
	case self != 0:
		msg += fmt.Sprintf("\nTo continue from step %d after a new approval: /dr playbook resume %d", failed.Index, self)
	default:
		msg += "\nTo continue from the failed step after a new approval: /dr playbook resume <this request's number>"
	}
	j.Note(ctx, msg)
	return actions.Refusef("%s", msg)
}

// Verify implements actions.Action: every action step this request ran is
// verified again by its own action (its checks named after the step); a
// run: step, whose exit status was checked when it ran, is reported as such.
func (a *Action) Verify(ctx context.Context, plan actions.Plan) (actions.Report, error) {
	spec, err := decodeSpec(plan)
	if err != nil {
		return actions.Report{}, err
	}
	var rep actions.Report
	for _, ss := range spec.Steps {
		switch {
		case ss.Done || ss.Skip != "":
			continue
		case ss.Plan != nil:
			act := a.o.Lookup(ss.Action)
			if act == nil {
				rep.Checks = append(rep.Checks, actions.CheckResult{Name: ss.label(), Kind: ss.Action, Observed: "not verified", Error: "this drbot has no " + ss.Action + " action any more"})
				continue
			}
			sub, err := act.Verify(ctx, *ss.Plan)
			if err != nil {
				if rf, ok := usererr.As(err); ok {
					rep.Checks = append(rep.Checks, actions.CheckResult{Name: ss.label(), Kind: ss.Action, Observed: "could not verify", Error: rf.Msg})
					continue
				}
				return actions.Report{}, fmt.Errorf("verify %s: %w", ss.label(), err)
			}
			for _, c := range sub.Checks {
				c.Name = fmt.Sprintf("step %d: %s", ss.Index, c.Name)
				rep.Checks = append(rep.Checks, c)
			}
			if len(sub.Checks) == 0 {
				rep.Checks = append(rep.Checks, actions.CheckResult{Name: ss.label(), Kind: ss.Action, Observed: "no checks ran"})
			}
		default:
			rep.Checks = append(rep.Checks, actions.CheckResult{Name: ss.label(), Kind: "command", Target: a.redactorFor(ss.EnvFrom...).text(ss.Run[0]), Expected: "exit status 0", Observed: "exited 0", OK: true})
		}
	}
	return rep, nil
}

// prefixed is the journal an action step's own action sees: its step names
// prefixed with the playbook step's index, so that they stay distinct from
// other steps' and resume after a restart like any step.
type prefixed struct {
	actions.Journal
	prefix string
	label  string
}

func (p *prefixed) Begin(ctx context.Context, step string) (json.RawMessage, bool, bool, error) {
	return p.Journal.Begin(ctx, p.prefix+step)
}

func (p *prefixed) Finish(ctx context.Context, step string, result any, stepErr error) error {
	return p.Journal.Finish(ctx, p.prefix+step, result, stepErr)
}

func (p *prefixed) Progress(ctx context.Context, pr actions.Progress) {
	pr.Step = p.prefix + pr.Step
	p.Journal.Progress(ctx, pr)
}

func (p *prefixed) Note(ctx context.Context, text string) {
	p.Journal.Note(ctx, "Step "+strings.TrimPrefix(p.label, "step ")+": "+text)
}

// StepTargets returns the targets of plan's action steps that are still to
// run (not done in an earlier request, not skipped) when plan is a
// playbook's, nil otherwise. A playbook request holds only its own target
// (playbook:<service>); whatever guards a step's target against other work
// (the drill-copy sweep) must see these too.
func StepTargets(plan actions.Plan) []string {
	if plan.Kind != Kind {
		return nil
	}
	spec, err := decodeSpec(plan)
	if err != nil {
		return nil
	}
	var out []string
	for _, ss := range spec.Steps {
		if ss.Plan != nil && !ss.Done && ss.Skip == "" {
			out = append(out, ss.Plan.Target)
		}
	}
	return out
}
