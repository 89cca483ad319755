package incident

// The live incident header (issue 11, point 4): besides the status and the
// RTO clock it shows the escalations still to come as countdowns, those that
// fired with their time, and the recovery requests in flight. It is refreshed
// when any of these changes (a debounced, coalesced incident.header job) and
// every minute while the incident is open by an incident.header_tick job that
// snoozes itself until the incident resolves; the refreshes of all open
// incidents together stay within Slack's chat.update budget.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// Defaults of the header's refresh pacing (Options.HeaderEvery,
// HeaderMinGap, HeaderBudget).
const (
	// DefaultHeaderEvery is how often an open incident's header is refreshed
	// when nothing changes: its countdowns move by the minute.
	DefaultHeaderEvery = time.Minute
	// DefaultHeaderMinGap is the least time between two updates of one
	// header: a request streaming progress does not cost an update a second.
	DefaultHeaderMinGap = 5 * time.Second
	// DefaultHeaderBudget is how many periodic header updates a minute all
	// open incidents share: Slack allows chat.update about 50 times a minute
	// per workspace (Tier 3), and cards and event-driven refreshes need the rest.
	DefaultHeaderBudget = 30
)

// HeaderTickArgs refreshes an open incident's header periodically: the job
// snoozes itself for the next refresh and ends when the incident resolves.
type HeaderTickArgs struct {
	IncidentID int64 `json:"incident_id"`
}

// Kind implements store.JobArgs and river.JobArgs.
func (HeaderTickArgs) Kind() string { return store.KindIncidentHeaderTick }

// InsertOpts keeps one tick per open incident: a tick inserted while one
// waits or runs is dropped; after a resolution (the tick ended or was
// cancelled) a reopened incident gets a new one.
func (HeaderTickArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateRetryable, rivertype.JobStateScheduled,
	}}}
}

// tickJob is the periodic refresh of incident id, first due after one interval.
func (b *Lifecycle) tickJob(id int64) store.Job {
	return store.Job{Args: HeaderTickArgs{IncidentID: id}, RunAt: b.now().Add(b.lc.headerEvery)}
}

// headerTick is the incident.header_tick worker.
func (b *Lifecycle) headerTick(ctx context.Context, id int64) error {
	inc, err := b.store.Incident(ctx, id)
	if err != nil {
		return err
	}
	if inc.Status == store.IncidentResolved {
		// The resolution queued the final refresh; nothing moves any more.
		return nil
	}
	if err := b.lc.st.InsertJobs(ctx, store.Job{Args: HeaderArgs{IncidentID: id}}); err != nil {
		return err
	}
	return river.JobSnooze(b.tickInterval(ctx))
}

// openLister is implemented by stores that list incidents (*postgres.DB).
type openLister interface {
	ListIncidents(ctx context.Context, openOnly bool) ([]store.Incident, error)
}

// tickInterval is HeaderEvery, stretched when so many incidents are open
// that their periodic refreshes would exceed HeaderBudget updates a minute.
func (b *Lifecycle) tickInterval(ctx context.Context) time.Duration {
	every := b.lc.headerEvery
	l, ok := b.lc.st.(openLister)
	if !ok {
		return every
	}
	open, err := l.ListIncidents(ctx, true)
	if err != nil {
		b.log.WarnContext(ctx, "count open incidents for the header refresh", "err", err)
		return every
	}
	return paced(every, len(open), b.lc.headerBudget)
}

// paced is every, or longer so that open incidents refreshed once each per
// interval make at most budget updates a minute.
func paced(every time.Duration, open, budget int) time.Duration {
	if budget <= 0 || open <= 0 {
		return every
	}
	if need := time.Duration(open) * time.Minute / time.Duration(budget); need > every {
		return need
	}
	return every
}

// headerMaxDelay bounds how long coalescing may put a refresh off: a refresh
// older than this runs even when later ones wait, so a stream of changes (a
// request's progress) still shows.
const headerMaxDelay = 5 * time.Second

// laterJobs is implemented by stores that see the job queue (*postgres.DB).
type laterJobs interface {
	LaterJobs(ctx context.Context, kind string, incidentID, afterID int64) (int, error)
}

// coalesced reports whether header refresh job can be left to a later
// refresh of the same incident (one that waits or runs): a burst of changes
// costs one chat.update. A job waiting longer than headerMaxDelay runs
// anyway, unless anyAge.
func (b *Lifecycle) coalesced(ctx context.Context, job *rivertype.JobRow, anyAge bool) bool {
	l, ok := b.lc.st.(laterJobs)
	if !ok || job == nil || (!anyAge && b.now().Sub(job.CreatedAt) >= headerMaxDelay) {
		return false
	}
	var a HeaderArgs
	if err := json.Unmarshal(job.EncodedArgs, &a); err != nil {
		return false
	}
	n, err := l.LaterJobs(ctx, KindIncidentHeader, a.IncidentID, job.ID)
	if err != nil {
		b.log.WarnContext(ctx, "could not look for later header refreshes; refreshing", "incident", a.IncidentID, "err", err)
		return false
	}
	return n > 0
}

// headerGate spaces the updates of each header by at least a minimum gap.
type headerGate struct {
	mu   sync.Mutex
	last map[int64]time.Time
}

// wait is how long incident id's header must wait before its next update
// (0: now, and the update is counted as made at now).
func (g *headerGate) wait(id int64, now time.Time, gap time.Duration) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[int64]time.Time{}
	}
	if last, ok := g.last[id]; ok {
		if since := now.Sub(last); since >= 0 && since < gap {
			return gap - since
		}
	}
	g.last[id] = now
	return 0
}

// forget drops id (its incident resolved).
func (g *headerGate) forget(id int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.last, id)
}

// pin pins the header ref and says how it went (the value of its mark):
// "done", "failed" (logged; the header is still there, only not pinned) or
// "not supported" by the chat adapter.
func (b *Lifecycle) pin(ctx context.Context, incidentID int64, ref chat.MessageRef) string {
	p, ok := b.chat.(chat.Pinner)
	if !ok {
		return "not supported"
	}
	if err := p.Pin(ctx, ref); err != nil {
		b.log.WarnContext(ctx, "could not pin the incident header", "incident", incidentID, "channel", ref.Channel, "err", err)
		return "failed"
	}
	return "done"
}

// RequestChanged refreshes the header of incident id (a request of it moved
// or progressed); the refresh is debounced and coalesced with others.
func (b *Lifecycle) RequestChanged(ctx context.Context, incidentID int64) error {
	return b.lc.st.InsertJobs(ctx, b.headerJob(incidentID))
}

// RequestChangedIn is RequestChanged for the incident whose channel is
// channel; nothing when the channel is no incident's.
func (b *Lifecycle) RequestChangedIn(ctx context.Context, channel string) error {
	inc, err := b.store.IncidentByChannel(ctx, channel)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if final := finalHeaderMark(inc); final != "" {
		marks, err := b.lc.st.IncidentMarks(ctx, inc.ID)
		if err != nil {
			return err
		}
		if _, done := marks[final]; done {
			return nil // resolved and its final header out: no refresh
		}
	}
	return b.RequestChanged(ctx, inc.ID)
}

// escalationFields are the header's lines about the service's escalations:
// those still to come as countdowns ("Platform Lead in 14 min") while the
// incident is open, and those that fired with their time. marks hold the
// fired ones (escalation.N = the RFC 3339 time it fired).
func escalationFields(svc *runbook.Service, inc store.Incident, marks map[string]string, now time.Time) []chat.Field {
	if svc == nil {
		return nil
	}
	var coming, fired []string
	for i, e := range svc.Escalation {
		if v, ok := marks[escalationMark(i)]; ok {
			at := "fired"
			if t, err := time.Parse(time.RFC3339, v); err == nil {
				at = "at " + t.UTC().Format("15:04 UTC")
			}
			fired = append(fired, e.Role+" "+at)
			continue
		}
		if e.After.Duration <= 0 || inc.Status == store.IncidentResolved {
			continue
		}
		coming = append(coming, e.Role+" "+countdown(inc.OpenedAt.Add(e.After.Duration).Sub(now)))
	}
	var out []chat.Field
	if len(coming) > 0 {
		out = append(out, chat.Field{Label: "Escalations to come", Value: strings.Join(coming, " · ")})
	}
	if len(fired) > 0 {
		out = append(out, chat.Field{Label: "Escalated", Value: strings.Join(fired, " · ")})
	}
	return out
}

// countdown is the time left until a timer, in whole minutes rounded up
// (the header moves by the minute): "in 14 min", "due now".
func countdown(left time.Duration) string {
	if left <= 0 {
		return "due now"
	}
	mins := int((left + time.Minute - 1) / time.Minute)
	if mins >= 120 && mins%60 == 0 {
		return fmt.Sprintf("in %d h", mins/60)
	}
	return fmt.Sprintf("in %d min", mins)
}

// requestLine is what the header shows of one request.
type requestLine struct {
	ID        int64
	Kind      string
	Target    string
	State     store.RequestState
	Step      string // the step running (running only)
	StepIndex int    // 1-based; 0 when unknown
	Steps     int    // steps in the plan; 0 when unknown
}

// inFlight reports whether the header shows requests in state s: those still
// moving, and failed ones (someone has to act on them).
func inFlight(s store.RequestState) bool {
	switch s {
	case store.RequestPending, store.RequestApproved, store.RequestRunning, store.RequestVerifying, store.RequestFailed:
		return true
	}
	return false
}

// requestFields is the header's "Requests" line: each request in flight with
// its state.
func requestFields(lines []requestLine) []chat.Field {
	if len(lines) == 0 {
		return nil
	}
	parts := make([]string, 0, len(lines))
	for _, l := range lines {
		what := l.Kind
		if t := shortTarget(l.Target); t != "" {
			what += " " + t
		}
		parts = append(parts, fmt.Sprintf("#%d %s: %s", l.ID, what, requestState(l)))
	}
	return []chat.Field{{Label: "Requests", Value: strings.Join(parts, "\n")}}
}

// shortTarget is the readable end of a request target ("db:lstm-pfd/lstm_pfd" → "lstm_pfd").
func shortTarget(t string) string {
	if i := strings.LastIndexAny(t, ":/"); i >= 0 {
		return t[i+1:]
	}
	return t
}

func requestState(l requestLine) string {
	switch l.State {
	case store.RequestPending:
		return "pending approval"
	case store.RequestApproved:
		return "approved, starting"
	case store.RequestRunning:
		switch {
		case l.StepIndex > 0 && l.Steps > 0:
			return fmt.Sprintf("running step %d of %d (%s)", l.StepIndex, l.Steps, l.Step)
		case l.Steps > 0:
			return fmt.Sprintf("running (%d steps)", l.Steps)
		}
		return "running"
	case store.RequestVerifying:
		return "verifying"
	case store.RequestFailed:
		return "failed"
	}
	return string(l.State)
}

// requestLines are the requests of inc the header shows, with the running
// ones' current step from their journal (step.started audit rows).
func (b *Lifecycle) requestLines(ctx context.Context, inc store.Incident) []requestLine {
	rs, ok := b.lc.st.(incidentRequests)
	if !ok {
		return nil
	}
	reqs, err := rs.RequestsForIncident(ctx, inc.ID)
	if err != nil {
		b.log.WarnContext(ctx, "read requests for the header", "incident", inc.ID, "err", err)
		return nil
	}
	var out []requestLine
	for _, r := range reqs {
		if !inFlight(r.State) {
			continue
		}
		l := requestLine{ID: r.ID, Kind: r.Kind, Target: r.Target, State: r.State}
		var plan struct {
			Steps []struct {
				Name string `json:"name"`
			} `json:"steps"`
		}
		if json.Unmarshal(r.Plan, &plan) == nil {
			l.Steps = len(plan.Steps)
		}
		if r.State == store.RequestRunning {
			l.Step = b.currentStep(ctx, r.ID)
			for i, s := range plan.Steps {
				if s.Name == l.Step {
					l.StepIndex = i + 1
				}
			}
		}
		out = append(out, l)
	}
	return out
}

// currentStep is the step request id last started ("" when none or unreadable).
func (b *Lifecycle) currentStep(ctx context.Context, id int64) string {
	var (
		step  string
		after int64
	)
	for {
		evs, err := b.store.AuditEvents(ctx, store.AuditFilter{RequestID: &id, AfterSeq: after, Limit: 1000})
		if err != nil {
			b.log.WarnContext(ctx, "read request steps for the header", "request", id, "err", err)
			return step
		}
		for _, ev := range evs {
			if ev.Kind != store.AuditStepStarted {
				continue
			}
			var d struct {
				Step string `json:"step"`
			}
			if json.Unmarshal(ev.Data, &d) == nil && d.Step != "" {
				step = d.Step
			}
		}
		if len(evs) < 1000 {
			return step
		}
		after = evs[len(evs)-1].Seq
	}
}
