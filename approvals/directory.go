package approvals

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Directory resolves approvers entries to chat user ids. Either function may
// be nil: entries of that kind then resolve to nobody (and are logged).
type Directory struct {
	// LookupByEmail returns the user id of an e-mail address, or "" and no
	// error when nobody has it.
	LookupByEmail func(ctx context.Context, email string) (string, error)
	// GroupMembers returns the user ids of a user group (Slack S… ids).
	GroupMembers func(ctx context.Context, group string) ([]string, error)
}

// DefaultResolveTTL is how long a resolved approvers set is reused.
const DefaultResolveTTL = 5 * time.Minute

// Resolver resolves lists of people (approvers, requesters, responders:
// user ids, group ids, e-mails) into sets of user ids and caches each list's
// set.
type Resolver struct {
	dir Directory
	ttl time.Duration
	now func() time.Time
	log *slog.Logger

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	set     Approvers
	expires time.Time
}

// NewResolver returns a resolver caching results for ttl (0: DefaultResolveTTL).
func NewResolver(dir Directory, ttl time.Duration, now func() time.Time, log *slog.Logger) *Resolver {
	if ttl <= 0 {
		ttl = DefaultResolveTTL
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Resolver{dir: dir, ttl: ttl, now: now, log: log, cache: map[string]cached{}}
}

// Resolve returns the user ids the entries name. Entries that cannot be
// resolved (unknown e-mail, no directory) are skipped and logged; an error
// from the chat platform fails the call and is not cached.
func (r *Resolver) Resolve(ctx context.Context, entries []string) (Approvers, error) {
	key := strings.Join(entries, "\x00")
	r.mu.Lock()
	if c, ok := r.cache[key]; ok && r.now().Before(c.expires) {
		r.mu.Unlock()
		return c.set, nil
	}
	r.mu.Unlock()

	set := Approvers{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		switch kindOf(e) {
		case "user":
			set[e] = true
		case "email":
			if r.dir.LookupByEmail == nil {
				r.log.WarnContext(ctx, "approver e-mail cannot be resolved: no directory", "entry", e)
				continue
			}
			id, err := r.dir.LookupByEmail(ctx, e)
			if err != nil {
				return nil, fmt.Errorf("resolve approver %s: %w", e, err)
			}
			if id == "" {
				r.log.WarnContext(ctx, "approver e-mail matches no chat user", "entry", e)
				continue
			}
			set[id] = true
		case "group":
			if r.dir.GroupMembers == nil {
				r.log.WarnContext(ctx, "approver group cannot be resolved: the chat platform has no user groups", "entry", e)
				continue
			}
			ids, err := r.dir.GroupMembers(ctx, e)
			if err != nil {
				return nil, fmt.Errorf("resolve approver group %s: %w", e, err)
			}
			for _, id := range ids {
				set[id] = true
			}
		}
	}
	r.mu.Lock()
	now := r.now()
	for k, c := range r.cache {
		if !now.Before(c.expires) {
			delete(r.cache, k)
		}
	}
	r.cache[key] = cached{set: set, expires: now.Add(r.ttl)}
	r.mu.Unlock()
	return set, nil
}
