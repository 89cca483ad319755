package restoredb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/drbot-dev/drbot/actions"
)

// journal is a real actions.Journal for tests: it records begins, finishes,
// notes and progress in memory and, when path is set, persists its state to
// a JSON file after every change, so a test can kill the process running
// Execute and run Execute again with the same journal from another process.
// A failed step stays started (not done), like the runner's journal.
type journal struct {
	mu   sync.Mutex
	path string
	st   journalState
	// crashBegin / crashFinish panic (an in-process "kill") when Begin or
	// Finish is called for that step; crashProgress SIGKILLs the process at
	// the first progress report (set in the child process).
	crashBegin, crashFinish string
	crashProgress           func()
}

type journalState struct {
	Done     map[string]json.RawMessage `json:"done"`
	Started  map[string]bool            `json:"started"`
	Events   []string                   `json:"events"` // "begin X", "finish X", "fail X: err", "skip X"
	Notes    []string                   `json:"notes"`
	Progress []actions.Progress         `json:"progress"`
}

// crash is what the in-process crash panics with.
type crash struct{ at string }

func newJournal(path string) *journal {
	j := &journal{path: path, st: journalState{Done: map[string]json.RawMessage{}, Started: map[string]bool{}}}
	if path != "" {
		if b, err := os.ReadFile(path); err == nil {
			if err := json.Unmarshal(b, &j.st); err != nil {
				panic(err)
			}
		}
	}
	return j
}

func (j *journal) save() {
	if j.path == "" {
		return
	}
	b, err := json.Marshal(j.st)
	if err != nil {
		panic(err)
	}
	tmp := j.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		panic(err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		panic(err)
	}
}

func (j *journal) Begin(_ context.Context, step string) (json.RawMessage, bool, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if raw, ok := j.st.Done[step]; ok {
		j.st.Events = append(j.st.Events, "skip "+step)
		j.save()
		return raw, true, true, nil
	}
	if step == j.crashBegin {
		panic(crash{at: "begin " + step})
	}
	started := j.st.Started[step]
	j.st.Started[step] = true
	j.st.Events = append(j.st.Events, "begin "+step)
	j.save()
	return nil, false, started, nil
}

func (j *journal) Finish(_ context.Context, step string, result any, stepErr error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if step == j.crashFinish {
		panic(crash{at: "finish " + step})
	}
	if stepErr != nil {
		j.st.Events = append(j.st.Events, fmt.Sprintf("fail %s: %v", step, stepErr))
		j.save()
		return nil
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return err
	}
	j.st.Done[step] = raw
	j.st.Events = append(j.st.Events, "finish "+step)
	j.save()
	return nil
}

func (j *journal) Progress(_ context.Context, p actions.Progress) {
	j.mu.Lock()
	j.st.Progress = append(j.st.Progress, p)
	j.save()
	kill := j.crashProgress
	j.mu.Unlock()
	if kill != nil && p.Done > 0 {
		kill()
	}
}

func (j *journal) Note(_ context.Context, text string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.st.Notes = append(j.st.Notes, text)
	j.save()
}

func (j *journal) events() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.st.Events)
}

func (j *journal) notes() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.st.Notes)
}

func (j *journal) lastProgress() (actions.Progress, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.st.Progress) == 0 {
		return actions.Progress{}, false
	}
	return j.st.Progress[len(j.st.Progress)-1], true
}

// ran reports whether step began (and was not merely skipped).
func (j *journal) ran(step string) bool {
	return slices.Contains(j.events(), "begin "+step)
}
