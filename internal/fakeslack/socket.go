package fakeslack

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Ack is a Socket Mode acknowledgement received from the client.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage // nil when the ack carried none
	Size       int             // bytes on the wire
	At         time.Time
}

type wsConn struct {
	conn *websocket.Conn
	wmu  sync.Mutex
	done chan struct{}
}

func (c *wsConn) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteJSON(v)
}

type socketState struct {
	mu      sync.Mutex
	tickets map[string]bool
	conns   []*wsConn
	acks    []Ack
	sent    int
	changed chan struct{}
}

func (st *socketState) init() {
	st.tickets = map[string]bool{}
	st.changed = make(chan struct{})
}

func (st *socketState) notifyLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
}

func (st *socketState) closeAll() {
	st.mu.Lock()
	conns := slices.Clone(st.conns)
	st.mu.Unlock()
	for _, c := range conns {
		c.wmu.Lock()
		_ = c.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "server closing"), time.Now().Add(time.Second))
		c.wmu.Unlock()
		_ = c.conn.Close()
	}
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) appsConnectionsOpen(map[string]string) (result, *apiError) {
	ticket := randomID(12)
	s.sock.mu.Lock()
	s.sock.tickets[ticket] = true
	s.sock.mu.Unlock()
	wsURL := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket?ticket=" + ticket
	return result{"url": wsURL}, nil
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.sock.mu.Lock()
	ok := s.sock.tickets[ticket]
	delete(s.sock.tickets, ticket) // one use, as Slack's URLs
	s.sock.mu.Unlock()
	if !ok {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &wsConn{conn: conn, done: make(chan struct{})}
	if err := c.write(map[string]any{
		"type": "hello", "num_connections": 1,
		"connection_info": map[string]any{"app_id": "AFAKE001"},
		"debug_info":      map[string]any{"host": "fakeslack", "approximate_connection_time": 3600},
	}); err != nil {
		_ = conn.Close()
		return
	}
	s.sock.mu.Lock()
	s.sock.conns = append(s.sock.conns, c)
	s.sock.notifyLocked()
	s.sock.mu.Unlock()

	go s.pingLoop(c)
	defer func() {
		close(c.done)
		_ = conn.Close()
		s.sock.mu.Lock()
		s.sock.conns = slices.DeleteFunc(s.sock.conns, func(x *wsConn) bool { return x == c })
		s.sock.notifyLocked()
		s.sock.mu.Unlock()
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var resp struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &resp) != nil || resp.EnvelopeID == "" {
			continue
		}
		s.sock.mu.Lock()
		s.sock.acks = append(s.sock.acks, Ack{EnvelopeID: resp.EnvelopeID, Payload: resp.Payload, Size: len(data), At: time.Now()})
		s.sock.notifyLocked()
		s.sock.mu.Unlock()
	}
}

func (s *Server) pingLoop(c *wsConn) {
	t := time.NewTicker(s.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.wmu.Lock()
			err := c.conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second))
			c.wmu.Unlock()
			if err != nil {
				return
			}
		}
	}
}

// SocketConnected reports how many Socket Mode clients are connected.
func (s *Server) SocketConnected() int {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	return len(s.sock.conns)
}

// WaitSocketConnected waits until at least one Socket Mode client is connected.
func (s *Server) WaitSocketConnected(timeout time.Duration) bool {
	return s.waitSock(timeout, func() bool { return len(s.sock.conns) > 0 })
}

// waitSock waits until cond (called with s.sock.mu held) is true.
func (s *Server) waitSock(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.sock.mu.Lock()
		ok := cond()
		ch := s.sock.changed
		s.sock.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// Acks returns the acknowledgements received so far.
func (s *Server) Acks() []Ack {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	return slices.Clone(s.sock.acks)
}

// WaitAck waits for the acknowledgement of envelopeID.
func (s *Server) WaitAck(envelopeID string, timeout time.Duration) (Ack, bool) {
	var found Ack
	ok := s.waitSock(timeout, func() bool {
		for _, a := range s.sock.acks {
			if a.EnvelopeID == envelopeID {
				found = a
				return true
			}
		}
		return false
	})
	return found, ok
}

// ErrNoSocket is returned when an envelope is pushed with no client connected.
var ErrNoSocket = errors.New("fakeslack: no Socket Mode client connected")

// sendEnvelope pushes an envelope to the newest connection and returns its id.
func (s *Server) sendEnvelope(typ string, payload json.RawMessage, retryAttempt int) (string, error) {
	s.sock.mu.Lock()
	if len(s.sock.conns) == 0 {
		s.sock.mu.Unlock()
		return "", ErrNoSocket
	}
	c := s.sock.conns[len(s.sock.conns)-1]
	s.sock.sent++
	id := fmt.Sprintf("env-%06d-%s", s.sock.sent, randomID(4))
	s.sock.mu.Unlock()
	env := map[string]any{
		"envelope_id":              id,
		"type":                     typ,
		"payload":                  payload,
		"accepts_response_payload": typ != "events_api",
		"retry_attempt":            retryAttempt,
	}
	if retryAttempt > 0 {
		env["retry_reason"] = "timeout"
	}
	if err := c.write(env); err != nil {
		return "", fmt.Errorf("fakeslack: write envelope: %w", err)
	}
	return id, nil
}

// SendSlashCommand pushes a slash_commands envelope and returns its envelope id.
func (s *Server) SendSlashCommand(cmd SlashCommand) (string, error) {
	b, err := json.Marshal(cmd.fill())
	if err != nil {
		return "", fmt.Errorf("fakeslack: encode slash command: %w", err)
	}
	return s.sendEnvelope("slash_commands", b, 0)
}

// SendInteraction pushes an interactive envelope carrying payload (for example
// from ClickButton or ToggleCheckbox) and returns its envelope id.
func (s *Server) SendInteraction(payload json.RawMessage) (string, error) {
	return s.sendEnvelope("interactive", payload, 0)
}

// SendEventsAPI pushes an events_api envelope carrying an event_callback payload
// (see EventCallback); retryAttempt > 0 marks it as a redelivery.
func (s *Server) SendEventsAPI(payload json.RawMessage, retryAttempt int) (string, error) {
	return s.sendEnvelope("events_api", payload, retryAttempt)
}
