package incident

// The outbox: a message that cannot be posted now is handed to a River job
// that retries it with backoff until it goes out, so no message is dropped.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/store"
)

// wireBlock is a chat.Block in JSON, tagged with its type.
type wireBlock struct {
	Type     string           `json:"type"`
	Text     string           `json:"text,omitempty"`
	Fields   []chat.Field     `json:"fields,omitempty"`
	Buttons  []chat.Button    `json:"buttons,omitempty"`
	ActionID string           `json:"action_id,omitempty"`
	Items    []chat.CheckItem `json:"items,omitempty"`
	Label    string           `json:"label,omitempty"`
	Done     int64            `json:"done,omitempty"`
	Total    int64            `json:"total,omitempty"`
	Unit     string           `json:"unit,omitempty"`
}

type wireMessage struct {
	Text      string      `json:"text"`
	Blocks    []wireBlock `json:"blocks,omitempty"`
	Ephemeral bool        `json:"ephemeral,omitempty"`
}

// EncodeMessage turns m into JSON that DecodeMessage reads back.
func EncodeMessage(m chat.Message) (json.RawMessage, error) {
	w := wireMessage{Text: m.Text, Ephemeral: m.Ephemeral}
	for _, b := range m.Blocks {
		var wb wireBlock
		switch b := b.(type) {
		case chat.Header:
			wb = wireBlock{Type: "header", Text: b.Text}
		case chat.Text:
			wb = wireBlock{Type: "text", Text: b.Text}
		case chat.Fields:
			wb = wireBlock{Type: "fields", Fields: b.Fields}
		case chat.Actions:
			wb = wireBlock{Type: "actions", Buttons: b.Buttons}
		case chat.Checklist:
			wb = wireBlock{Type: "checklist", ActionID: b.ActionID, Text: b.Title, Items: b.Items}
		case chat.Progress:
			wb = wireBlock{Type: "progress", Label: b.Label, Done: b.Done, Total: b.Total, Unit: b.Unit}
		case chat.Context:
			wb = wireBlock{Type: "context", Text: b.Text}
		case chat.Alert:
			wb = wireBlock{Type: "alert", Text: b.Text}
		default:
			return nil, fmt.Errorf("encode message: unknown block type %T", b)
		}
		w.Blocks = append(w.Blocks, wb)
	}
	return json.Marshal(w)
}

// DecodeMessage reads a message written by EncodeMessage.
func DecodeMessage(raw json.RawMessage) (chat.Message, error) {
	var w wireMessage
	if err := json.Unmarshal(raw, &w); err != nil {
		return chat.Message{}, fmt.Errorf("decode message: %w", err)
	}
	m := chat.Message{Text: w.Text, Ephemeral: w.Ephemeral}
	for _, b := range w.Blocks {
		switch b.Type {
		case "header":
			m.Blocks = append(m.Blocks, chat.Header{Text: b.Text})
		case "text":
			m.Blocks = append(m.Blocks, chat.Text{Text: b.Text})
		case "fields":
			m.Blocks = append(m.Blocks, chat.Fields{Fields: b.Fields})
		case "actions":
			m.Blocks = append(m.Blocks, chat.Actions{Buttons: b.Buttons})
		case "checklist":
			m.Blocks = append(m.Blocks, chat.Checklist{ActionID: b.ActionID, Title: b.Text, Items: b.Items})
		case "progress":
			m.Blocks = append(m.Blocks, chat.Progress{Label: b.Label, Done: b.Done, Total: b.Total, Unit: b.Unit})
		case "context":
			m.Blocks = append(m.Blocks, chat.Context{Text: b.Text})
		case "alert":
			m.Blocks = append(m.Blocks, chat.Alert{Text: b.Text})
		default:
			return chat.Message{}, fmt.Errorf("decode message: unknown block type %q", b.Type)
		}
	}
	return m, nil
}

// postJob is a job that posts m to the channel of incident id (once it has one).
func postJob(incidentID int64, m chat.Message) (store.Job, error) {
	raw, err := EncodeMessage(m)
	if err != nil {
		return store.Job{}, err
	}
	return store.Job{Args: PostArgs{IncidentID: incidentID, Message: raw}}, nil
}

// channelNotReadySnooze is how long a post waits for its incident's channel.
const channelNotReadySnooze = 2 * time.Second

// runPost is the incident.post worker: it posts, and an error makes River
// retry it with backoff.
func (b *Lifecycle) runPost(ctx context.Context, a PostArgs) error {
	m, err := DecodeMessage(a.Message)
	if err != nil {
		return river.JobCancel(err) // a malformed job never gets better
	}
	channel := a.Channel
	if channel == "" {
		inc, err := b.store.Incident(ctx, a.IncidentID)
		if err != nil {
			return err
		}
		if inc.Channel == "" {
			return river.JobSnooze(channelNotReadySnooze)
		}
		channel = inc.Channel
	}
	if a.User != "" {
		return b.chat.PostEphemeral(ctx, channel, a.User, m)
	}
	_, err = b.chat.Post(ctx, channel, m)
	return err
}

// Deliver posts m in channel (ephemerally to user when user is set). When the
// post fails it is handed to a job that retries it; the error is returned only
// when neither worked.
func (b *Lifecycle) Deliver(ctx context.Context, channel, user string, m chat.Message) error {
	var err error
	if user != "" {
		err = b.chat.PostEphemeral(ctx, channel, user, m)
	} else {
		_, err = b.chat.Post(ctx, channel, m)
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	raw, encErr := EncodeMessage(m)
	if encErr != nil {
		return errors.Join(err, encErr)
	}
	if qerr := b.lc.st.InsertJobs(ctx, store.Job{Args: PostArgs{Channel: channel, User: user, Message: raw}}); qerr != nil {
		return fmt.Errorf("post failed (%w) and could not be queued for retry: %w", err, qerr)
	}
	b.log.WarnContext(ctx, "message not posted; a job will retry it", "channel", channel, "err", err)
	return nil
}

// say posts m in the incident's channel now, or through a retrying job.
func (b *Lifecycle) say(ctx context.Context, inc store.Incident, m chat.Message) error {
	if inc.Channel == "" {
		j, err := postJob(inc.ID, m)
		if err != nil {
			return err
		}
		return b.lc.st.InsertJobs(ctx, j)
	}
	return b.Deliver(ctx, inc.Channel, "", m)
}
