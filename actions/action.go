// Package actions holds the recovery actions' contract: an Action computes a
// deterministic, read-only Plan, executes it as recorded, resumable steps, and
// verifies the result. Each kind lives in its own sub-package; the runner that
// executes approved requests as durable jobs is in actions/runner.
package actions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/runbook"
)

// Params is what a command hands an action: the service and the parsed arguments.
type Params struct {
	Service string
	// Args are the positional arguments by name, Flags the flags by name (bool
	// flags "true"/"false"), as the command parser produced them.
	Args  map[string]string
	Flags map[string]string
	// DryRun asks for the plan only.
	DryRun bool
	// Resolved is the service named by Service as the command parser
	// resolved it; it is not stored with a request (see ServiceIn).
	Resolved *runbook.Service `json:"-"`
}

// Plan is exactly what will happen, shown to approvers and bound to their
// approval by Hash. It must be deterministic for the same world: everything the
// execution depends on (the backup object and its version/ETag, the target
// database, the replica, the DNS record) is pinned here, never looked up again
// at execution time.
type Plan struct {
	Kind    string `json:"kind"`    // the action kind, e.g. restore-db
	Service string `json:"service"` // runbook service name
	// Target is what the action changes; one in-flight request per target
	// (e.g. "db:lstm-pfd/lstm_pfd", "dns:inflow", "k8s:default/deployment/web").
	Target  string `json:"target"`
	Summary string `json:"summary"` // one line: "Restore lstm_pfd from db/2026-11-23.dump (3h12m old)"
	Steps   []Step `json:"steps"`
	// Facts are the pinned details shown on the approval card, in order
	// (backup key, version, size, age against the RPO, current DNS value, …).
	Facts []Fact `json:"facts,omitempty"`
	// Warnings are shown prominently (e.g. "newest backup is older than the RPO").
	Warnings []string `json:"warnings,omitempty"`
	// Danger lines say which safety check the requester overrode (e.g.
	// failover --force while the primary still answers): shown first and in
	// red where the platform can, with a red Approve button.
	Danger []string `json:"danger,omitempty"`
	// ExtraApprovals is how many approvals this plan needs beyond its
	// command's policy (a forced plan needs one more). Being part of the plan,
	// it is covered by the hash the approvals are bound to.
	ExtraApprovals int `json:"extra_approvals,omitempty"`
	// Spec is the action's own, complete execution input; Execute reads only it.
	Spec json.RawMessage `json:"spec"`
}

// Step is one planned step.
type Step struct {
	Name        string `json:"name"` // stable id used by the journal, e.g. "restore-side"
	Description string `json:"description"`
}

// Fact is one labelled, pinned detail of a plan.
type Fact struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Hash is the sha256 (hex) of the plan's canonical JSON. An approval counts
// only for the hash it saw.
func (p Plan) Hash() (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("hash plan: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Action is one kind of recovery action.
type Action interface {
	// Kind is the command name that requests it, e.g. "restore-db".
	Kind() string
	// Command declares that command (Kind is its Name).
	Command() Command
	// Plan computes the plan for p. It is read-only: it changes nothing.
	// A problem with the user's input or the world (no backup, unknown database)
	// is returned as a *Refusal.
	Plan(ctx context.Context, p Params) (Plan, error)
	// Execute runs plan's steps through j. It must be safe to call again after a
	// crash at any point: steps j reports done are skipped, and a step that
	// started but did not finish is either resumed or rolled back to a safe state
	// (Execute says which through j.Note).
	Execute(ctx context.Context, plan Plan, j Journal) error
	// Verify checks the result and reports each check.
	Verify(ctx context.Context, plan Plan) (Report, error)
}

// Journal records an execution's steps durably and reports progress. The
// runner's implementation writes each step to the audit log and updates the
// request's card.
type Journal interface {
	// Begin records that step starts. When an earlier attempt already finished
	// the step it returns that attempt's result and done=true, and the step must
	// not run again. started reports whether an earlier attempt began the step
	// without finishing it (a crash mid-step).
	Begin(ctx context.Context, step string) (result json.RawMessage, done, started bool, err error)
	// Finish records the step's outcome: result (JSON-encoded) on success, or stepErr.
	Finish(ctx context.Context, step string, result any, stepErr error) error
	// Progress reports progress within the current step (bytes, objects,
	// replicas). It never fails the action; implementations throttle updates.
	Progress(ctx context.Context, p Progress)
	// Note posts a line to the request's channel and audit log (e.g. "resumed
	// after restart" or "rolled back: live database untouched").
	Note(ctx context.Context, text string)
}

// Progress is a progress report within a step.
type Progress struct {
	Step  string // the step's name
	Done  int64
	Total int64  // 0 when unknown
	Unit  string // "bytes", "objects", "replicas"
}

// RunStep runs fn as step name through j exactly once across attempts and
// returns its result. A step already done returns the recorded result without
// calling fn; resumed reports whether an earlier attempt started it.
func RunStep[T any](ctx context.Context, j Journal, name string, fn func(ctx context.Context, resumed bool) (T, error)) (T, error) {
	var zero T
	raw, done, started, err := j.Begin(ctx, name)
	if err != nil {
		return zero, fmt.Errorf("step %s: record start: %w", name, err)
	}
	if done {
		var out T
		if len(raw) > 0 && string(raw) != "null" {
			if err := json.Unmarshal(raw, &out); err != nil {
				return zero, fmt.Errorf("step %s: decode recorded result: %w", name, err)
			}
		}
		return out, nil
	}
	out, stepErr := fn(ctx, started)
	if ferr := j.Finish(ctx, name, out, stepErr); ferr != nil {
		return zero, errors.Join(stepErr, fmt.Errorf("step %s: record finish: %w", name, ferr))
	}
	if stepErr != nil {
		return zero, fmt.Errorf("%s: %w", name, stepErr)
	}
	return out, nil
}

// Report is a verification's outcome.
type Report struct {
	Checks []CheckResult `json:"checks"`
}

// OK reports whether every check passed (and there was at least one).
func (r Report) OK() bool {
	if len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Failed returns the checks that did not pass.
func (r Report) Failed() []CheckResult {
	var out []CheckResult
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// CheckResult is one check's outcome, with what was observed.
type CheckResult struct {
	Name     string        `json:"name"`               // the check's configured name
	Kind     string        `json:"kind"`               // http, metric, sql, pods
	Target   string        `json:"target"`             // URL, database, selector (never credentials)
	Expected string        `json:"expected,omitempty"` // e.g. "> 0", "200"
	Observed string        `json:"observed"`           // e.g. "1523", "200 in 41ms", "3/3 ready"
	OK       bool          `json:"ok"`
	Latency  time.Duration `json:"latency,omitempty"`
	Error    string        `json:"error,omitempty"` // user-safe reason when the check could not run
}

// Refusal is a user-safe reason an action will not plan or run as asked: no
// backup in the location, an unknown database, a pinned object that is gone.
// Its Msg is shown to users verbatim; it never carries credentials or SQL.
// It is the one user-safe error type of every layer (internal/usererr).
type Refusal = usererr.Refusal

// Refusef returns a *Refusal with a formatted message.
var Refusef = usererr.Refusef

// Registry maps command names to actions.
type Registry map[string]Action

// Register adds a; a second action of the same kind is a wiring bug and panics.
func (r Registry) Register(a Action) {
	if _, dup := r[a.Kind()]; dup {
		panic("actions: duplicate action kind " + a.Kind())
	}
	r[a.Kind()] = a
}
