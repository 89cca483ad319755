package incident

// The durable incident lifecycle: webhook deliveries are recorded in one
// transaction (delivery id, incident row, audit row, follow-up jobs) and
// everything that talks to Slack or PagerDuty runs afterwards as River jobs,
// which survive restarts and run once across replicas.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// PagerDutyAPI is what the lifecycle asks of PagerDuty's REST API.
// *pagerduty.API implements it.
type PagerDutyAPI interface {
	// OnCallEmails returns the e-mail addresses of an escalation policy's on-calls.
	OnCallEmails(ctx context.Context, escalationPolicyID string) ([]string, error)
	AddNote(ctx context.Context, incidentID, content string) error
	Acknowledge(ctx context.Context, incidentID string) error
	Resolve(ctx context.Context, incidentID string) error
}

// Store is the store the incident lifecycle needs: incidents, the audit log,
// incident transactions and jobs. *postgres.DB implements it.
type Store interface {
	store.Incidents
	store.Audit
	store.Lifecycle
	store.JobQueue
}

// Options configures a Lifecycle.
type Options struct {
	Config *runbook.Config
	Store  Store
	// Chat posts in channels and creates them; only an adapter renders.
	Chat chat.Adapter
	// Logger receives internal failures; nil = slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Metrics registers the lifecycle's collectors; nil = not registered.
	Metrics prometheus.Registerer
	// PagerDuty is the REST API client; nil = no on-call invites, notes, acks
	// or resolves through PagerDuty (the shell, or no PAGERDUTY_API_TOKEN).
	PagerDuty PagerDutyAPI
	// Cards moves the request cards of an incident that moves to a private
	// channel (commands.RequestCards, wired by cmd/drbot); nil = the cards
	// stay where they are (logged: only the shell and tests lack it).
	Cards chat.CardMover
	// HeaderDebounce delays header refreshes so a burst of events costs one
	// chat.update; default 1s.
	HeaderDebounce time.Duration
	// RTOWarnings are the percentages of the RTO at which a warning is
	// posted; default 50, 75, 90, 100.
	RTOWarnings []int
	// HeaderEvery is how often an open incident's header is refreshed when
	// nothing changes (its countdowns); default DefaultHeaderEvery.
	HeaderEvery time.Duration
	// HeaderMinGap is the least time between two updates of one header;
	// default DefaultHeaderMinGap.
	HeaderMinGap time.Duration
	// HeaderBudget is how many periodic header updates a minute all open
	// incidents share; default DefaultHeaderBudget.
	HeaderBudget int
}

// DefaultRTOWarnings are the RTO percentages that get a warning.
var DefaultRTOWarnings = []int{50, 75, 90, 100}

type lifecycle struct {
	st             Store
	pd             PagerDutyAPI
	headerDebounce time.Duration
	rtoWarnings    []int
	headerEvery    time.Duration
	headerMinGap   time.Duration
	headerBudget   int
	gate           headerGate
}

// Lifecycle is the durable incident lifecycle: incident events are recorded
// (and deduplicated) in PostgreSQL and the channel, invites, header,
// checklist, timers and PagerDuty notes run as jobs (register their workers
// with RegisterWorkers). It also runs the incident commands
// (commands.IncidentOps) and the checklist's clicks (ClickChecklist).
type Lifecycle struct {
	cfg     *runbook.Config
	store   Store
	chat    chat.Adapter
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	lc      *lifecycle
	cards   chat.CardMover
}

// New returns a Lifecycle. It panics when a required option is missing or the
// metrics cannot be registered: both are wiring bugs.
func New(opts Options) *Lifecycle {
	if opts.Config == nil || opts.Store == nil || opts.Chat == nil {
		panic("incident.New: Config, Store and Chat are required")
	}
	lc := &lifecycle{st: opts.Store, pd: opts.PagerDuty, headerDebounce: opts.HeaderDebounce, rtoWarnings: opts.RTOWarnings}
	if lc.headerDebounce <= 0 {
		lc.headerDebounce = time.Second
	}
	if len(lc.rtoWarnings) == 0 {
		lc.rtoWarnings = DefaultRTOWarnings
	}
	lc.headerEvery, lc.headerMinGap, lc.headerBudget = opts.HeaderEvery, opts.HeaderMinGap, opts.HeaderBudget
	if lc.headerEvery <= 0 {
		lc.headerEvery = DefaultHeaderEvery
	}
	if lc.headerMinGap <= 0 {
		lc.headerMinGap = DefaultHeaderMinGap
	}
	if lc.headerBudget <= 0 {
		lc.headerBudget = DefaultHeaderBudget
	}
	b := &Lifecycle{
		cfg:     opts.Config,
		store:   opts.Store,
		chat:    opts.Chat,
		log:     opts.Logger,
		now:     opts.Now,
		metrics: newMetrics(),
		lc:      lc,
		cards:   opts.Cards,
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.now == nil {
		b.now = time.Now
	}
	if opts.Metrics != nil {
		if err := b.metrics.register(opts.Metrics); err != nil {
			panic(fmt.Sprintf("incident.New: %v", err))
		}
	}
	return b
}

// Job kinds of the incident lifecycle.
const (
	KindIncidentSetup    = store.KindIncidentSetup
	KindIncidentEscalate = store.KindIncidentEscalate
	KindIncidentRTO      = store.KindIncidentRTO
	KindIncidentHeader   = store.KindIncidentHeader
	KindIncidentPost     = store.KindIncidentPost
	KindIncidentResolved = store.KindIncidentResolved
	KindIncidentNote     = store.KindIncidentNote
	KindIncidentEvent    = store.KindIncidentEvent
)

// timerKinds are cancelled when an incident is resolved.
var timerKinds = []string{KindIncidentEscalate, KindIncidentRTO, store.KindIncidentHeaderTick}

// uniqueForever dedupes by args across every state but cancelled and
// discarded: a cancelled timer can be armed again.
func uniqueForever() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// SetupArgs sets up a new incident's channel.
type SetupArgs struct {
	IncidentID int64 `json:"incident_id"`
}

// Kind implements store.JobArgs and river.JobArgs.
func (SetupArgs) Kind() string { return KindIncidentSetup }

// InsertOpts makes one setup job per incident, ever.
func (SetupArgs) InsertOpts() river.InsertOpts { return uniqueForever() }

// EscalateArgs fires the service's escalation number Index for an incident.
type EscalateArgs struct {
	IncidentID int64 `json:"incident_id"`
	Index      int   `json:"index"`
}

// Kind implements store.JobArgs and river.JobArgs.
func (EscalateArgs) Kind() string { return KindIncidentEscalate }

// InsertOpts makes one armed timer per escalation and incident.
func (EscalateArgs) InsertOpts() river.InsertOpts { return uniqueForever() }

// RTOArgs posts the warning at Percent of the incident's RTO.
type RTOArgs struct {
	IncidentID int64 `json:"incident_id"`
	Percent    int   `json:"percent"`
}

// Kind implements store.JobArgs and river.JobArgs.
func (RTOArgs) Kind() string { return KindIncidentRTO }

// InsertOpts makes one armed timer per percentage and incident.
func (RTOArgs) InsertOpts() river.InsertOpts { return uniqueForever() }

// HeaderArgs refreshes an incident's header message with chat.update. Every
// change inserts one; they coalesce in the worker (see Lifecycle.coalesced),
// not by River's uniqueness, which would also drop a refresh asked while
// another runs after reading the state.
type HeaderArgs struct {
	IncidentID int64 `json:"incident_id"`
}

// Kind implements store.JobArgs and river.JobArgs.
func (HeaderArgs) Kind() string { return KindIncidentHeader }

// PostArgs posts a message, retried until it goes out. With IncidentID set
// and Channel empty it goes to the incident's channel once that exists.
type PostArgs struct {
	IncidentID int64           `json:"incident_id,omitempty"`
	Channel    string          `json:"channel,omitempty"`
	User       string          `json:"user,omitempty"` // ephemeral to this user
	Message    json.RawMessage `json:"message"`
}

// Kind implements store.JobArgs and river.JobArgs.
func (PostArgs) Kind() string { return KindIncidentPost }

// ResolvedArgs posts the resolution summary and the post-incident checklist.
type ResolvedArgs struct {
	IncidentID int64 `json:"incident_id"`
	// ResolvedAt tells resolutions of a reopened incident apart.
	ResolvedAt time.Time `json:"resolved_at"`
}

// Kind implements store.JobArgs and river.JobArgs.
func (ResolvedArgs) Kind() string { return KindIncidentResolved }

// InsertOpts makes one summary per resolution.
func (ResolvedArgs) InsertOpts() river.InsertOpts { return uniqueForever() }

// EventArgs applies one recorded incident event.
type EventArgs struct {
	Event Event `json:"event"`
}

// Kind implements store.JobArgs and river.JobArgs.
func (EventArgs) Kind() string { return KindIncidentEvent }

// InsertOpts puts events on their own queue.
func (EventArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: store.QueueIncidentEvents}
}

// NoteArgs adds a note to the incident in PagerDuty; Key marks it done.
type NoteArgs struct {
	IncidentID int64  `json:"incident_id"`
	Key        string `json:"key"`
	Content    string `json:"content"`
}

// Kind implements store.JobArgs and river.JobArgs.
func (NoteArgs) Kind() string { return KindIncidentNote }

// InsertOpts makes one note job per key.
func (NoteArgs) InsertOpts() river.InsertOpts { return uniqueForever() }

// jobWorker adapts a function to river.Worker.
type jobWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	fn func(ctx context.Context, job *river.Job[T]) error
}

func (w *jobWorker[T]) Work(ctx context.Context, job *river.Job[T]) error { return w.fn(ctx, job) }

// Timeout bounds one run; Slack pacing and PagerDuty calls fit easily.
func (w *jobWorker[T]) Timeout(*river.Job[T]) time.Duration { return 2 * time.Minute }

// RegisterWorkers adds the lifecycle's workers to w.
func (b *Lifecycle) RegisterWorkers(w *river.Workers) {
	river.AddWorker(w, &jobWorker[SetupArgs]{fn: func(ctx context.Context, j *river.Job[SetupArgs]) error {
		return b.setupIncident(ctx, j.Args.IncidentID)
	}})
	river.AddWorker(w, &jobWorker[EscalateArgs]{fn: func(ctx context.Context, j *river.Job[EscalateArgs]) error {
		return b.fireEscalation(ctx, j.Args.IncidentID, j.Args.Index)
	}})
	river.AddWorker(w, &jobWorker[RTOArgs]{fn: func(ctx context.Context, j *river.Job[RTOArgs]) error {
		return b.fireRTOWarning(ctx, j.Args.IncidentID, j.Args.Percent)
	}})
	river.AddWorker(w, &jobWorker[HeaderArgs]{fn: func(ctx context.Context, j *river.Job[HeaderArgs]) error {
		if b.coalesced(ctx, j.JobRow, false) {
			return nil
		}
		return b.refreshHeader(ctx, j.Args.IncidentID, j.JobRow)
	}})
	river.AddWorker(w, &jobWorker[HeaderTickArgs]{fn: func(ctx context.Context, j *river.Job[HeaderTickArgs]) error {
		return b.headerTick(ctx, j.Args.IncidentID)
	}})
	river.AddWorker(w, &jobWorker[PostArgs]{fn: func(ctx context.Context, j *river.Job[PostArgs]) error {
		return b.runPost(ctx, j.Args)
	}})
	river.AddWorker(w, &jobWorker[EventArgs]{fn: func(ctx context.Context, j *river.Job[EventArgs]) error {
		return b.applyEventJob(ctx, j.Args.Event)
	}})
	river.AddWorker(w, &jobWorker[NoteArgs]{fn: func(ctx context.Context, j *river.Job[NoteArgs]) error {
		return b.addNote(ctx, j.Args)
	}})
	river.AddWorker(w, &jobWorker[ResolvedArgs]{fn: func(ctx context.Context, j *river.Job[ResolvedArgs]) error {
		return b.postResolution(ctx, j.Args.IncidentID, j.Args.ResolvedAt)
	}})
	river.AddWorker(w, &jobWorker[SecureArgs]{fn: func(ctx context.Context, j *river.Job[SecureArgs]) error {
		return b.secureIncident(ctx, j.Args)
	}})
}

// markEvent is an audit row that records mark key=value for an incident.
func markEvent(incidentID int64, actor, kind, key, value string, extra map[string]any) (store.AuditEvent, error) {
	data := map[string]any{store.MarkKey: key, store.MarkValue: value}
	for k, v := range extra {
		data[k] = v
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("encode mark %s: %w", key, err)
	}
	return store.AuditEvent{IncidentID: &incidentID, Actor: actor, Kind: kind, Data: raw}, nil
}

// setMark records a mark in its own transaction.
func (b *Lifecycle) setMark(ctx context.Context, incidentID int64, kind, key, value string, extra map[string]any) error {
	ev, err := markEvent(incidentID, "drbot", kind, key, value, extra)
	if err != nil {
		return err
	}
	return b.lc.st.InIncidentTx(ctx, func(tx store.IncidentTx) error { return tx.AppendAudit(ctx, ev) })
}

// step runs fn once per incident and key: done steps (marked) are skipped, so
// a job that failed half-way resumes where it stopped. fn's value is the
// mark's value; kind is the audit kind of the mark.
func (b *Lifecycle) step(ctx context.Context, incidentID int64, marks map[string]string, key, kind string, fn func() (string, error)) error {
	if _, done := marks[key]; done {
		return nil
	}
	v, err := fn()
	if err != nil {
		return err
	}
	if v == "" {
		v = "done"
	}
	if err := b.setMark(ctx, incidentID, kind, key, v, nil); err != nil {
		return err
	}
	marks[key] = v
	return nil
}

// errSkip ends a job without doing anything (the incident moved on).
var errSkip = errors.New("skip")

// fire records that timer key fired, in one transaction with the incident
// locked: it refuses (errSkip) when the incident is resolved and the timer had
// not fired yet, so a resolve and a timer racing each other end with either
// the timer cancelled or fired, never both. A timer that fired before (its job
// is re-run after a crash) is fired again so that its unfinished steps resume.
func (b *Lifecycle) fire(ctx context.Context, incidentID int64, key, kind string, data map[string]any) (store.Incident, map[string]string, error) {
	var (
		inc   store.Incident
		marks map[string]string
	)
	err := b.lc.st.InIncidentTx(ctx, func(tx store.IncidentTx) error {
		var err error
		inc, err = tx.LockIncident(ctx, incidentID)
		if err != nil {
			return err
		}
		marks, err = tx.Marks(ctx, incidentID)
		if err != nil {
			return err
		}
		if _, fired := marks[key]; fired {
			return nil
		}
		if inc.Status == store.IncidentResolved {
			return errSkip
		}
		ev, err := markEvent(incidentID, "drbot", kind, key, b.now().UTC().Format(time.RFC3339), data)
		if err != nil {
			return err
		}
		marks[key] = "fired"
		return tx.AppendAudit(ctx, ev)
	})
	return inc, marks, err
}

// headerJob is the debounced header refresh for incident id.
func (b *Lifecycle) headerJob(id int64) store.Job {
	return store.Job{Args: HeaderArgs{IncidentID: id}, RunAt: b.now().Add(b.lc.headerDebounce)}
}
