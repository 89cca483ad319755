// Package fakepagerduty is a stateful fake of the parts of the PagerDuty REST API
// that drbot uses (users, on-calls, services, incidents, notes), served over real
// HTTP by an httptest.Server so that go-pagerduty talks to it unchanged through
// pagerduty.WithAPIEndpoint(f.URL()).
//
// It also builds and signs PagerDuty v3 webhook bodies from its own incident state,
// independently of the code under test, so tests can post realistic webhooks.
//
// It is for tests only.
package fakepagerduty

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is a PagerDuty user.
type User struct {
	ID    string
	Name  string
	Email string
}

// OnCall is one on-call entry of an escalation policy.
type OnCall struct {
	UserID string
	Level  uint
}

// EscalationPolicy is a PagerDuty escalation policy with its current on-calls.
type EscalationPolicy struct {
	ID      string
	Name    string
	OnCalls []OnCall
}

// Service is a PagerDuty service.
type Service struct {
	ID                 string
	Name               string
	EscalationPolicyID string
}

// Incident is the fake's record of an incident.
type Incident struct {
	ID                 string
	Number             int
	Title              string
	Status             string // triggered, acknowledged or resolved
	Urgency            string
	Priority           string
	ServiceID          string
	EscalationPolicyID string
	AssigneeIDs        []string
	CreatedAt          time.Time
	LastStatusChangeAt time.Time
	LastStatusChangeBy string // user id, empty when the service changed it
	ResolvedAt         time.Time
}

// Note is an incident note.
type Note struct {
	ID        string
	UserID    string // the user whose e-mail was in the From header
	From      string // the From header as received
	Content   string
	CreatedAt time.Time
}

// Call is one request the fake received.
type Call struct {
	Method string
	Path   string
	Query  string
	From   string // the From header, if any
	Status int    // the status the fake answered
}

// Fake is a running fake PagerDuty REST API. All methods are safe for concurrent use.
type Fake struct {
	tb     testing.TB
	token  string
	server *httptest.Server

	mu        sync.Mutex
	now       func() time.Time
	users     map[string]*User
	policies  map[string]*EscalationPolicy
	services  map[string]*Service
	incidents []*Incident // in creation order
	notes     map[string][]Note
	calls     []Call
	failures  map[string][]int
	seq       int
}

// New starts a fake that accepts API token token ("Authorization: Token token=…")
// and stops it when the test ends.
func New(tb testing.TB, token string) *Fake {
	tb.Helper()
	f := &Fake{
		tb:       tb,
		token:    token,
		now:      time.Now,
		users:    map[string]*User{},
		policies: map[string]*EscalationPolicy{},
		services: map[string]*Service{},
		notes:    map[string][]Note{},
		failures: map[string][]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", f.getUser)
	mux.HandleFunc("GET /oncalls", f.listOnCalls)
	mux.HandleFunc("GET /services/{id}", f.getService)
	mux.HandleFunc("GET /incidents", f.listIncidents)
	mux.HandleFunc("PUT /incidents", f.manageIncidents)
	mux.HandleFunc("GET /incidents/{id}", f.getIncident)
	mux.HandleFunc("GET /incidents/{id}/notes", f.listNotes)
	mux.HandleFunc("POST /incidents/{id}/notes", f.createNote)
	f.server = httptest.NewServer(f.middleware(mux))
	tb.Cleanup(f.server.Close)
	return f
}

// URL is the API endpoint to give to pagerduty.WithAPIEndpoint.
func (f *Fake) URL() string { return f.server.URL }

// Token is the API token the fake accepts.
func (f *Fake) Token() string { return f.token }

// SetClock replaces the fake's clock (time.Now by default).
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// AddUser adds a user.
func (f *Fake) AddUser(id, name, email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[id] = &User{ID: id, Name: name, Email: email}
}

// AddEscalationPolicy adds an escalation policy without on-calls.
func (f *Fake) AddEscalationPolicy(id, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policies[id] = &EscalationPolicy{ID: id, Name: name}
}

// AddOnCall puts userID on call at level of escalation policy policyID.
func (f *Fake) AddOnCall(policyID string, level uint, userID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.policies[policyID]
	if !ok {
		f.tb.Fatalf("fakepagerduty: AddOnCall: no escalation policy %q", policyID)
	}
	p.OnCalls = append(p.OnCalls, OnCall{UserID: userID, Level: level})
}

// AddService adds a service escalating to escalationPolicyID.
func (f *Fake) AddService(id, name, escalationPolicyID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services[id] = &Service{ID: id, Name: name, EscalationPolicyID: escalationPolicyID}
}

// CreateIncident creates a triggered incident on serviceID, assigned to the
// first-level on-calls of the service's escalation policy, and returns it.
func (f *Fake) CreateIncident(serviceID, title, urgency string) Incident {
	f.mu.Lock()
	defer f.mu.Unlock()
	svc, ok := f.services[serviceID]
	if !ok {
		f.tb.Fatalf("fakepagerduty: CreateIncident: no service %q", serviceID)
	}
	f.seq++
	now := f.now().UTC()
	inc := &Incident{
		ID:                 newID("Q"),
		Number:             f.seq,
		Title:              title,
		Status:             "triggered",
		Urgency:            urgency,
		ServiceID:          serviceID,
		EscalationPolicyID: svc.EscalationPolicyID,
		CreatedAt:          now,
		LastStatusChangeAt: now,
	}
	if p := f.policies[svc.EscalationPolicyID]; p != nil {
		for _, oc := range p.OnCalls {
			if oc.Level == 1 && !slices.Contains(inc.AssigneeIDs, oc.UserID) {
				inc.AssigneeIDs = append(inc.AssigneeIDs, oc.UserID)
			}
		}
	}
	f.incidents = append(f.incidents, inc)
	return cloneIncident(inc)
}

// SetIncidentStatus changes an incident's status as if byUserID (may be empty)
// had done it in PagerDuty.
func (f *Fake) SetIncidentStatus(id, status, byUserID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inc := f.findIncident(id)
	if inc == nil {
		f.tb.Fatalf("fakepagerduty: SetIncidentStatus: no incident %q", id)
	}
	f.setStatus(inc, status, byUserID)
}

// SetIncidentPriority sets an incident's priority name (e.g. "P1").
func (f *Fake) SetIncidentPriority(id, priority string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inc := f.findIncident(id)
	if inc == nil {
		f.tb.Fatalf("fakepagerduty: SetIncidentPriority: no incident %q", id)
	}
	inc.Priority = priority
}

// Incident returns a copy of incident id.
func (f *Fake) Incident(id string) (Incident, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inc := f.findIncident(id)
	if inc == nil {
		return Incident{}, false
	}
	return cloneIncident(inc), true
}

// Notes returns a copy of the notes of incident id, oldest first.
func (f *Fake) Notes(incidentID string) []Note {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.notes[incidentID])
}

// AddNote adds a note to an incident as if userID had written it in PagerDuty.
func (f *Fake) AddNote(incidentID, userID, content string) Note {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.findIncident(incidentID) == nil {
		f.tb.Fatalf("fakepagerduty: AddNote: no incident %q", incidentID)
	}
	from := ""
	if u := f.users[userID]; u != nil {
		from = u.Email
	}
	n := Note{ID: newID("N"), UserID: userID, From: from, Content: content, CreatedAt: f.now().UTC()}
	f.notes[incidentID] = append(f.notes[incidentID], n)
	return n
}

// Calls returns a copy of the log of requests received so far.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// CallsTo returns the logged requests whose path is path.
func (f *Fake) CallsTo(path string) []Call {
	var out []Call
	for _, c := range f.Calls() {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// FailNext makes the next request to path (any method, e.g. "/incidents")
// answer status with a PagerDuty-style JSON error. Calls queue up.
func (f *Fake) FailNext(path string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[path] = append(f.failures[path], status)
}

func (f *Fake) findIncident(id string) *Incident {
	for _, inc := range f.incidents {
		if inc.ID == id {
			return inc
		}
	}
	return nil
}

func (f *Fake) setStatus(inc *Incident, status, byUserID string) {
	now := f.now().UTC()
	inc.Status = status
	inc.LastStatusChangeAt = now
	inc.LastStatusChangeBy = byUserID
	if status == "resolved" {
		inc.ResolvedAt = now
	} else {
		inc.ResolvedAt = time.Time{}
	}
}

func (f *Fake) userByEmail(email string) *User {
	for _, u := range f.users {
		if strings.EqualFold(u.Email, email) {
			return u
		}
	}
	return nil
}

func cloneIncident(inc *Incident) Incident {
	c := *inc
	c.AssigneeIDs = slices.Clone(inc.AssigneeIDs)
	return c
}

// newID returns a PagerDuty-looking id: prefix plus 13 upper-case letters/digits.
func newID(prefix string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 13)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

// statusRecorder remembers the status written, for the call log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (f *Fake) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			f.mu.Lock()
			f.calls = append(f.calls, Call{
				Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
				From: r.Header.Get("From"), Status: rec.status,
			})
			f.mu.Unlock()
		}()
		if r.Header.Get("Authorization") != "Token token="+f.token {
			writeError(rec, http.StatusUnauthorized, 2006, "Unauthorized")
			return
		}
		f.mu.Lock()
		var fail int
		if q := f.failures[r.URL.Path]; len(q) > 0 {
			fail, f.failures[r.URL.Path] = q[0], q[1:]
		}
		f.mu.Unlock()
		if fail != 0 {
			writeError(rec, fail, 2001, "Injected failure")
			return
		}
		next.ServeHTTP(rec, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status, code int, msg string, details ...string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg, "errors": details}})
}

// page parses offset/limit like PagerDuty: limit defaults to 25, at most 100.
func page(r *http.Request) (offset, limit int, err error) {
	limit = 25
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 {
			return 0, 0, fmt.Errorf("invalid limit %q", s)
		}
		limit = min(limit, 100)
	}
	if s := r.URL.Query().Get("offset"); s != "" {
		if offset, err = strconv.Atoi(s); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("invalid offset %q", s)
		}
	}
	return offset, limit, nil
}

func paginate[T any](items []T, offset, limit int) (out []T, more bool) {
	if offset >= len(items) {
		return []T{}, false
	}
	end := min(offset+limit, len(items))
	return items[offset:end], end < len(items)
}

func ref(id, typ, summary string) map[string]any {
	return map[string]any{"id": id, "type": typ, "summary": summary,
		"self": "https://api.pagerduty.com/" + typ + "s/" + id, "html_url": "https://fake.pagerduty.com/" + id}
}

func (f *Fake) userJSON(u *User) map[string]any {
	return map[string]any{"id": u.ID, "type": "user", "summary": u.Name, "name": u.Name, "email": u.Email,
		"self": "https://api.pagerduty.com/users/" + u.ID}
}

func (f *Fake) userRef(id string) map[string]any {
	name := id
	if u := f.users[id]; u != nil {
		name = u.Name
	}
	return ref(id, "user_reference", name)
}

func (f *Fake) incidentJSON(inc *Incident) map[string]any {
	svcName := inc.ServiceID
	if s := f.services[inc.ServiceID]; s != nil {
		svcName = s.Name
	}
	m := map[string]any{
		"id": inc.ID, "type": "incident", "summary": fmt.Sprintf("[#%d] %s", inc.Number, inc.Title),
		"self":            "https://api.pagerduty.com/incidents/" + inc.ID,
		"html_url":        "https://fake.pagerduty.com/incidents/" + inc.ID,
		"incident_number": inc.Number, "title": inc.Title, "status": inc.Status, "urgency": inc.Urgency,
		"created_at":            inc.CreatedAt.Format(time.RFC3339),
		"last_status_change_at": inc.LastStatusChangeAt.Format(time.RFC3339),
		"service":               ref(inc.ServiceID, "service_reference", svcName),
		"escalation_policy":     ref(inc.EscalationPolicyID, "escalation_policy_reference", inc.EscalationPolicyID),
	}
	if inc.LastStatusChangeBy != "" {
		m["last_status_change_by"] = f.userRef(inc.LastStatusChangeBy)
	} else {
		m["last_status_change_by"] = ref(inc.ServiceID, "service_reference", svcName)
	}
	var assignments []any
	for _, id := range inc.AssigneeIDs {
		assignments = append(assignments, map[string]any{"at": inc.CreatedAt.Format(time.RFC3339), "assignee": f.userRef(id)})
	}
	m["assignments"] = assignments
	if inc.Priority != "" {
		m["priority"] = map[string]any{"id": "P" + inc.Priority, "type": "priority", "summary": inc.Priority, "name": inc.Priority}
	}
	if !inc.ResolvedAt.IsZero() {
		m["resolved_at"] = inc.ResolvedAt.Format(time.RFC3339)
	}
	return m
}

func (f *Fake) getUser(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.users[r.PathValue("id")]
	if u == nil {
		writeError(w, http.StatusNotFound, 2100, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": f.userJSON(u)})
}

func (f *Fake) getService(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.services[r.PathValue("id")]
	if s == nil {
		writeError(w, http.StatusNotFound, 2100, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"service": map[string]any{
		"id": s.ID, "type": "service", "name": s.Name, "summary": s.Name,
		"escalation_policy": ref(s.EscalationPolicyID, "escalation_policy_reference", s.EscalationPolicyID),
	}})
}

func (f *Fake) listOnCalls(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := page(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", err.Error())
		return
	}
	q := r.URL.Query()
	want := q["escalation_policy_ids[]"]
	includeUsers := slices.Contains(q["include[]"], "users")
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.policies))
	for id := range f.policies {
		if len(want) == 0 || slices.Contains(want, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var all []any
	for _, id := range ids {
		p := f.policies[id]
		for _, oc := range p.OnCalls {
			user := f.userRef(oc.UserID)
			if u := f.users[oc.UserID]; includeUsers && u != nil {
				user = f.userJSON(u)
			}
			all = append(all, map[string]any{
				"user":              user,
				"escalation_policy": ref(p.ID, "escalation_policy_reference", p.Name),
				"escalation_level":  oc.Level,
			})
		}
	}
	items, more := paginate(all, offset, limit)
	writeJSON(w, http.StatusOK, map[string]any{"oncalls": items, "offset": offset, "limit": limit, "more": more})
}

func (f *Fake) listIncidents(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := page(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", err.Error())
		return
	}
	q := r.URL.Query()
	var since, until time.Time
	for name, dst := range map[string]*time.Time{"since": &since, "until": &until} {
		if s := q.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", name+" is not an ISO 8601 time")
				return
			}
			*dst = t
		}
	}
	services, statuses := q["service_ids[]"], q["statuses[]"]
	f.mu.Lock()
	defer f.mu.Unlock()
	if until.IsZero() && q.Get("date_range") != "all" {
		until = f.now()
	}
	if since.IsZero() && q.Get("date_range") != "all" {
		// PagerDuty lists only the last 30 days' incidents when no range is given.
		since = until.Add(-30 * 24 * time.Hour)
	}
	var all []any
	for _, inc := range f.incidents {
		// Like PagerDuty, since/until select on the creation time.
		if !since.IsZero() && inc.CreatedAt.Before(since) || !until.IsZero() && inc.CreatedAt.After(until) {
			continue
		}
		if len(services) > 0 && !slices.Contains(services, inc.ServiceID) {
			continue
		}
		if len(statuses) > 0 && !slices.Contains(statuses, inc.Status) {
			continue
		}
		all = append(all, f.incidentJSON(inc))
	}
	items, more := paginate(all, offset, limit)
	writeJSON(w, http.StatusOK, map[string]any{"incidents": items, "offset": offset, "limit": limit, "more": more})
}

func (f *Fake) getIncident(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inc := f.findIncident(r.PathValue("id"))
	if inc == nil {
		writeError(w, http.StatusNotFound, 2100, "Not Found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident": f.incidentJSON(inc)})
}

// requireFrom checks the From header names a known user, as PagerDuty does.
func (f *Fake) requireFrom(w http.ResponseWriter, r *http.Request) (*User, bool) {
	from := r.Header.Get("From")
	if from == "" {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "You must specify a user's email address in the \"From\" header to perform this action")
		return nil, false
	}
	u := f.userByEmail(from)
	if u == nil {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "The email address in the \"From\" header is not a user of this account")
		return nil, false
	}
	return u, true
}

func (f *Fake) manageIncidents(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Incidents []struct {
			ID     string `json:"id"`
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"incidents"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Incidents) == 0 {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "body must be {\"incidents\": [...]}")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.requireFrom(w, r)
	if !ok {
		return
	}
	var out []any
	for _, in := range body.Incidents {
		inc := f.findIncident(in.ID)
		if inc == nil {
			writeError(w, http.StatusNotFound, 2100, "Not Found", "incident "+in.ID+" not found")
			return
		}
		switch in.Status {
		case "":
		case "acknowledged", "resolved":
			if inc.Status == "resolved" {
				writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "Incident Already Resolved")
				return
			}
			if inc.Status != in.Status {
				f.setStatus(inc, in.Status, u.ID)
			}
		default:
			writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "status must be acknowledged or resolved")
			return
		}
		out = append(out, f.incidentJSON(inc))
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": out})
}

func noteJSON(n Note, u *User) map[string]any {
	user := map[string]any{"id": n.UserID, "type": "user_reference"}
	if u != nil {
		user["summary"] = u.Name
	}
	return map[string]any{"id": n.ID, "user": user, "content": n.Content, "created_at": n.CreatedAt.Format(time.RFC3339)}
}

func (f *Fake) createNote(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Note struct {
			Content string `json:"content"`
		} `json:"note"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Note.Content == "" {
		writeError(w, http.StatusBadRequest, 2001, "Invalid Input Provided", "note.content is required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	if f.findIncident(id) == nil {
		writeError(w, http.StatusNotFound, 2100, "Not Found")
		return
	}
	u, ok := f.requireFrom(w, r)
	if !ok {
		return
	}
	n := Note{ID: newID("N"), UserID: u.ID, From: r.Header.Get("From"), Content: body.Note.Content, CreatedAt: f.now().UTC()}
	f.notes[id] = append(f.notes[id], n)
	writeJSON(w, http.StatusCreated, map[string]any{"note": noteJSON(n, u)})
}

func (f *Fake) listNotes(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	if f.findIncident(id) == nil {
		writeError(w, http.StatusNotFound, 2100, "Not Found")
		return
	}
	notes := []any{}
	for _, n := range f.notes[id] {
		notes = append(notes, noteJSON(n, f.users[n.UserID]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"notes": notes})
}
