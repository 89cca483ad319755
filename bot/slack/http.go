package slack

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// maxBody is the largest request body read from Slack (1 MiB).
const maxBody = 1 << 20

// HTTPHandlers serves Slack's HTTP-mode deliveries. Every request is size-limited
// and its v0 signature (with Slack's 5-minute timestamp window) is checked before
// anything else; commands and interactions are acknowledged at once and handled
// in the background.
type HTTPHandlers struct {
	secret string
	d      *dispatcher
	log    *slog.Logger
}

// NewHTTPHandlers builds the HTTP-mode handlers from opts (SigningSecret,
// Handler, Client, Logger, Now, HandlerTimeout).
func NewHTTPHandlers(opts Options) (*HTTPHandlers, error) {
	if opts.SigningSecret == "" {
		return nil, errors.New("slack: signing secret is empty: set SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode)")
	}
	d, err := newDispatcher(opts)
	if err != nil {
		return nil, err
	}
	return &HTTPHandlers{secret: opts.SigningSecret, d: d, log: d.log}, nil
}

// Wait blocks until handler runs started by requests so far have finished.
func (h *HTTPHandlers) Wait() { h.d.wait() }

// verified reads the body (≤ 1 MiB) and checks its signature. On failure it has
// already answered and returns nil.
func (h *HTTPHandlers) verified(w http.ResponseWriter, r *http.Request) []byte {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return nil
		}
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return nil
	}
	sv, err := slack.NewSecretsVerifier(r.Header, h.secret)
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		h.log.Warn("slack: rejected unsigned or badly signed request", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err.Error())
		http.Error(w, "invalid Slack signature", http.StatusUnauthorized)
		return nil
	}
	return body
}

// Commands handles POST /slack/commands.
func (h *HTTPHandlers) Commands() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := h.verified(w, r)
		if body == nil {
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			http.Error(w, "malformed slash command form", http.StatusBadRequest)
			return
		}
		sc := slack.SlashCommand{
			Command: form.Get("command"), Text: form.Get("text"),
			UserID: form.Get("user_id"), UserName: form.Get("user_name"),
			ChannelID: form.Get("channel_id"), ChannelName: form.Get("channel_name"),
			TeamID: form.Get("team_id"), TriggerID: form.Get("trigger_id"), ResponseURL: form.Get("response_url"),
		}
		if sc.UserID == "" || sc.ChannelID == "" {
			http.Error(w, "slash command without user or channel", http.StatusBadRequest)
			return
		}
		h.d.slash(sc)
		// An empty 200 within 3 s is the ack; the reply follows via the Web API.
		w.WriteHeader(http.StatusOK)
	})
}

// Interactions handles POST /slack/interactions.
func (h *HTTPHandlers) Interactions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := h.verified(w, r)
		if body == nil {
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("payload") == "" {
			http.Error(w, "interaction without payload", http.StatusBadRequest)
			return
		}
		var cb slack.InteractionCallback
		if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
			http.Error(w, "malformed interaction payload", http.StatusBadRequest)
			return
		}
		h.d.interaction(cb)
		w.WriteHeader(http.StatusOK)
	})
}

// Events handles POST /slack/events, including the url_verification challenge.
// Redeliveries (X-Slack-Retry-Num) of an event already seen are acked only.
func (h *HTTPHandlers) Events() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := h.verified(w, r)
		if body == nil {
			return
		}
		ev, err := slackevents.ParseEvent(body, slackevents.OptionNoVerifyToken())
		if err != nil {
			http.Error(w, "malformed event", http.StatusBadRequest)
			return
		}
		switch ev.Type {
		case slackevents.URLVerification:
			uv, ok := ev.Data.(*slackevents.EventsAPIURLVerificationEvent)
			if !ok {
				http.Error(w, "malformed url_verification", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, uv.Challenge)
			return
		case slackevents.CallbackEvent:
			if retry := r.Header.Get("X-Slack-Retry-Num"); retry != "" {
				h.log.Info("slack: event redelivery", "retry", retry, "reason", r.Header.Get("X-Slack-Retry-Reason"))
			}
			h.d.event(ev)
		}
		w.WriteHeader(http.StatusOK)
	})
}
