package demo_test

import (
	"context"
	"encoding/json"

	"github.com/drbot-dev/drbot/actions"
)

// journal is a small in-memory actions.Journal.
type journal struct {
	done    map[string]json.RawMessage
	started map[string]bool
	notes   []string
}

func newJournal() *journal {
	return &journal{done: map[string]json.RawMessage{}, started: map[string]bool{}}
}

func (j *journal) Begin(_ context.Context, step string) (json.RawMessage, bool, bool, error) {
	if raw, ok := j.done[step]; ok {
		return raw, true, true, nil
	}
	started := j.started[step]
	j.started[step] = true
	return nil, false, started, nil
}

func (j *journal) Finish(_ context.Context, step string, result any, stepErr error) error {
	if stepErr != nil {
		return nil //nolint:nilerr // a failed step stays started, not done; recording it succeeded
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return err
	}
	j.done[step] = raw
	return nil
}

func (j *journal) Progress(context.Context, actions.Progress) {}

func (j *journal) Note(_ context.Context, text string) { j.notes = append(j.notes, text) }
