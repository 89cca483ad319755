package playbook

import "github.com/drbot-dev/drbot/actions"

// Kind is the playbook command's name and the kind of its requests.
const Kind = "playbook"

// resumeWord is the name argument that continues a failed playbook request.
const resumeWord = "resume"

// The arguments of /dr playbook: declared once, read through these
// declarations, shown by /dr help.
var (
	argName    = actions.Arg{Name: "name", Help: "The playbook to run (playbooks: of the service), or resume to continue a failed playbook request."}
	argRequest = actions.Arg{Name: "request", Help: "With resume: the number of the failed playbook request to continue from its failed step.", Optional: true}
)

// Command declares /dr playbook.
var Command = actions.Command{
	Name:    Kind,
	Summary: "Run a multi-step recovery playbook (one plan, one approval, resumable)",
	Description: "Plans every step of the service's playbook up front (each action step with the service's config, each command " +
		"with its argv, timeout and the names of the environment variables it gets) and posts one card with the whole procedure. " +
		"One approval covers it: the plan needs as many approvals as its most demanding step. Steps run in order, each with its " +
		"own progress and verification; the first failure stops the playbook and the card says what ran, what failed and what " +
		"did not run. `/dr playbook resume <request>` continues a failed playbook request from its failed step after a new approval.",
	Approval:    true,
	ServiceLast: true,
	Args:        []actions.Arg{argName, argRequest},
	Examples: []string{
		"/dr playbook cluster-recovery lstm-pfd --dry-run",
		"/dr playbook cluster-recovery",
		"/dr playbook resume 42",
	},
}

// Command implements actions.Action.
func (*Action) Command() actions.Command { return Command }
