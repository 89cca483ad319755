package actions

import "time"

// Diagnosis is the domain report of /dr diagnose (actions/diagnose finds,
// commands renders): one Finding per thing looked at, in a stable order, and
// the parts that could not be looked at because they are not configured.
type Diagnosis struct {
	Service  string
	Findings []Finding
	// NotConfigured names the parts drbot has no access to or the runbook
	// does not describe ("Kubernetes: no KUBECONFIG and not running in a
	// cluster"); they are reported, never a failure of the command.
	NotConfigured []string
	// Elapsed is how long the whole diagnosis took; Deadline its bound.
	Elapsed  time.Duration
	Deadline time.Duration
}

// Failed returns the findings that failed.
func (d Diagnosis) Failed() []Finding {
	var out []Finding
	for _, f := range d.Findings {
		if f.Status == StatusFail {
			out = append(out, f)
		}
	}
	return out
}

// Count returns how many findings have status s.
func (d Diagnosis) Count(s FindingStatus) int {
	n := 0
	for _, f := range d.Findings {
		if f.Status == s {
			n++
		}
	}
	return n
}

// FindingStatus is a finding's verdict.
type FindingStatus string

// Finding statuses.
const (
	StatusOK   FindingStatus = "ok"
	StatusWarn FindingStatus = "warn" // works, but e.g. the newest backup is older than its interval
	StatusFail FindingStatus = "fail"
)

// Finding is one thing diagnose looked at and what it saw. Every text is
// user-safe: never a credential, a database URL or a token.
type Finding struct {
	Area   string        // aws, backups, database, pods, pvc, model, vault
	Name   string        // what was looked at, e.g. "lstm_pfd backups", "pod lstm-pfd-0"
	Status FindingStatus //
	Detail string        // what was observed, e.g. "newest db/x.dump, 3h12m old (every 24h)"
	// Logs are the last log lines of a failing pod's container, oldest first.
	Logs []string `json:",omitempty"`
	// Remedy is what the runbook says to do about it (set when not OK).
	Remedy *Remedy `json:",omitempty"`
	// Latency is how long the check took.
	Latency time.Duration
}

// Remedy is the runbook's advice for a finding: Source names the runbook
// section (empty: drbot's own advice, the runbooks say nothing about it),
// Steps quote it (with the service's names filled in), and Command is the
// drbot command that does the recovery, when there is one.
type Remedy struct {
	Source  string       // e.g. `runbook 001, Appendix A.1 "Backup Download Fails"`
	Steps   []RemedyStep //
	Command string       `json:",omitempty"` // e.g. "/dr restore-vault inflow"
}

// RemedyStep is one step of a remedy: what to do and, when the runbook
// gives one, the command line that does it.
type RemedyStep struct {
	Say string // e.g. "Check AWS credentials"
	Run string `json:",omitempty"` // e.g. "aws sts get-caller-identity"
}

// String is the step as one line: "Check AWS credentials: aws sts get-caller-identity".
func (s RemedyStep) String() string {
	if s.Run == "" {
		return s.Say
	}
	return s.Say + ": " + s.Run
}
