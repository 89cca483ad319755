// Package actiontest holds helpers for tests of actions: an in-memory Journal
// that records what Execute did, so a test can drive Execute, inspect its
// steps and progress, and simulate a crash mid-step before running it again.
package actiontest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/drbot-dev/drbot/actions"
)

// Event is one thing a Journal recorded.
type Event struct {
	Type string // "begin", "skip" (begin of a step already done), "finish", "fail", "note"
	Step string // the step name ("" for notes)
	Text string // the error of a failed step, or a note's text
}

// Journal is an in-memory actions.Journal. The zero value is not usable; use
// NewJournal. It is safe for concurrent use (Execute may report progress from
// several goroutines).
type Journal struct {
	mu       sync.Mutex
	events   []Event
	progress []actions.Progress
	done     map[string]json.RawMessage
	started  map[string]bool
	// failBegin holds errors Begin returns per step name (a journal that
	// cannot record); see FailBeginOf.
	failBegin map[string]error
}

var _ actions.Journal = (*Journal)(nil)

// NewJournal returns an empty journal.
func NewJournal() *Journal {
	return &Journal{done: map[string]json.RawMessage{}, started: map[string]bool{}, failBegin: map[string]error{}}
}

// Begin implements actions.Journal.
func (j *Journal) Begin(_ context.Context, step string) (json.RawMessage, bool, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.failBegin[step]; err != nil {
		return nil, false, false, err
	}
	if raw, ok := j.done[step]; ok {
		j.events = append(j.events, Event{Type: "skip", Step: step})
		return raw, true, true, nil
	}
	started := j.started[step]
	j.started[step] = true
	j.events = append(j.events, Event{Type: "begin", Step: step})
	return nil, false, started, nil
}

// Finish implements actions.Journal: a successful step is recorded as done
// with its JSON-encoded result; a failed one stays started.
func (j *Journal) Finish(_ context.Context, step string, result any, stepErr error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if stepErr != nil {
		j.events = append(j.events, Event{Type: "fail", Step: step, Text: stepErr.Error()})
		return nil
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("actiontest: encode result of %s: %w", step, err)
	}
	j.done[step] = raw
	j.events = append(j.events, Event{Type: "finish", Step: step})
	return nil
}

// Progress implements actions.Journal.
func (j *Journal) Progress(_ context.Context, p actions.Progress) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.progress = append(j.progress, p)
}

// Note implements actions.Journal.
func (j *Journal) Note(_ context.Context, text string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, Event{Type: "note", Text: text})
}

// FailBeginOf makes Begin of step fail with err (nil clears it).
func (j *Journal) FailBeginOf(step string, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err == nil {
		delete(j.failBegin, step)
		return
	}
	j.failBegin[step] = err
}

// MarkStarted records step as begun but not finished, as if an earlier
// attempt crashed in the middle of it.
func (j *Journal) MarkStarted(step string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.started[step] = true
}

// MarkDone records step as done with result, as if an earlier attempt
// finished it.
func (j *Journal) MarkDone(step string, result any) error {
	raw, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("actiontest: encode result of %s: %w", step, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.started[step] = true
	j.done[step] = raw
	return nil
}

// Events returns a copy of what was recorded, in order.
func (j *Journal) Events() []Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events)
}

// Ran returns the steps that began and ran (not skipped), in order.
func (j *Journal) Ran() []string {
	return j.stepsOf("begin")
}

// Finished returns the steps that finished successfully, in order.
func (j *Journal) Finished() []string {
	return j.stepsOf("finish")
}

// Skipped returns the steps Begin reported as already done, in order.
func (j *Journal) Skipped() []string {
	return j.stepsOf("skip")
}

// Failed returns the steps that failed, in order.
func (j *Journal) Failed() []string {
	return j.stepsOf("fail")
}

func (j *Journal) stepsOf(typ string) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, e := range j.events {
		if e.Type == typ {
			out = append(out, e.Step)
		}
	}
	return out
}

// Notes returns the notes, in order.
func (j *Journal) Notes() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, e := range j.events {
		if e.Type == "note" {
			out = append(out, e.Text)
		}
	}
	return out
}

// Done reports whether step finished successfully and returns its recorded
// result.
func (j *Journal) Done(step string) (json.RawMessage, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	raw, ok := j.done[step]
	return raw, ok
}

// ProgressReports returns the progress reports, in order.
func (j *Journal) ProgressReports() []actions.Progress {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.progress)
}

// LastProgress returns the last progress report of step.
func (j *Journal) LastProgress(step string) (actions.Progress, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := len(j.progress) - 1; i >= 0; i-- {
		if j.progress[i].Step == step {
			return j.progress[i], true
		}
	}
	return actions.Progress{}, false
}
