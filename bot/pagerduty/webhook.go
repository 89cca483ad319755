package pagerduty

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/PagerDuty/go-pagerduty/webhookv3"

	"github.com/drbot-dev/drbot/bot/incident"
)

// MaxWebhookBytes is the largest webhook body accepted (PagerDuty's own limit
// for signature verification); larger bodies get 413.
const MaxWebhookBytes = 2 << 20

// SignatureHeader is the header carrying a v3 webhook's signatures.
const SignatureHeader = "X-PagerDuty-Signature"

// WebhookOptions configures WebhookHandler.
type WebhookOptions struct {
	// Secrets are the accepted signing secrets; more than one during rotation.
	// ParseSecrets splits PAGERDUTY_WEBHOOK_SECRET into this list.
	Secrets []string
	// Ingest durably records an event (and deduplicates by DeliveryID). The
	// handler answers 202 only when it returns nil, 500 otherwise so that
	// PagerDuty retries.
	Ingest func(ctx context.Context, ev incident.Event) error
	// Logger receives one line per rejected or failed delivery; nil = slog.Default().
	Logger *slog.Logger
}

// ParseSecrets splits a comma-separated secret list (PAGERDUTY_WEBHOOK_SECRET),
// trimming spaces and dropping empty entries.
func ParseSecrets(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// WebhookHandler serves POST /webhooks/pagerduty: it verifies the v3 signature
// against every configured secret, decodes the event and hands it to Ingest.
// It never logs secrets or bodies.
// A nil Ingest is a wiring bug and panics here, at start-up.
func WebhookHandler(opts WebhookOptions) http.Handler {
	if opts.Ingest == nil {
		panic("pagerduty: WebhookHandler needs WebhookOptions.Ingest")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "pagerduty-webhook")
	secrets := make([]string, 0, len(opts.Secrets))
	for _, s := range opts.Secrets {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST for PagerDuty webhooks", http.StatusMethodNotAllowed)
			return
		}
		if r.Header.Get(SignatureHeader) == "" {
			logger.WarnContext(r.Context(), "rejected PagerDuty webhook: no signature header", "remote", r.RemoteAddr)
			http.Error(w, "missing "+SignatureHeader+" header", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				logger.WarnContext(r.Context(), "rejected PagerDuty webhook: body too large", "limit_bytes", MaxWebhookBytes)
				http.Error(w, "webhook body larger than 2 MB", http.StatusRequestEntityTooLarge)
				return
			}
			logger.WarnContext(r.Context(), "could not read PagerDuty webhook body", "err", err)
			http.Error(w, "could not read request body", http.StatusBadRequest)
			return
		}
		if !verify(r, body, secrets) {
			if len(secrets) == 0 {
				logger.ErrorContext(r.Context(), "rejected PagerDuty webhook: PAGERDUTY_WEBHOOK_SECRET is not configured")
			} else {
				logger.WarnContext(r.Context(), "rejected PagerDuty webhook: signature matches no configured secret", "remote", r.RemoteAddr)
			}
			http.Error(w, "invalid webhook signature", http.StatusUnauthorized)
			return
		}
		ev, err := Decode(body)
		if errors.Is(err, ErrPing) {
			w.WriteHeader(http.StatusOK)
			return
		}
		if err != nil {
			logger.WarnContext(r.Context(), "rejected PagerDuty webhook", "reason", err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := opts.Ingest(r.Context(), ev); err != nil {
			logger.ErrorContext(r.Context(), "could not record PagerDuty webhook; PagerDuty will retry",
				"delivery_id", ev.DeliveryID, "kind", ev.Kind, "incident", ev.PagerDutyID, "err", err)
			http.Error(w, "could not record the event; please retry", http.StatusInternalServerError)
			return
		}
		logger.DebugContext(r.Context(), "accepted PagerDuty webhook",
			"delivery_id", ev.DeliveryID, "kind", ev.Kind, "incident", ev.PagerDutyID)
		w.WriteHeader(http.StatusAccepted)
	})
}

// verify reports whether any v1= signature in the request matches body under
// any secret. webhookv3.VerifySignature compares in constant time; every secret
// is tried so timing does not reveal which one matched.
func verify(r *http.Request, body []byte, secrets []string) bool {
	ok := false
	for _, s := range secrets {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if webhookv3.VerifySignature(r, s) == nil {
			ok = true
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return ok
}
