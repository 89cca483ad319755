// Package fakeslack is a stateful fake of the Slack Web API and of Socket Mode,
// served over real HTTP (httptest) so that slack-go talks to it exactly as it talks
// to Slack: point a client at it with slack.OptionAPIURL(s.APIURL()).
//
// It keeps a workspace's users, user groups, channels and messages, hands out
// unique increasing message timestamps, records every call, and can be told to
// fail or rate-limit the next call of a method. It is safe for concurrent use.
//
// Authentication follows Slack: Web API methods take the bot token either as
// "Authorization: Bearer …" or as the "token" form field (slack-go sends form
// posts that way); apps.connections.open takes the app-level token (xapp-…).
package fakeslack

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Default credentials and identities of the fake workspace.
const (
	DefaultBotToken = "xoxb-fake-bot-token"   //nolint:gosec // the fake's own token
	DefaultAppToken = "xapp-1-fake-app-token" //nolint:gosec // the fake's own token
	BotUserID       = "UBOT0001"
	BotID           = "BBOT0001"
	TeamID          = "TFAKE001"
	TeamDomain      = "fake-workspace"
	// HumanUserID is the creator of channels added with AddChannel: a person,
	// not the bot (conversations.create makes BotUserID the creator).
	HumanUserID = "UHUMAN01"
)

// User is a workspace member.
type User struct {
	ID    string
	Name  string
	Email string
}

// Channel is a conversation in the fake workspace.
type Channel struct {
	ID      string
	Name    string
	Topic   string
	Members []string
	Created time.Time
	// Creator is the user who created the channel: BotUserID for
	// conversations.create, HumanUserID for AddChannel.
	Creator string
	// Private channels (conversations.create with is_private=true) are
	// invite-only: conversations.join refuses them and conversations.list
	// shows them only for private_channel, to members.
	Private bool
}

// Message is a message as currently stored: Text and Blocks are the latest
// values after any chat.update; Updates counts the updates applied.
type Message struct {
	Channel string
	TS      string
	User    string
	Text    string
	Blocks  json.RawMessage // exactly what the client sent; nil when none
	// ThreadTS is the message this one replies to in its thread ("" = in the channel).
	ThreadTS string
	Updates  int
	PostedAt time.Time
}

// Ephemeral is a message shown to one user only.
type Ephemeral struct {
	Channel string
	User    string
	TS      string
	Text    string
	Blocks  json.RawMessage
}

// Call is one Web API request as the fake decoded it. Params hold the form or
// JSON body (and query) without the token; JSON values that are not strings are
// kept as their JSON text.
type Call struct {
	Method string
	Params map[string]string
	At     time.Time
	// Error is the Slack error code answered, "" on success, "ratelimited" for 429.
	Error string
}

// Option configures a Server.
type Option func(*Server)

// WithTokens sets the accepted bot and app-level tokens.
func WithTokens(bot, app string) Option {
	return func(s *Server) { s.botToken, s.appToken = bot, app }
}

// WithPingInterval sets how often the Socket Mode server sends WebSocket pings
// (default 2s; slack-go reconnects when none arrives for 30s).
func WithPingInterval(d time.Duration) Option {
	return func(s *Server) { s.pingInterval = d }
}

// Server is the fake. Create it with New and Close it when done.
type Server struct {
	srv          *httptest.Server
	botToken     string
	appToken     string
	pingInterval time.Duration

	mu            sync.Mutex
	users         map[string]User
	groups        map[string][]string
	channels      map[string]*Channel
	channelOrder  []string
	messages      map[string][]*Message
	pins          map[string][]string // channel → pinned message ts, oldest pin first
	ephemerals    []Ephemeral
	calls         []Call
	failNext      map[string][]string
	rateLimitNext map[string][]time.Duration
	latency       time.Duration
	listPageMax   int   // conversations.list returns at most this many per page; 0 = the limit asked
	lastTS        int64 // microseconds since the epoch of the last ts handed out
	nextID        int
	changed       chan struct{} // closed and replaced on every state change

	sock socketState
}

// New starts a fake Slack server on 127.0.0.1.
func New(opts ...Option) *Server {
	s := &Server{
		botToken:      DefaultBotToken,
		appToken:      DefaultAppToken,
		pingInterval:  2 * time.Second,
		users:         map[string]User{},
		groups:        map[string][]string{},
		channels:      map[string]*Channel{},
		messages:      map[string][]*Message{},
		pins:          map[string][]string{},
		failNext:      map[string][]string{},
		rateLimitNext: map[string][]time.Duration{},
		changed:       make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.sock.init()
	s.users[BotUserID] = User{ID: BotUserID, Name: "drbot"}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("/socket", s.serveSocket)
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the server's base URL (http://127.0.0.1:port).
func (s *Server) URL() string { return s.srv.URL }

// APIURL is the Web API base for slack.OptionAPIURL / SLACK_API_URL ("…/api/").
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// BotToken is the bot token the server accepts.
func (s *Server) BotToken() string { return s.botToken }

// AppToken is the app-level token apps.connections.open accepts.
func (s *Server) AppToken() string { return s.appToken }

// Close closes Socket Mode connections and shuts the server down.
func (s *Server) Close() {
	s.sock.closeAll()
	s.srv.Close()
}

// notifyLocked wakes waiters; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) newIDLocked(prefix string) string {
	s.nextID++
	return fmt.Sprintf("%s%07d", prefix, s.nextID)
}

// nextTSLocked returns a unique, strictly increasing Slack timestamp.
func (s *Server) nextTSLocked() string {
	now := time.Now().UnixMicro()
	if now <= s.lastTS {
		now = s.lastTS + 1
	}
	s.lastTS = now
	return fmt.Sprintf("%d.%06d", now/1_000_000, now%1_000_000)
}

// AddUser adds a workspace member; an empty ID gets a generated one, which is returned.
func (s *Server) AddUser(u User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = s.newIDLocked("U")
	}
	s.users[u.ID] = u
	return u.ID
}

// AddUserGroup sets the members of user group id (S…).
func (s *Server) AddUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(members)
}

// JoinChannel adds user to channel, as a person joining a public channel
// (or being added to a private one by a member) does; false when there is no
// such channel.
func (s *Server) JoinChannel(channelID, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[channelID]
	if c == nil {
		return false
	}
	if !slices.Contains(c.Members, user) {
		c.Members = append(c.Members, user)
		s.notifyLocked()
	}
	return true
}

// AddChannel creates a channel directly (as if made by a person, HumanUserID)
// and returns its id. Include BotUserID in members for the bot to be able to post.
func (s *Server) AddChannel(name string, members ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.newIDLocked("C")
	s.channels[id] = &Channel{ID: id, Name: name, Members: slices.Clone(members), Created: time.Now(), Creator: HumanUserID}
	s.channelOrder = append(s.channelOrder, id)
	s.notifyLocked()
	return id
}

// Channels returns copies of all channels in creation order.
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Channel, 0, len(s.channelOrder))
	for _, id := range s.channelOrder {
		out = append(out, copyChannel(s.channels[id]))
	}
	return out
}

// ChannelByName returns the channel with the given name.
func (s *Server) ChannelByName(name string) (Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.channelOrder {
		if c := s.channels[id]; c.Name == name {
			return copyChannel(c), true
		}
	}
	return Channel{}, false
}

func copyChannel(c *Channel) Channel {
	cc := *c
	cc.Members = slices.Clone(c.Members)
	return cc
}

// Messages returns copies of the messages in a channel, oldest first.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.messages[channelID]))
	for _, m := range s.messages[channelID] {
		mm := *m
		mm.Blocks = slices.Clone(m.Blocks)
		out = append(out, mm)
	}
	return out
}

// Message returns one stored message.
func (s *Server) Message(channelID, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findMessageLocked(channelID, ts)
	if m == nil {
		return Message{}, false
	}
	mm := *m
	mm.Blocks = slices.Clone(m.Blocks)
	return mm, true
}

func (s *Server) findMessageLocked(channelID, ts string) *Message {
	for _, m := range s.messages[channelID] {
		if m.TS == ts {
			return m
		}
	}
	return nil
}

// Ephemerals returns the ephemeral messages posted so far.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ephemerals)
}

// Calls returns the recorded calls of method, or of every method when method is "".
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			c.Params = maps.Clone(c.Params)
			out = append(out, c)
		}
	}
	return out
}

// FailNext makes the next call of method answer ok:false with slackError.
// Calls queue: FailNext twice fails the next two calls.
func (s *Server) FailNext(method, slackError string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[method] = append(s.failNext[method], slackError)
}

// RateLimitNext makes the next call of method answer HTTP 429 with a
// Retry-After header of retryAfter (rounded up to whole seconds, as Slack sends).
func (s *Server) RateLimitNext(method string, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimitNext[method] = append(s.rateLimitNext[method], retryAfter)
}

// SetLatency delays every Web API answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetListPageMax caps the channels one conversations.list page returns, below
// the limit the client asks for (Slack, too, may return fewer than asked before
// the end of the list), so that tests can exercise cursor pagination; 0 removes the cap.
func (s *Server) SetListPageMax(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listPageMax = n
}

// WaitFor blocks until cond (called with a consistent view, without the lock
// held by the caller) returns true or timeout passes; it reports whether cond held.
func (s *Server) WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return cond()
		}
	}
}

// apiError is a Slack error answer.
type apiError struct {
	code  string
	extra map[string]any
}

func errResp(code string) *apiError { return &apiError{code: code} }

type result = map[string]any

var methods = map[string]func(s *Server, p map[string]string) (result, *apiError){
	"auth.test":              (*Server).authTest,
	"conversations.create":   (*Server).conversationsCreate,
	"conversations.setTopic": (*Server).conversationsSetTopic,
	"conversations.invite":   (*Server).conversationsInvite,
	"conversations.info":     (*Server).conversationsInfo,
	"conversations.join":     (*Server).conversationsJoin,
	"conversations.list":     (*Server).conversationsList,
	"conversations.members":  (*Server).conversationsMembers,
	"chat.postMessage":       (*Server).chatPostMessage,
	"chat.update":            (*Server).chatUpdate,
	"chat.postEphemeral":     (*Server).chatPostEphemeral,
	"pins.add":               (*Server).pinsAdd,
	"pins.remove":            (*Server).pinsRemove,
	"pins.list":              (*Server).pinsList,
	"users.lookupByEmail":    (*Server).usersLookupByEmail,
	"users.info":             (*Server).usersInfo,
	"usergroups.users.list":  (*Server).usergroupsUsersList,
	"apps.connections.open":  (*Server).appsConnectionsOpen,
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	params, token, err := decodeParams(r)
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	call := Call{Method: method, Params: params, At: time.Now()}
	if err != nil {
		s.record(call, "invalid_form_data")
		writeJSON(w, http.StatusOK, result{"ok": false, "error": "invalid_form_data"})
		return
	}

	s.mu.Lock()
	if q := s.rateLimitNext[method]; len(q) > 0 {
		d := q[0]
		s.rateLimitNext[method] = q[1:]
		call.Error = "ratelimited"
		s.calls = append(s.calls, call)
		s.notifyLocked()
		s.mu.Unlock()
		secs := int64((d + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeJSON(w, http.StatusTooManyRequests, result{"ok": false, "error": "ratelimited"})
		return
	}
	s.mu.Unlock()

	wantToken := s.botToken
	if method == "apps.connections.open" {
		wantToken = s.appToken
	}
	switch {
	case token == "":
		s.record(call, "not_authed")
		writeJSON(w, http.StatusOK, result{"ok": false, "error": "not_authed"})
		return
	case token != wantToken:
		s.record(call, "invalid_auth")
		writeJSON(w, http.StatusOK, result{"ok": false, "error": "invalid_auth"})
		return
	}

	h := methods[method]
	if h == nil {
		s.record(call, "unknown_method")
		writeJSON(w, http.StatusOK, result{"ok": false, "error": "unknown_method"})
		return
	}

	s.mu.Lock()
	if q := s.failNext[method]; len(q) > 0 {
		code := q[0]
		s.failNext[method] = q[1:]
		s.mu.Unlock()
		s.record(call, code)
		writeJSON(w, http.StatusOK, result{"ok": false, "error": code})
		return
	}
	s.mu.Unlock()

	res, aerr := h(s, params)
	if aerr != nil {
		s.record(call, aerr.code)
		out := result{"ok": false, "error": aerr.code}
		maps.Copy(out, aerr.extra)
		writeJSON(w, http.StatusOK, out)
		return
	}
	s.record(call, "")
	res["ok"] = true
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) record(c Call, code string) {
	c.Error = code
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.notifyLocked()
	s.mu.Unlock()
}

// decodeParams reads query, form or JSON parameters and extracts the token.
func decodeParams(r *http.Request) (map[string]string, string, error) {
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return params, "", fmt.Errorf("read body: %w", err)
	}
	switch {
	case ct == "application/json" && len(body) > 0:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return params, "", fmt.Errorf("decode JSON body: %w", err)
		}
		for k, raw := range m {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				params[k] = str
			} else {
				params[k] = string(raw)
			}
		}
	case len(body) > 0:
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return params, "", fmt.Errorf("decode form body: %w", err)
		}
		for k, v := range vals {
			params[k] = v[0]
		}
	}
	token := params["token"]
	delete(params, "token")
	if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && h != "" {
		token = h
	}
	return params, token, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) authTest(map[string]string) (result, *apiError) {
	return result{"url": "https://" + TeamDomain + ".slack.com/", "team": TeamDomain, "user": "drbot",
		"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID}, nil
}

var validName = regexp.MustCompile(`^[a-z0-9_-]+$`)

func channelJSON(c *Channel) result {
	return result{
		"id": c.ID, "name": c.Name, "is_channel": !c.Private, "is_group": c.Private, "is_private": c.Private, "is_archived": false,
		"is_member": slices.Contains(c.Members, BotUserID), "created": c.Created.Unix(), "creator": c.Creator, "topic": result{"value": c.Topic, "creator": BotUserID, "last_set": c.Created.Unix()},
		"num_members": len(c.Members),
	}
}

func (s *Server) conversationsCreate(p map[string]string) (result, *apiError) {
	name := p["name"]
	switch {
	case name == "":
		return nil, errResp("invalid_name_required")
	case len(name) > 80:
		return nil, errResp("name_too_long")
	case !validName.MatchString(name):
		return nil, errResp("invalid_name_specials")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.channels {
		if c.Name == name {
			return nil, errResp("name_taken")
		}
	}
	id := s.newIDLocked("C")
	c := &Channel{ID: id, Name: name, Members: []string{BotUserID}, Created: time.Now(), Creator: BotUserID, Private: p["is_private"] == "true"}
	s.channels[id] = c
	s.channelOrder = append(s.channelOrder, id)
	s.notifyLocked()
	return result{"channel": channelJSON(c)}, nil
}

func (s *Server) conversationsSetTopic(p map[string]string) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil {
		return nil, errResp("channel_not_found")
	}
	if !slices.Contains(c.Members, BotUserID) {
		return nil, errResp("not_in_channel")
	}
	if len([]rune(p["topic"])) > 250 {
		return nil, errResp("too_long")
	}
	c.Topic = p["topic"]
	s.notifyLocked()
	return result{"channel": channelJSON(c)}, nil
}

func (s *Server) conversationsInvite(p map[string]string) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil {
		return nil, errResp("channel_not_found")
	}
	if !slices.Contains(c.Members, BotUserID) {
		return nil, errResp("not_in_channel")
	}
	ids := strings.Split(p["users"], ",")
	if p["users"] == "" {
		return nil, errResp("no_user")
	}
	var errs []result
	var add []string
	for _, id := range ids {
		id = strings.TrimSpace(id)
		switch {
		case s.users[id].ID == "":
			errs = append(errs, result{"user": id, "ok": false, "error": "user_not_found"})
		case slices.Contains(c.Members, id) || slices.Contains(add, id):
			errs = append(errs, result{"user": id, "ok": false, "error": "already_in_channel"})
		case id == BotUserID:
			errs = append(errs, result{"user": id, "ok": false, "error": "cant_invite_self"})
		default:
			add = append(add, id)
		}
	}
	// Like Slack without force=true: any failing user fails the whole call.
	if len(errs) > 0 && p["force"] != "true" {
		return nil, &apiError{code: errs[0]["error"].(string), extra: map[string]any{"errors": errs}}
	}
	c.Members = append(c.Members, add...)
	s.notifyLocked()
	res := result{"channel": channelJSON(c)}
	if len(errs) > 0 {
		res["errors"] = errs
	}
	return res, nil
}

func (s *Server) conversationsInfo(p map[string]string) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil {
		return nil, errResp("channel_not_found")
	}
	return result{"channel": channelJSON(c)}, nil
}

func (s *Server) conversationsJoin(p map[string]string) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil {
		return nil, errResp("channel_not_found")
	}
	if c.Private {
		return nil, errResp("method_not_supported_for_channel_type")
	}
	if !slices.Contains(c.Members, BotUserID) {
		c.Members = append(c.Members, BotUserID)
		s.notifyLocked()
	}
	return result{"channel": channelJSON(c)}, nil
}

// conversationsList pages through the channels in creation order. The fake's
// channels are all public and unarchived, so types other than public_channel
// list nothing and exclude_archived changes nothing. The cursor is opaque to
// clients: it encodes the offset of the next page.
func (s *Server) conversationsList(p map[string]string) (result, *apiError) {
	limit := 100 // Slack's default
	if v := p["limit"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, errResp("invalid_limit")
		}
		limit = min(n, 1000)
	}
	public, private := p["types"] == "", false
	for t := range strings.SplitSeq(p["types"], ",") {
		switch strings.TrimSpace(t) {
		case "public_channel":
			public = true
		case "private_channel":
			private = true
		case "", "mpim", "im":
		default:
			return nil, errResp("invalid_types")
		}
	}
	start := 0
	if c := p["cursor"]; c != "" {
		off, ok := strings.CutPrefix(c, "offset:")
		n, err := strconv.Atoi(off)
		if !ok || err != nil || n < 0 {
			return nil, errResp("invalid_cursor")
		}
		start = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listPageMax > 0 {
		limit = min(limit, s.listPageMax)
	}
	chans := []result{}
	next := ""
	if public || private {
		for i := start; i < len(s.channelOrder); i++ {
			if len(chans) == limit {
				next = "offset:" + strconv.Itoa(i)
				break
			}
			c := s.channels[s.channelOrder[i]]
			if c.Private && (!private || !slices.Contains(c.Members, BotUserID)) || !c.Private && !public {
				continue
			}
			chans = append(chans, channelJSON(c))
		}
	}
	return result{"channels": chans, "response_metadata": result{"next_cursor": next}}, nil
}

// blocksParam validates the blocks parameter (a JSON array of at most 50 objects
// with a type) and, as Slack does, assigns a block_id to blocks without one;
// otherwise the client's JSON is stored byte for byte.
func blocksParam(p map[string]string) (json.RawMessage, *apiError) {
	raw, ok := p["blocks"]
	if !ok || raw == "" {
		return nil, nil
	}
	var blocks []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		return nil, errResp("invalid_blocks_format")
	}
	if len(blocks) > 50 {
		return nil, errResp("invalid_blocks")
	}
	assigned := false
	for _, b := range blocks {
		if _, ok := b["type"]; !ok {
			return nil, errResp("invalid_blocks")
		}
		// Like Slack, give every block without one a block_id.
		if _, ok := b["block_id"]; !ok {
			b["block_id"] = json.RawMessage(strconv.Quote(randomID(3)))
			assigned = true
		}
	}
	if !assigned {
		return json.RawMessage(raw), nil
	}
	out, err := json.Marshal(blocks)
	if err != nil {
		return nil, errResp("invalid_blocks")
	}
	return out, nil
}

func (s *Server) chatPostMessage(p map[string]string) (result, *apiError) {
	blocks, aerr := blocksParam(p)
	if aerr != nil {
		return nil, aerr
	}
	if p["text"] == "" && blocks == nil {
		return nil, errResp("no_text")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil {
		return nil, errResp("channel_not_found")
	}
	if !slices.Contains(c.Members, BotUserID) {
		return nil, errResp("not_in_channel")
	}
	m := &Message{Channel: c.ID, TS: s.nextTSLocked(), User: BotUserID, Text: p["text"], Blocks: blocks, ThreadTS: p["thread_ts"], PostedAt: time.Now()}
	s.messages[c.ID] = append(s.messages[c.ID], m)
	s.notifyLocked()
	return result{"channel": c.ID, "ts": m.TS, "message": messageJSON(m)}, nil
}

func messageJSON(m *Message) result {
	out := result{"type": "message", "user": m.User, "bot_id": BotID, "text": m.Text, "ts": m.TS}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	return out
}

func (s *Server) chatUpdate(p map[string]string) (result, *apiError) {
	blocks, aerr := blocksParam(p)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil {
		return nil, errResp("channel_not_found")
	}
	m := s.findMessageLocked(c.ID, p["ts"])
	if m == nil {
		return nil, errResp("message_not_found")
	}
	if _, ok := p["text"]; ok {
		m.Text = p["text"]
	}
	if blocks != nil {
		m.Blocks = blocks
	}
	m.Updates++
	s.notifyLocked()
	return result{"channel": c.ID, "ts": m.TS, "text": m.Text, "message": messageJSON(m)}, nil
}

// Pins returns the ts of the messages pinned in a channel, oldest pin first.
func (s *Server) Pins(channelID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pins[channelID])
}

// pinsAdd pins a message (channel, timestamp) as Slack does: the message must
// exist, and pinning it twice answers already_pinned.
func (s *Server) pinsAdd(p map[string]string) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil {
		return nil, errResp("channel_not_found")
	}
	if p["timestamp"] == "" {
		return nil, errResp("no_item_specified")
	}
	if s.findMessageLocked(c.ID, p["timestamp"]) == nil {
		return nil, errResp("message_not_found")
	}
	if !slices.Contains(c.Members, BotUserID) {
		return nil, errResp("not_in_channel")
	}
	if slices.Contains(s.pins[c.ID], p["timestamp"]) {
		return nil, errResp("already_pinned")
	}
	s.pins[c.ID] = append(s.pins[c.ID], p["timestamp"])
	s.notifyLocked()
	return result{}, nil
}

func (s *Server) pinsRemove(p map[string]string) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil {
		return nil, errResp("channel_not_found")
	}
	i := slices.Index(s.pins[c.ID], p["timestamp"])
	if i < 0 {
		return nil, errResp("no_pin")
	}
	s.pins[c.ID] = slices.Delete(s.pins[c.ID], i, i+1)
	s.notifyLocked()
	return result{}, nil
}

// pinsList answers the pinned messages of a channel, newest pin first as Slack does.
func (s *Server) pinsList(p map[string]string) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil {
		return nil, errResp("channel_not_found")
	}
	items := []result{}
	pins := s.pins[c.ID]
	for i := len(pins) - 1; i >= 0; i-- {
		if m := s.findMessageLocked(c.ID, pins[i]); m != nil {
			items = append(items, result{"type": "message", "channel": c.ID, "message": messageJSON(m)})
		}
	}
	return result{"items": items}, nil
}

func (s *Server) chatPostEphemeral(p map[string]string) (result, *apiError) {
	blocks, aerr := blocksParam(p)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil {
		return nil, errResp("channel_not_found")
	}
	if s.users[p["user"]].ID == "" {
		return nil, errResp("user_not_found")
	}
	e := Ephemeral{Channel: c.ID, User: p["user"], TS: s.nextTSLocked(), Text: p["text"], Blocks: blocks}
	s.ephemerals = append(s.ephemerals, e)
	s.notifyLocked()
	return result{"message_ts": e.TS}, nil
}

func userJSON(u User) result {
	return result{"id": u.ID, "team_id": TeamID, "name": u.Name, "real_name": u.Name, "is_bot": u.ID == BotUserID,
		"profile": result{"email": u.Email, "real_name": u.Name, "display_name": u.Name}}
}

func (s *Server) usersLookupByEmail(p map[string]string) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Email != "" && strings.EqualFold(u.Email, p["email"]) {
			return result{"user": userJSON(u)}, nil
		}
	}
	return nil, errResp("users_not_found")
}

func (s *Server) usersInfo(p map[string]string) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[p["user"]]
	if !ok {
		return nil, errResp("user_not_found")
	}
	return result{"user": userJSON(u)}, nil
}

func (s *Server) usergroupsUsersList(p map[string]string) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, ok := s.groups[p["usergroup"]]
	if !ok {
		return nil, errResp("no_such_subteam")
	}
	return result{"users": slices.Clone(members)}, nil
}

// conversationsMembers pages through a channel's members. Like Slack, a
// private channel the bot is not in is channel_not_found; the cursor is the
// offset of the next page.
func (s *Server) conversationsMembers(p map[string]string) (result, *apiError) {
	limit := 100
	if v := p["limit"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, errResp("invalid_limit")
		}
		limit = min(n, 1000)
	}
	start := 0
	if c := p["cursor"]; c != "" {
		off, ok := strings.CutPrefix(c, "offset:")
		n, err := strconv.Atoi(off)
		if !ok || err != nil || n < 0 {
			return nil, errResp("invalid_cursor")
		}
		start = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[p["channel"]]
	if c == nil || c.Private && !slices.Contains(c.Members, BotUserID) {
		return nil, errResp("channel_not_found")
	}
	if s.listPageMax > 0 {
		limit = min(limit, s.listPageMax)
	}
	members := []string{}
	next := ""
	for i := start; i < len(c.Members); i++ {
		if len(members) == limit {
			next = "offset:" + strconv.Itoa(i)
			break
		}
		members = append(members, c.Members[i])
	}
	return result{"members": members, "response_metadata": result{"next_cursor": next}}, nil
}
