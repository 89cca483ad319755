package fakeslack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// SlashCommand is what Slack sends for a slash command, in HTTP mode as a form and
// in Socket Mode as the envelope payload. Empty fields get defaults: Command "/dr",
// a fresh TriggerID, the fake team.
type SlashCommand struct {
	Command     string `json:"command"`
	Text        string `json:"text"`
	UserID      string `json:"user_id"`
	UserName    string `json:"user_name"`
	ChannelID   string `json:"channel_id"`
	ChannelName string `json:"channel_name"`
	TeamID      string `json:"team_id"`
	TeamDomain  string `json:"team_domain"`
	TriggerID   string `json:"trigger_id"`
	ResponseURL string `json:"response_url"`
	APIAppID    string `json:"api_app_id"`
}

func (c SlashCommand) fill() SlashCommand {
	if c.Command == "" {
		c.Command = "/dr"
	}
	if c.TriggerID == "" {
		c.TriggerID = NewTriggerID()
	}
	if c.TeamID == "" {
		c.TeamID = TeamID
	}
	if c.TeamDomain == "" {
		c.TeamDomain = TeamDomain
	}
	if c.APIAppID == "" {
		c.APIAppID = "AFAKE001"
	}
	return c
}

// Form encodes the command as Slack posts it to a slash command URL.
func (c SlashCommand) Form() url.Values {
	c = c.fill()
	return url.Values{
		"command": {c.Command}, "text": {c.Text}, "user_id": {c.UserID}, "user_name": {c.UserName},
		"channel_id": {c.ChannelID}, "channel_name": {c.ChannelName}, "team_id": {c.TeamID},
		"team_domain": {c.TeamDomain}, "trigger_id": {c.TriggerID}, "response_url": {c.ResponseURL},
		"api_app_id": {c.APIAppID},
	}
}

// NewTriggerID returns a fresh, unique trigger id.
func NewTriggerID() string {
	return fmt.Sprintf("%d.%s", time.Now().UnixNano(), randomID(8))
}

// Sign computes Slack's v0 request signature of body at ts and returns the
// X-Slack-Request-Timestamp and X-Slack-Signature header values.
func Sign(secret string, ts time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	_, _ = fmt.Fprintf(mac, "v0:%s:", timestamp)
	mac.Write(body)
	return timestamp, "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// NewSignedRequest builds a POST of body to target signed with secret at ts, as
// Slack delivers commands, interactions and events in HTTP mode.
func NewSignedRequest(ctx context.Context, target, secret string, ts time.Time, contentType string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("fakeslack: build request: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	tsh, sig := Sign(secret, ts, body)
	req.Header.Set("X-Slack-Request-Timestamp", tsh)
	req.Header.Set("X-Slack-Signature", sig)
	return req, nil
}

// InteractionForm wraps an interaction payload as Slack posts it in HTTP mode
// (form field "payload").
func InteractionForm(payload json.RawMessage) url.Values {
	return url.Values{"payload": {string(payload)}}
}

type jsonBlock = map[string]any

// elementsOf returns the interactive elements of a block (actions blocks and
// section accessories).
func elementsOf(b jsonBlock) []jsonBlock {
	var out []jsonBlock
	if els, ok := b["elements"].([]any); ok && b["type"] == "actions" {
		for _, e := range els {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	if acc, ok := b["accessory"].(map[string]any); ok {
		out = append(out, acc)
	}
	return out
}

func (s *Server) interactionBase(channelID, ts, userID string) (map[string]any, []jsonBlock, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findMessageLocked(channelID, ts)
	if m == nil {
		return nil, nil, fmt.Errorf("fakeslack: no message %s in channel %s", ts, channelID)
	}
	u, ok := s.users[userID]
	if !ok {
		return nil, nil, fmt.Errorf("fakeslack: no user %s", userID)
	}
	var blocks []jsonBlock
	if m.Blocks != nil {
		if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
			return nil, nil, fmt.Errorf("fakeslack: stored blocks: %w", err)
		}
	}
	chName := ""
	if c := s.channels[channelID]; c != nil {
		chName = c.Name
	}
	msg := map[string]any{"type": "message", "user": m.User, "bot_id": BotID, "text": m.Text, "ts": m.TS}
	if m.Blocks != nil {
		msg["blocks"] = m.Blocks
	}
	payload := map[string]any{
		"type":         "block_actions",
		"trigger_id":   NewTriggerID(),
		"api_app_id":   "AFAKE001",
		"user":         map[string]any{"id": u.ID, "username": u.Name, "name": u.Name, "team_id": TeamID},
		"team":         map[string]any{"id": TeamID, "domain": TeamDomain},
		"container":    map[string]any{"type": "message", "message_ts": m.TS, "channel_id": channelID, "is_ephemeral": false},
		"channel":      map[string]any{"id": channelID, "name": chName},
		"message":      msg,
		"response_url": s.srv.URL + "/response/" + randomID(6),
	}
	return payload, blocks, nil
}

// ClickButton builds the block_actions payload Slack sends when userID presses the
// button with actionID and value on a stored message. It fails if the message has
// no such button.
func (s *Server) ClickButton(channelID, ts, userID, actionID, value string) (json.RawMessage, error) {
	payload, blocks, err := s.interactionBase(channelID, ts, userID)
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		for _, e := range elementsOf(b) {
			if e["type"] == "button" && e["action_id"] == actionID && e["value"] == value {
				payload["actions"] = []any{map[string]any{
					"type": "button", "action_id": actionID, "block_id": b["block_id"], "value": value,
					"text": e["text"], "style": e["style"], "action_ts": strconv.FormatFloat(float64(time.Now().UnixMicro())/1e6, 'f', 6, 64),
				}}
				payload["state"] = map[string]any{"values": map[string]any{}}
				return json.Marshal(payload)
			}
		}
	}
	return nil, fmt.Errorf("fakeslack: message %s has no button %s=%s", ts, actionID, value)
}

// ToggleCheckbox builds the block_actions payload Slack sends when userID ticks or
// unticks the option with value in the checkboxes element actionID of a stored
// message. The new selection is the element's initial_options with value toggled.
func (s *Server) ToggleCheckbox(channelID, ts, userID, actionID, value string) (json.RawMessage, error) {
	payload, blocks, err := s.interactionBase(channelID, ts, userID)
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		for _, e := range elementsOf(b) {
			if e["type"] != "checkboxes" || e["action_id"] != actionID {
				continue
			}
			opts, _ := e["options"].([]any)
			var target map[string]any
			for _, o := range opts {
				if om, ok := o.(map[string]any); ok && om["value"] == value {
					target = om
				}
			}
			if target == nil {
				continue
			}
			initial, _ := e["initial_options"].([]any)
			selected := []any{}
			was := false
			for _, o := range initial {
				if om, ok := o.(map[string]any); ok && om["value"] == value {
					was = true
					continue
				}
				selected = append(selected, o)
			}
			if !was {
				selected = append(selected, target)
			}
			// Keep Slack's order: the element's option order.
			slices.SortStableFunc(selected, func(a, b any) int {
				return indexOf(opts, a) - indexOf(opts, b)
			})
			action := map[string]any{
				"type": "checkboxes", "action_id": actionID, "block_id": b["block_id"],
				"selected_options": selected, "action_ts": strconv.FormatFloat(float64(time.Now().UnixMicro())/1e6, 'f', 6, 64),
			}
			payload["actions"] = []any{action}
			payload["state"] = map[string]any{"values": map[string]any{
				fmt.Sprint(b["block_id"]): map[string]any{actionID: map[string]any{"type": "checkboxes", "selected_options": selected}},
			}}
			return json.Marshal(payload)
		}
	}
	return nil, fmt.Errorf("fakeslack: message %s has no checkbox %s=%s", ts, actionID, value)
}

func indexOf(opts []any, o any) int {
	om, _ := o.(map[string]any)
	for i, x := range opts {
		if xm, ok := x.(map[string]any); ok && om != nil && xm["value"] == om["value"] {
			return i
		}
	}
	return len(opts)
}

// EventCallback builds an Events API event_callback payload with event id eventID
// around inner (which must carry a "type", e.g. "app_mention").
func EventCallback(eventID string, inner map[string]any) (json.RawMessage, error) {
	b, err := json.Marshal(map[string]any{ //nolint:gosec // Slack's deprecated field, a fixed fake value
		"token": "deprecated-verification-token", "team_id": TeamID, "api_app_id": "AFAKE001",
		"type": "event_callback", "event_id": eventID, "event_time": time.Now().Unix(), "event": inner,
	})
	if err != nil {
		return nil, fmt.Errorf("fakeslack: encode event: %w", err)
	}
	return b, nil
}
