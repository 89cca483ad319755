package commands

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/bot/chat"
)

// Channels the fixture's Deps know.
const (
	chanInflow = "C-INC-INFLOW" // the incident channel of inflow
	chanLSTM   = "C-INC-LSTM"   // the incident channel of lstm-pfd
	chanBroken = "C-BROKEN"     // ServiceForChannel fails
	chanOps    = "C-OPS"        // not an incident channel
)

var errStoreDown = errors.New("connection refused")

// fixtureDeps is a tiny in-memory channel → incident map (the real one is the
// store; Deps are plain functions, so a map is the real thing for the parser).
func fixtureDeps() Deps {
	incidents := map[string]string{chanInflow: "inflow", chanLSTM: "lstm-pfd"}
	return Deps{
		Services: func() []string { return []string{"lstm-pfd", "inflow"} },
		ServiceForChannel: func(ctx context.Context, channel string) (string, bool, error) {
			if err := ctx.Err(); err != nil {
				return "", false, err
			}
			if channel == chanBroken {
				return "", false, errStoreDown
			}
			svc, ok := incidents[channel]
			return svc, ok, nil
		},
		Requests: &echoRequests{},
	}
}

// echo is a Run that describes the call it got, so tests can assert binding.
func echo(_ context.Context, c *Call) (chat.Message, error) {
	return chat.Plain(describeCall(c)), nil
}

// echoPlan is a Plan whose summary describes the call it got; dispatch
// submits it (echoRequests answers with the summary) or, with --dry-run,
// shows it.
func echoPlan(_ context.Context, c *Call) (actions.Plan, error) {
	return actions.Plan{Summary: describeCall(c)}, nil
}

// echoRequests answers a submission with its plan's summary.
type echoRequests struct{ submissions }

func (e *echoRequests) Submit(ctx context.Context, s Submission) (chat.Message, error) {
	if _, err := e.submissions.Submit(ctx, s); err != nil {
		return chat.Message{}, err
	}
	return chat.Plain(s.Plan.Summary), nil
}

func describeCall(c *Call) string {
	var parts []string
	parts = append(parts, c.Command.Name)
	if c.Service != "" {
		parts = append(parts, "service="+c.Service)
	}
	for _, a := range c.Command.Args {
		if v, ok := c.Args[a.Name]; ok {
			parts = append(parts, fmt.Sprintf("%s=%q", a.Name, v))
		}
	}
	if len(c.Rest) > 0 {
		parts = append(parts, fmt.Sprintf("rest=%q", c.Rest))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Flags)) {
		mark := ""
		if c.Has(k) {
			mark = "!"
		}
		parts = append(parts, fmt.Sprintf("--%s%s=%q", k, mark, c.Flags[k]))
	}
	return strings.Join(parts, " ")
}

// fixtureCommands is a representative set covering every usage shape: service
// implied or none, required/optional/variadic args, bool and value flags with
// and without defaults, approval or not.
func fixtureCommands() []Command {
	return []Command{
		{
			Name:        "status",
			Summary:     "Show a service's health, latest backups and replication lag",
			Description: "Read-only: checks every health endpoint, the newest backup object and the replica's lag.",
			Service:     ServiceImplied,
			Flags:       []Flag{{Name: "verbose", Help: "Show every check, not only failures.", Bool: true}},
			Examples:    []string{"/dr status", "/dr status lstm-pfd --verbose"},
			Run:         echo,
		},
		{
			Name:    "restore-db",
			Summary: "Restore a database from a backup",
			Description: "Plans the restore (which backup object and version, which database), waits for approval, " +
				"restores with pg_restore and verifies row counts and health checks.",
			Service:  ServiceImplied,
			Approval: true,
			Flags: []Flag{
				{Name: "db", Help: "Database to restore.", Default: "main", Value: "NAME"},
				{Name: "backup", Help: "Backup object key; the newest backup if omitted.", Value: "KEY"},
				{Name: "dry-run", Help: "Show the plan only.", Bool: true},
				{Name: "reason", Help: "Why; recorded in the audit log.", Value: "TEXT"},
			},
			Examples: []string{
				"/dr restore-db inflow --dry-run",
				`/dr restore-db lstm-pfd --backup daily/2026-11-02.dump --reason "db corrupted at 14:02"`,
			},
			Plan: echoPlan,
		},
		{
			Name:        "failover",
			Summary:     "Promote the replica and point DNS at it",
			Description: "Promotes the read replica (or the named one) and switches the service's DNS record.",
			Service:     ServiceImplied,
			Approval:    true,
			Args:        []Arg{{Name: "replica", Help: "Replica to promote; the configured one if omitted.", Optional: true}},
			Flags:       []Flag{{Name: "reason", Help: "Why; recorded in the audit log.", Value: "TEXT"}},
			Examples:    []string{"/dr failover inflow", "/dr failover inflow inflow-replica-2 --reason 'primary AZ down'"},
			Plan:        echoPlan,
		},
		{
			Name:     "scale",
			Summary:  "Scale a deployment",
			Service:  ServiceImplied,
			Approval: true,
			Args: []Arg{
				{Name: "deployment", Help: "Kubernetes deployment."},
				{Name: "replicas", Help: "Desired replica count."},
			},
			Flags:    []Flag{{Name: "wait", Help: "Wait for the rollout to finish.", Bool: true, Default: "true"}},
			Examples: []string{"/dr scale inflow api 6", "/dr scale inflow api 0 --wait=false"},
			Plan:     echoPlan,
		},
		{
			Name:     "note",
			Summary:  "Add a note to the incident timeline",
			Args:     []Arg{{Name: "text", Help: "The note.", Variadic: true}},
			Examples: []string{"/dr note restored from the 14:00 backup"},
			Run:      echo,
		},
		{
			Name:    "who",
			Summary: "Show who is on call",
			Args:    []Arg{{Name: "team", Help: "Team name.", Optional: true}, {Name: "more", Optional: true, Variadic: true}},
			Run:     echo,
		},
	}
}

func newFixtureRegistry() *Registry {
	r := NewRegistry(fixtureDeps())
	for _, c := range fixtureCommands() {
		r.MustRegister(c)
	}
	return r
}

// renderPlain renders a message as plain text for golden files: a test-only
// renderer (adapters own real rendering).
func renderPlain(m chat.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "text: %s\nephemeral: %t\n", m.Text, m.Ephemeral)
	for _, blk := range m.Blocks {
		b.WriteString("\n")
		switch v := blk.(type) {
		case chat.Header:
			fmt.Fprintf(&b, "# %s\n", v.Text)
		case chat.Text:
			fmt.Fprintf(&b, "%s\n", v.Text)
		case chat.Fields:
			for _, f := range v.Fields {
				fmt.Fprintf(&b, "  %-16s %s\n", f.Label, f.Value)
			}
		case chat.Context:
			fmt.Fprintf(&b, "> %s\n", v.Text)
		case chat.Actions:
			for _, bt := range v.Buttons {
				fmt.Fprintf(&b, "[%s] (%s=%s)\n", bt.Label, bt.ActionID, bt.Value)
			}
		case chat.Checklist:
			fmt.Fprintf(&b, "%s\n", v.Title)
			for _, it := range v.Items {
				mark := " "
				if it.Done {
					mark = "x"
				}
				fmt.Fprintf(&b, "[%s] %s\n", mark, it.Label)
			}
		case chat.Progress:
			fmt.Fprintf(&b, "%s: %d/%d %s\n", v.Label, v.Done, v.Total, v.Unit)
		default:
			fmt.Fprintf(&b, "<unknown block %T>\n", v)
		}
	}
	return b.String()
}
