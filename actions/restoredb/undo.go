package restoredb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/store"
)

// History reads earlier requests and their journals (the bot's store
// implements it), so rollback finds the restore it undoes.
type History interface {
	// Request returns request id, or an error wrapping store.ErrNotFound.
	Request(ctx context.Context, id int64) (store.ActionRequest, error)
	// RequestsOfKind returns up to limit requests of kind for service, newest first.
	RequestsOfKind(ctx context.Context, service, kind string, limit int) ([]store.ActionRequest, error)
	// AuditEvents returns the audit rows matching f in order.
	AuditEvents(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error)
}

// historyDepth is how many recent restore-db (and rollback) requests of a
// service rollback looks through.
const historyDepth = 50

// swapRecord is what a request's journal says about its swap step.
type swapRecord struct {
	// Happened: the swap step finished, or started and never finished (a
	// crash mid-swap: the catalog tells whether the rename committed). A swap
	// whose last attempt failed renamed nothing (one transaction; the undo
	// put everything back).
	Happened bool
	Finished bool
	At       time.Time // when it finished (or last started)
	Result   swapResult
	Err      string // the failed attempt's error
	// Replicas are the writers' replica counts the restore recorded when it
	// scaled them down (by kind/name): what they ran before it.
	Replicas map[string]int32
}

// readSwap reads request id's swap step from its audit rows; prefix is
// the journal prefix of a playbook step ("5.") or "".
func readSwap(ctx context.Context, h History, id int64, prefix string) (swapRecord, error) {
	var rec swapRecord
	last := ""
	after := int64(0)
	for {
		evs, err := h.AuditEvents(ctx, store.AuditFilter{RequestID: &id, AfterSeq: after, Limit: 1000})
		if err != nil {
			return swapRecord{}, fmt.Errorf("read the journal of request %d: %w", id, err)
		}
		for _, ev := range evs {
			if ev.Kind != actions.AuditStepStarted && ev.Kind != actions.AuditStepFinished {
				continue
			}
			var d actions.StepRecord
			if json.Unmarshal(ev.Data, &d) != nil {
				continue
			}
			step, ok := strings.CutPrefix(d.Step, prefix)
			if !ok || (prefix == "" && stepPrefixed(d.Step)) {
				continue
			}
			d.Step = step
			if w, ok := strings.CutPrefix(d.Step, StepScaleDown+"/"); ok && ev.Kind == actions.AuditStepFinished && d.Error == "" {
				var n int32
				if json.Unmarshal(d.Result, &n) == nil && n > 0 {
					if rec.Replicas == nil {
						rec.Replicas = map[string]int32{}
					}
					rec.Replicas[w] = n
				}
				continue
			}
			if d.Step != StepSwap {
				continue
			}
			switch {
			case ev.Kind == actions.AuditStepStarted:
				last, rec.At = "started", ev.At
			case d.Error == "":
				last, rec.At, rec.Finished = "finished", ev.At, true
				_ = json.Unmarshal(d.Result, &rec.Result)
			default:
				last, rec.Err = "failed", d.Error
			}
		}
		if len(evs) < 1000 {
			break
		}
		after = evs[len(evs)-1].Seq
	}
	rec.Happened = rec.Finished || last == "started"
	return rec, nil
}

// stepPrefixed reports whether a journal step name carries a playbook
// step's prefix ("5.swap").
func stepPrefixed(step string) bool {
	n, _, ok := strings.Cut(step, ".")
	if !ok || n == "" {
		return false
	}
	_, err := strconv.Atoi(n)
	return err == nil
}

// undoable is a restore-db rollback can undo: a restore-db request, or a
// restore-db step (Step > 0) of playbook request ID.
type undoable struct {
	ID       int64
	Step     int
	Playbook string
	State    store.RequestState
	Spec     Spec
	Swap     swapRecord
}

// name names the restore: "request #42" or "restore-db step 5 of playbook
// cluster-recovery, request #42".
func (u undoable) name() string { return restoreName(u.ID, u.Step, u.Playbook) }

func restoreName(id int64, step int, playbook string) string {
	if step > 0 {
		return fmt.Sprintf("restore-db step %d of playbook %s, request #%d", step, playbook, id)
	}
	return fmt.Sprintf("request #%d", id)
}

// describe names the request on the rollback's card: id, backup, when.
func (u undoable) describe() string {
	s := fmt.Sprintf("request #%d: restore-db from %s", u.ID, u.backup())
	if u.Step > 0 {
		s = fmt.Sprintf("%s: from %s", u.name(), u.backup())
	}
	if !u.Swap.At.IsZero() {
		s += ", swapped in " + u.Swap.At.UTC().Format("2006-01-02 15:04:05 MST")
	}
	if !u.Swap.Finished {
		s += " (interrupted mid-swap)"
	}
	return s + " (" + string(u.State) + ")"
}

func (u undoable) backup() string {
	if u.Spec.Backup == nil {
		return "an unknown backup"
	}
	return storage.Describe(*u.Spec.Backup)
}

// errSkip marks a restore that cannot be rolled back; its message says why.
// other: it is not a restore of the database asked about at all.
type errSkip struct {
	msg   string
	other bool
}

func (e *errSkip) Error() string { return e.msg }

func skipf(format string, a ...any) error { return &errSkip{msg: fmt.Sprintf(format, a...)} }

// kindPlaybook is the kind of the playbook action's requests
// (actions/playbook.Kind): a playbook's restore-db steps are restores that
// rollback undoes like restore-db requests.
const kindPlaybook = "playbook"

// candidate is one restore-db a request ran: the request itself (Step 0)
// or a restore-db step of a playbook request.
type candidate struct {
	req      store.ActionRequest
	step     int
	playbook string
	plan     actions.Plan
}

func (c candidate) name() string { return restoreName(c.req.ID, c.step, c.playbook) }

// prefix is the journal prefix of the candidate's steps ("5." or "").
func (c candidate) prefix() string {
	if c.step == 0 {
		return ""
	}
	return strconv.Itoa(c.step) + "."
}

// playbookSpec is the part of a playbook plan's spec rollback reads (the
// playbook action's Spec, which this package does not import).
type playbookSpec struct {
	Playbook string `json:"playbook"`
	Drill    bool   `json:"drill"`
	Steps    []struct {
		Index  int           `json:"index"`
		Done   bool          `json:"done"`
		Skip   string        `json:"skip"`
		Action string        `json:"action"`
		Plan   *actions.Plan `json:"plan"`
	} `json:"steps"`
}

// restoresOf lists the restore-db runs of req, the last one first: req
// itself when it is a restore-db; the restore-db steps it ran when it is a
// playbook (a drill swaps nothing; a step done by an earlier request is
// listed under that one).
func restoresOf(req store.ActionRequest) ([]candidate, error) {
	var plan actions.Plan
	if err := json.Unmarshal(req.Plan, &plan); err != nil {
		return nil, fmt.Errorf("decode the plan of request %d: %w", req.ID, err)
	}
	switch req.Kind {
	case KindRestore:
		return []candidate{{req: req, plan: plan}}, nil
	case kindPlaybook:
		var ps playbookSpec
		if err := json.Unmarshal(plan.Spec, &ps); err != nil {
			return nil, fmt.Errorf("decode the playbook of request %d: %w", req.ID, err)
		}
		if ps.Drill {
			return nil, nil
		}
		var out []candidate
		for i := len(ps.Steps) - 1; i >= 0; i-- {
			st := ps.Steps[i]
			if st.Action != KindRestore || st.Plan == nil || st.Done || st.Skip != "" || st.Index <= 0 {
				continue
			}
			out = append(out, candidate{req: req, step: st.Index, playbook: ps.Playbook, plan: *st.Plan})
		}
		return out, nil
	}
	return nil, nil
}

// undoableRestore decides whether restore c can be rolled back into
// database live of target t: it must be a restore-db of that database that
// has ended and whose swap happened (its journal says so: whatever its final
// state, e.g. failed because checks failed on live), and the database it kept
// must still exist (it is gone once rolled back). A restore that does not
// qualify is an *errSkip saying why.
func (b *base) undoableRestore(ctx context.Context, conn *pgx.Conn, c candidate, svc, dbName string, t *target) (undoable, error) {
	req := c.req
	rs, err := SpecOf(c.plan)
	if err != nil {
		return undoable{}, err
	}
	name := c.name()
	if rs.Service != svc || rs.Database != dbName || rs.Live != t.Live || rs.Server != t.Server {
		return undoable{}, &errSkip{other: true, msg: fmt.Sprintf("%s restored %s of %s (%s/%s), not %s of %s (%s/%s)",
			name, rs.Database, rs.Service, rs.Server, rs.Live, dbName, svc, t.Server, t.Live)}
	}
	u := undoable{ID: req.ID, Step: c.step, Playbook: c.playbook, State: req.State, Spec: rs}
	switch req.State {
	case store.RequestPending:
		return undoable{}, skipf("%s has not run yet (it is waiting for approval): nothing was swapped", name)
	case store.RequestApproved, store.RequestRunning, store.RequestVerifying:
		return undoable{}, actions.Refusef("%s is still %s: roll it back once it has finished", name, req.State)
	case store.RequestDenied, store.RequestExpired, store.RequestCancelled:
		return undoable{}, skipf("%s never ran (it was %s): nothing was swapped", name, req.State)
	}
	if b.opts.History == nil {
		return undoable{}, errors.New("rollback: no request history")
	}
	if u.Swap, err = readSwap(ctx, b.opts.History, req.ID, c.prefix()); err != nil {
		return undoable{}, err
	}
	if !u.Swap.Happened {
		why := "it stopped before the swap"
		if u.Swap.Err != "" {
			why = "its swap did not go through"
		}
		return undoable{}, skipf("%s (%s) %s: the live database %s was never replaced, so there is nothing to roll back", name, req.State, why, t.Live)
	}
	if u.Swap.Finished && u.Swap.Result.Outgoing == "" && u.Swap.Result.Settled != "" {
		return undoable{}, skipf("%s created %s (there was no live database before it): there is no earlier database to roll back to", name, t.Live)
	}
	kept, err := dbExists(ctx, conn, rs.Outgoing)
	if err != nil {
		return undoable{}, err
	}
	if !kept {
		if by := b.rolledBackBy(ctx, svc, req.ID, c.step); by != 0 {
			return undoable{}, skipf("%s was already rolled back by request #%d", name, by)
		}
		if !u.Swap.Finished {
			return undoable{}, skipf("%s was interrupted before its swap committed: the live database %s was never replaced", name, t.Live)
		}
		return undoable{}, skipf("the database %s kept (%s) no longer exists on %s: it was rolled back or dropped outside drbot", name, rs.Outgoing, t.Server)
	}
	return u, nil
}

// rolledBackBy returns the rollback request that swapped the kept database
// of restore id (step of playbook id when step > 0) back in, or 0.
func (b *base) rolledBackBy(ctx context.Context, svc string, id int64, step int) int64 {
	rbs, err := b.opts.History.RequestsOfKind(ctx, svc, KindRollback, historyDepth)
	if err != nil {
		b.opts.Logger.WarnContext(ctx, "rollback: list earlier rollbacks", "service", svc, "err", err)
		return 0
	}
	for _, r := range rbs {
		var plan actions.Plan
		if json.Unmarshal(r.Plan, &plan) != nil {
			continue
		}
		s, err := SpecOf(plan)
		if err != nil || s.Restore != id || s.RestoreStep != step {
			continue
		}
		if sw, err := readSwap(ctx, b.opts.History, r.ID, ""); err == nil && sw.Happened {
			return r.ID
		}
	}
	return 0
}

// namedRestore is the restore the user named by request number (as "42" or
// "#42"): a restore-db request, or a playbook request's newest restore-db
// step of the database.
func (b *base) namedRestore(ctx context.Context, conn *pgx.Conn, arg, svc, dbName string, t *target) (undoable, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(arg), "#"), 10, 64)
	if err != nil || id <= 0 {
		return undoable{}, actions.Refusef("%q is not a request number (the number on the restore-db or playbook request's card, e.g. 42)", arg)
	}
	if b.opts.History == nil {
		return undoable{}, actions.Refusef("this drbot cannot read earlier requests: run `/dr rollback %s` without a request number", svc)
	}
	req, err := b.opts.History.Request(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return undoable{}, actions.Refusef("there is no request #%d", id)
	}
	if err != nil {
		return undoable{}, fmt.Errorf("read request %d: %w", id, err)
	}
	if req.Kind != KindRestore && req.Kind != kindPlaybook {
		return undoable{}, actions.Refusef("request #%d is a %s, not a restore-db: only a restore can be rolled back", req.ID, req.Kind)
	}
	cands, err := restoresOf(req)
	if err != nil {
		return undoable{}, err
	}
	if len(cands) == 0 {
		return undoable{}, actions.Refusef("request #%d is a playbook that ran no restore-db step: there is nothing of it to roll back", req.ID)
	}
	var first *errSkip
	for _, c := range cands {
		u, err := b.undoableRestore(ctx, conn, c, svc, dbName, t)
		var skip *errSkip
		if errors.As(err, &skip) {
			if first == nil || (first.other && !skip.other) {
				first = skip
			}
			continue
		}
		return u, err
	}
	return undoable{}, actions.Refusef("%s", first.msg)
}

// latestRestore is the newest restore-db of the database (a request, or a
// playbook's step) whose swap happened and that was not rolled back yet.
func (b *base) latestRestore(ctx context.Context, conn *pgx.Conn, svc, dbName string, t *target) (undoable, error) {
	reqs, err := b.opts.History.RequestsOfKind(ctx, svc, KindRestore, historyDepth)
	if err != nil {
		return undoable{}, fmt.Errorf("rollback %s: %w", dbName, err)
	}
	pbs, err := b.opts.History.RequestsOfKind(ctx, svc, kindPlaybook, historyDepth)
	if err != nil {
		return undoable{}, fmt.Errorf("rollback %s: %w", dbName, err)
	}
	reqs = append(reqs, pbs...)
	sort.SliceStable(reqs, func(i, k int) bool { return reqs[i].ID > reqs[k].ID })
	var newest string
	for _, req := range reqs {
		cands, err := restoresOf(req)
		if err != nil {
			return undoable{}, err
		}
		for _, c := range cands {
			u, err := b.undoableRestore(ctx, conn, c, svc, dbName, t)
			var skip *errSkip
			if errors.As(err, &skip) {
				if newest == "" && !skip.other {
					newest = skip.msg
				}
				continue
			}
			return u, err
		}
	}
	msg := fmt.Sprintf("nothing to roll back: no restore-db of %s (request or playbook step) replaced %s on %s that has not been rolled back already", svc, t.Live, t.Server)
	if newest != "" {
		msg += " (the newest: " + newest + ")"
	}
	return undoable{}, actions.Refusef("%s", msg)
}
