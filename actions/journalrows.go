package actions

import (
	"encoding/json"

	"github.com/drbot-dev/drbot/store"
)

// The runner's Journal records every step of an execution in the audit log:
// a row of kind AuditStepStarted when the step starts and one of kind
// AuditStepFinished when it ends, both carrying a StepRecord. Actions that
// need to know what an earlier request did (rollback: did its swap happen?)
// read these rows.
const (
	AuditStepStarted  = store.AuditStepStarted
	AuditStepFinished = store.AuditStepFinished
)

// StepRecord is the data of a step's audit rows: the step's name and, when it
// finished, its JSON result or its error.
type StepRecord struct {
	Step   string          `json:"step"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}
