package pagerduty

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	pagerduty "github.com/PagerDuty/go-pagerduty"

	"github.com/drbot-dev/drbot/bot/incident"
)

// DefaultAPIURL is PagerDuty's REST API endpoint, used when APIOptions.BaseURL is empty.
const DefaultAPIURL = "https://api.pagerduty.com"

// pageSize is the page size asked of list endpoints (PagerDuty's maximum).
const pageSize = 100

// maxPages bounds pagination so a misbehaving server cannot loop us forever.
const maxPages = 100

// APIOptions configures NewAPI.
type APIOptions struct {
	Token     string // PAGERDUTY_API_TOKEN (a REST API key)
	BaseURL   string // PAGERDUTY_API_URL; empty = DefaultAPIURL
	FromEmail string // PAGERDUTY_FROM_EMAIL: the PagerDuty user drbot acts as (notes, acks, resolves)
	Logger    *slog.Logger
	// HTTPClient replaces go-pagerduty's default client (which has timeouts); optional.
	HTTPClient *http.Client
}

// API is a PagerDuty REST API client. It is safe for concurrent use.
type API struct {
	client *pagerduty.Client
	from   string
	logger *slog.Logger
}

// NewAPI returns a client for the PagerDuty REST API.
func NewAPI(opts APIOptions) (*API, error) {
	if strings.TrimSpace(opts.Token) == "" {
		return nil, errors.New("pagerduty: PAGERDUTY_API_TOKEN is empty: set it to a PagerDuty REST API key")
	}
	base := strings.TrimRight(opts.BaseURL, "/")
	if base == "" {
		base = DefaultAPIURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("pagerduty: PAGERDUTY_API_URL %q is not an http(s) URL", opts.BaseURL)
	}
	c := pagerduty.NewClient(opts.Token, pagerduty.WithAPIEndpoint(base))
	if opts.HTTPClient != nil {
		c.HTTPClient = opts.HTTPClient
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &API{client: c, from: strings.TrimSpace(opts.FromEmail), logger: logger.With("component", "pagerduty-api")}, nil
}

// apiError wraps err from a PagerDuty call with what was being done and, for
// common HTTP statuses, what the operator can do about it.
func apiError(op string, err error) error {
	var ae pagerduty.APIError
	if errors.As(err, &ae) {
		switch {
		case ae.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("pagerduty: %s: PagerDuty rejected the API token (check PAGERDUTY_API_TOKEN): %w", op, err)
		case ae.StatusCode == http.StatusForbidden:
			return fmt.Errorf("pagerduty: %s: the API token lacks permission for this: %w", op, err)
		case ae.NotFound():
			return fmt.Errorf("pagerduty: %s: not found in PagerDuty: %w", op, err)
		case ae.RateLimited():
			return fmt.Errorf("pagerduty: %s: rate limited by PagerDuty, retry later: %w", op, err)
		}
	}
	return fmt.Errorf("pagerduty: %s: %w", op, err)
}

func (a *API) requireFrom(op string) error {
	if a.from == "" {
		return fmt.Errorf("pagerduty: %s: PAGERDUTY_FROM_EMAIL is not set; PagerDuty needs the e-mail of the user drbot acts as", op)
	}
	return nil
}

// OnCallEmails returns the e-mail addresses of the users currently on call for
// escalationPolicyID, at every level, in the order PagerDuty lists them, without
// duplicates.
func (a *API) OnCallEmails(ctx context.Context, escalationPolicyID string) ([]string, error) {
	op := "list on-calls of escalation policy " + escalationPolicyID
	var userIDs []string
	seenUser := map[string]bool{}
	opts := pagerduty.ListOnCallOptions{EscalationPolicyIDs: []string{escalationPolicyID}, Limit: pageSize}
	for range maxPages {
		resp, err := a.client.ListOnCallsWithContext(ctx, opts)
		if err != nil {
			return nil, apiError(op, err)
		}
		for _, oc := range resp.OnCalls {
			if id := oc.User.ID; id != "" && !seenUser[id] {
				seenUser[id] = true
				userIDs = append(userIDs, id)
			}
		}
		if !resp.More || len(resp.OnCalls) == 0 {
			break
		}
		opts.Offset += uint(len(resp.OnCalls))
	}
	emails := make([]string, 0, len(userIDs))
	seenEmail := map[string]bool{}
	for _, id := range userIDs {
		u, err := a.client.GetUserWithContext(ctx, id, pagerduty.GetUserOptions{})
		if err != nil {
			return nil, apiError("get on-call user "+id, err)
		}
		key := strings.ToLower(u.Email)
		if u.Email == "" || seenEmail[key] {
			continue
		}
		seenEmail[key] = true
		emails = append(emails, u.Email)
	}
	return emails, nil
}

// AddNote adds a note to incidentID as the PAGERDUTY_FROM_EMAIL user.
func (a *API) AddNote(ctx context.Context, incidentID, content string) error {
	op := "add a note to incident " + incidentID
	if err := a.requireFrom(op); err != nil {
		return err
	}
	// go-pagerduty sends note.User.Summary as the From header.
	note := pagerduty.IncidentNote{Content: content, User: pagerduty.APIObject{Summary: a.from}}
	if _, err := a.client.CreateIncidentNoteWithContext(ctx, incidentID, note); err != nil {
		return apiError(op, err)
	}
	return nil
}

// Acknowledge acknowledges incidentID as the PAGERDUTY_FROM_EMAIL user.
func (a *API) Acknowledge(ctx context.Context, incidentID string) error {
	return a.setStatus(ctx, "acknowledge incident "+incidentID, incidentID, "acknowledged")
}

// Resolve resolves incidentID as the PAGERDUTY_FROM_EMAIL user.
func (a *API) Resolve(ctx context.Context, incidentID string) error {
	return a.setStatus(ctx, "resolve incident "+incidentID, incidentID, "resolved")
}

func (a *API) setStatus(ctx context.Context, op, incidentID, status string) error {
	if err := a.requireFrom(op); err != nil {
		return err
	}
	_, err := a.client.ManageIncidentsWithContext(ctx, a.from, []pagerduty.ManageIncidentsOptions{{ID: incidentID, Status: status}})
	if err != nil {
		return apiError(op, err)
	}
	return nil
}

// polledStatuses are the incident statuses ListIncidents asks for.
var polledStatuses = []string{"triggered", "acknowledged", "resolved"}

// ListIncidents lists the incidents of serviceIDs (all services when empty)
// created since since, and maps each to an event of the kind matching its
// status. DeliveryID is derived from the incident id, status and last status
// change time, so listing an unchanged incident again yields the same id.
func (a *API) ListIncidents(ctx context.Context, serviceIDs []string, since time.Time) ([]incident.Event, error) {
	opts := pagerduty.ListIncidentsOptions{
		ServiceIDs: serviceIDs,
		Statuses:   polledStatuses,
		Limit:      pageSize,
	}
	if since.IsZero() {
		opts.DateRange = "all"
	} else {
		opts.Since = since.UTC().Format(time.RFC3339)
	}
	var events []incident.Event
	for range maxPages {
		resp, err := a.client.ListIncidentsWithContext(ctx, opts)
		if err != nil {
			return nil, apiError("list incidents", err)
		}
		for _, inc := range resp.Incidents {
			ev, ok := incidentEvent(inc)
			if !ok {
				a.logger.WarnContext(ctx, "skipping incident with an unexpected status", "incident", inc.ID, "status", inc.Status)
				continue
			}
			events = append(events, ev)
		}
		if !resp.More || len(resp.Incidents) == 0 {
			break
		}
		opts.Offset += uint(len(resp.Incidents))
	}
	return events, nil
}

// incidentEvent maps a listed incident to the event its status implies.
func incidentEvent(inc pagerduty.Incident) (incident.Event, bool) {
	var kind string
	switch inc.Status {
	case "triggered":
		kind = incident.EventTriggered
	case "acknowledged":
		kind = incident.EventAcknowledged
	case "resolved":
		kind = incident.EventResolved
	default:
		return incident.Event{}, false
	}
	changed := inc.LastStatusChangeAt
	if changed == "" {
		changed = inc.CreatedAt
	}
	at, err := time.Parse(time.RFC3339, changed)
	if err != nil {
		at = time.Time{}
	}
	sum := sha256.Sum256([]byte(inc.ID + "\x00" + inc.Status + "\x00" + changed))
	ev := incident.Event{
		DeliveryID:  "poll-" + hex.EncodeToString(sum[:16]),
		Kind:        kind,
		PagerDutyID: inc.ID,
		ServiceID:   inc.Service.ID,
		Title:       inc.Title,
		Urgency:     inc.Urgency,
		Status:      inc.Status,
		URL:         inc.HTMLURL,
		Actor:       inc.LastStatusChangeBy.Summary,
		At:          at,
	}
	if inc.Priority != nil {
		ev.Priority = inc.Priority.Summary
		if ev.Priority == "" {
			ev.Priority = inc.Priority.Name
		}
	}
	for _, as := range inc.Assignments {
		if s := as.Assignee.Summary; s != "" {
			ev.Assignees = append(ev.Assignees, s)
		}
	}
	if raw, err := json.Marshal(inc); err == nil {
		ev.Raw = raw
	}
	return ev, true
}
