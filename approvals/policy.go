// Package approvals decides who may approve a destructive request and when it
// is approved (pure policy evaluation), and moves requests through their
// lifecycle (create, approve, deny, cancel, expire) in the store, each change
// in one transaction with its audit row and its next job.
package approvals

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// Refusal is a user-safe reason a decision or request is not taken (its Code
// says which); its Msg is shown to the user who acted (privately); nothing
// changed. It is the one user-safe error type of every layer (internal/usererr).
type Refusal = usererr.Refusal

// Refusal codes.
const (
	CodeNotPending  = "not-pending"
	CodeExpired     = "expired"
	CodeOwnRequest  = "own-request"
	CodeNotApprover = "not-approver"
	CodeDuplicate   = "duplicate"
	CodeNotOwner    = "not-owner"
	CodeTargetBusy  = "target-busy"
)

func refuse(code, format string, a ...any) *Refusal {
	return &Refusal{Code: code, Msg: fmt.Sprintf(format, a...)}
}

// Policy is the approval policy of one command.
type Policy struct {
	Required int           // approvals needed from approvers other than the requester
	Expires  time.Duration // a pending request expires this long after it was made
}

// PolicyFor returns the policy of command from the config (approvals.required,
// approvals.expires_after and per-command overrides; failover needs two by default).
func PolicyFor(cfg *runbook.Config, command string) Policy {
	n, exp := cfg.ApprovalsFor(command)
	return Policy{Required: max(n, 1), Expires: exp}
}

// PolicyForRequest is the policy of one request of command with plan (its
// JSON as stored): the command's policy plus the approvals the plan asks for
// beyond it (its "extra_approvals"; a forced failover needs one more). The
// plan hash covers that field, so an approval never counts for a plan that
// asks for fewer approvals than the one it saw.
//
// A drill (store.KindDrill) needs no approval (Required 0: it is approved
// when made, with an audit row saying why) unless its service sets
// drills.approval: a drill runs against throwaway targets, never live.
func PolicyForRequest(cfg *runbook.Config, command string, plan []byte) Policy {
	p := PolicyFor(cfg, command)
	var extra struct {
		N       int    `json:"extra_approvals"`
		Service string `json:"service"`
	}
	if len(plan) > 0 && json.Unmarshal(plan, &extra) == nil && extra.N > 0 {
		p.Required += extra.N
	}
	if command == store.KindDrill && extra.N == 0 {
		if svc, ok := cfg.Service(extra.Service); !ok || !svc.Drills.Approval {
			p.Required = 0
		}
	}
	return p
}

// NoApprovalReason is why a request whose policy requires no approval was
// approved when it was made (the audit row of its approval says so).
func NoApprovalReason(command, service string) string {
	return fmt.Sprintf("a %s runs against throwaway targets and never touches live; drills.approval is off for %s, so it needs no second person", command, service)
}

// Approvers is the resolved set of chat user ids allowed to approve.
type Approvers map[string]bool

// Has reports whether user id is an approver.
func (a Approvers) Has(id string) bool { return a[id] }

// IDs returns the approvers' ids, sorted.
func (a Approvers) IDs() []string {
	out := make([]string, 0, len(a))
	for id, ok := range a {
		if ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Decision is one click on a request's card, with everything the policy needs.
type Decision struct {
	Request   store.ActionRequest
	Approvals []store.Approval // the decisions so far
	Actor     string           // the chat user id from the signed payload
	Decision  store.Decision   // store.DecisionApprove or store.DecisionDeny
	Approvers Approvers
	Policy    Policy
	Now       time.Time
}

// Verdict is what an accepted decision leads to.
type Verdict struct {
	// Count is the number of approvals that count after this decision.
	Count int
	// Approved is true when this approval reaches Policy.Required.
	Approved bool
	// Denied is true for an accepted denial.
	Denied bool
}

// Evaluate applies the rules to d and returns the verdict, or a *Refusal when
// the decision must not be recorded:
//   - only a pending, unexpired request takes decisions;
//   - the requester never approves (or denies) their own request, whatever the config says;
//   - only listed approvers decide;
//   - each approver decides once per plan.
//
// It is a pure function of its input.
func Evaluate(d Decision) (Verdict, error) {
	r := d.Request
	if d.Decision != store.DecisionApprove && d.Decision != store.DecisionDeny {
		return Verdict{}, fmt.Errorf("evaluate decision on request %d: unknown decision %q", r.ID, d.Decision)
	}
	if r.State != store.RequestPending {
		return Verdict{}, notPending(r)
	}
	if !r.ExpiresAt.IsZero() && !d.Now.Before(r.ExpiresAt) {
		return Verdict{}, refuse(CodeExpired, "Request #%d expired at %s; nothing was done. Run the command again for a new request.", r.ID, r.ExpiresAt.UTC().Format("15:04 MST"))
	}
	if d.Actor == "" {
		return Verdict{}, fmt.Errorf("evaluate decision on request %d: no actor", r.ID)
	}
	if d.Actor == r.RequestedBy {
		if d.Decision == store.DecisionApprove {
			return Verdict{}, refuse(CodeOwnRequest, "You asked for request #%d, so you cannot approve it: another approver must. (Use Cancel to withdraw it.)", r.ID)
		}
		return Verdict{}, refuse(CodeOwnRequest, "You asked for request #%d: use Cancel to withdraw it.", r.ID)
	}
	if !d.Approvers.Has(d.Actor) {
		return Verdict{}, refuse(CodeNotApprover, "Only the configured approvers can approve or deny request #%d (slack.approvers in the runbook config); your click changed nothing.", r.ID)
	}
	for _, a := range d.Approvals {
		if a.Approver == d.Actor && a.PlanHash == r.PlanHash {
			what := "approved"
			if a.Decision == store.DecisionDeny {
				what = "denied"
			}
			return Verdict{}, refuse(CodeDuplicate, "You already %s request #%d; each approver counts once.", what, r.ID)
		}
	}
	if d.Decision == store.DecisionDeny {
		return Verdict{Count: Count(r, d.Approvals, d.Approvers), Denied: true}, nil
	}
	n := Count(r, d.Approvals, d.Approvers) + 1
	return Verdict{Count: n, Approved: n >= max(d.Policy.Required, 1)}, nil
}

// Count returns how many approvals count for r: approvals of r's current plan
// hash, one per approver, never the requester's, only from approvers (a nil
// approvers set counts every non-requester, for display when it is unknown).
func Count(r store.ActionRequest, approvals []store.Approval, approvers Approvers) int {
	seen := map[string]bool{}
	for _, a := range approvals {
		if a.Decision != store.DecisionApprove || a.PlanHash != r.PlanHash || a.Approver == r.RequestedBy {
			continue
		}
		if approvers != nil && !approvers.Has(a.Approver) {
			continue
		}
		seen[a.Approver] = true
	}
	return len(seen)
}

// CanCancel reports whether user may cancel r: only the requester, and only
// before it runs.
func CanCancel(r store.ActionRequest, user string) error {
	if user != r.RequestedBy {
		return refuse(CodeNotOwner, "Only the requester (<@%s>) can cancel request #%d; approvers can Deny it.", r.RequestedBy, r.ID)
	}
	if r.State != store.RequestPending && r.State != store.RequestApproved {
		return notPending(r)
	}
	return nil
}

func notPending(r store.ActionRequest) *Refusal {
	switch r.State {
	case store.RequestApproved:
		return refuse(CodeNotPending, "Request #%d is already approved and about to run.", r.ID)
	case store.RequestRunning, store.RequestVerifying:
		return refuse(CodeNotPending, "Request #%d is already running.", r.ID)
	case store.RequestSucceeded, store.RequestFailed:
		return refuse(CodeNotPending, "Request #%d was already executed (%s).", r.ID, r.State)
	case store.RequestExpired:
		return refuse(CodeExpired, "Request #%d expired; nothing was done. Run the command again for a new request.", r.ID)
	default: // denied, cancelled
		return refuse(CodeNotPending, "Request #%d was %s; it cannot be approved.", r.ID, r.State)
	}
}

// BusyMessage is the refusal for a target that has a request in flight.
func BusyMessage(b *store.TargetBusyError) *Refusal {
	return refuse(CodeTargetBusy, "%s is busy: request #%d (%s, %s) by <@%s> holds it. Wait for it to finish or ask them to cancel it.",
		b.Target, b.RequestID, b.Kind, b.State, b.By)
}

// kindOf classifies an approvers entry: an e-mail address, a Slack user
// group id (S…) or a user id.
func kindOf(entry string) string {
	switch {
	case strings.Contains(entry, "@"):
		return "email"
	case isGroupID(entry):
		return "group"
	default:
		return "user"
	}
}

func isGroupID(s string) bool {
	if len(s) < 2 || s[0] != 'S' {
		return false
	}
	for _, c := range s[1:] {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
