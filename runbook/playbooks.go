package runbook

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultStepTimeout bounds a playbook run: step that sets no timeout.
const DefaultStepTimeout = 10 * time.Minute

// Playbook is a multi-step procedure (runbook 001 §3 "Complete Cluster
// Recovery"): planned whole, approved once, run step by step, resumable from
// the step that failed.
type Playbook struct {
	Name        string // lowercase letters, digits and hyphens, e.g. cluster-recovery; /dr playbook <name>
	Description string // one line shown on the card, e.g. Complete cluster recovery (runbook section 3)
	Steps       []PlaybookStep

	line int    // where it is written, for messages
	path string // key path, for messages
}

// PlaybookStep is one step of a playbook: either Action (a recovery action
// planned with the service's config) or Run (a command). Exactly one is set.
type PlaybookStep struct {
	Name string // shown on the card; defaults to the action's name for action steps
	// Action is a recovery action kind: restore-db, restore-models, redeploy,
	// restore-vault, failover, rollout-restart, scale or verify.
	Action string
	// Args are the action's arguments as typed after /dr <action>, e.g.
	// [deployment/lstm-pfd-dashboard] for rollout-restart or
	// [--backup, lstm_pfd_20260115.dump] for restore-db.
	Args []string
	// Run is a command as an argv list, run without a shell, e.g.
	// [terraform, -chdir=infrastructure, apply, -auto-approve]. Trusted
	// operator text from this file; never text typed in chat.
	Run     []string
	Timeout Duration // how long a run: step may take; default 10m
	// EnvFrom names environment variables of the bot passed to the command;
	// their values are never shown or logged. The command otherwise gets a
	// minimal environment (PATH, HOME, TMPDIR, LANG).
	EnvFrom []string
	// Drill runs this run: step during a drill too; by default a drill skips
	// run: steps and lists them.
	Drill bool
}

// StepTimeout returns the step's timeout, DefaultStepTimeout when not set.
func (s PlaybookStep) StepTimeout() Duration {
	if s.Timeout.Duration > 0 {
		return s.Timeout
	}
	return Duration{Duration: DefaultStepTimeout}
}

// PlaybookActions are the action kinds a playbook step may name.
var PlaybookActions = []string{
	"restore-db", "restore-models", "redeploy", "restore-vault", "failover",
	"rollout-restart", "scale", "verify",
}

// Playbook returns the service's playbook called name.
func (s *Service) Playbook(name string) (*Playbook, bool) {
	if s == nil {
		return nil, false
	}
	for i := range s.Playbooks {
		if s.Playbooks[i].Name == name {
			return &s.Playbooks[i], true
		}
	}
	return nil, false
}

// playbooks decodes a service's playbooks list.
func (d *decoder) playbooks(f *fields, path string) []Playbook {
	var out []Playbook
	names := map[string]int{}
	for i, item := range f.list("playbooks") {
		p := index(child(path, "playbooks"), i)
		pf := d.mapping(item, p, "name", "description", "steps")
		if pf == nil {
			if isNull(d.resolve(item)) {
				d.addf(item.Line, p, "empty playbook (want a name and steps)")
			}
			continue
		}
		pb := Playbook{line: item.Line, path: p}
		if name, ok := pf.required("name", "a short lowercase name such as cluster-recovery; /dr playbook <name> runs it"); ok {
			line := pf.get("name").Line
			switch {
			case !serviceNameRE.MatchString(name):
				d.addf(line, child(p, "name"), "%s is not a valid playbook name: use lowercase letters, digits and hyphens (it is typed as /dr playbook <name>)", fmtQuote(name))
			case slices.Contains(ActionKinds, name) || name == "resume":
				d.addf(line, child(p, "name"), "%s is an action's name; call the playbook something else (scenarios and drills name actions and playbooks alike)", fmtQuote(name))
			default:
				if first, dup := names[name]; dup {
					d.addf(line, child(p, "name"), "duplicate playbook name %q in this service (first at line %d)", name, first)
				}
				names[name] = line
				pb.Name = name
			}
		}
		pb.Description, _ = pf.str("description")
		steps := pf.list("steps")
		if len(steps) == 0 {
			pf.missing("steps", "the procedure's steps, each an action: (restore-db, …) or a run: [argv]")
		}
		stepNames := map[string]int{}
		for j, sn := range steps {
			st, ok := d.playbookStep(sn, index(child(p, "steps"), j))
			if !ok {
				continue
			}
			if first, dup := stepNames[st.Name]; dup {
				d.addf(sn.Line, index(child(p, "steps"), j), "duplicate step name %q in this playbook (first at line %d); give the step a name:", st.Name, first)
			}
			stepNames[st.Name] = sn.Line
			pb.Steps = append(pb.Steps, st)
		}
		out = append(out, pb)
	}
	return out
}

func (d *decoder) playbookStep(n *yaml.Node, path string) (PlaybookStep, bool) {
	var st PlaybookStep
	sf := d.mapping(n, path, "name", "action", "args", "run", "timeout", "env_from", "drill")
	if sf == nil {
		if isNull(d.resolve(n)) {
			d.addf(n.Line, path, "empty step (want action: or run:)")
		}
		return st, false
	}
	st.Name, _ = sf.str("name")
	hasAction, hasRun := sf.has("action"), sf.has("run")
	switch {
	case hasAction && hasRun:
		d.addf(sf.line, path, "a step has either action: or run:, not both")
		return st, false
	case !hasAction && !hasRun:
		d.addf(sf.line, path, "missing action: (one of %s) or run: (a command as a list)", strings.Join(PlaybookActions, ", "))
		return st, false
	case hasAction:
		st.Action, _ = sf.check("action", func(v string) error {
			if !slices.Contains(PlaybookActions, v) {
				return fmt.Errorf("%s is not an action a playbook can run (want one of %s)", fmtQuote(v), strings.Join(PlaybookActions, ", "))
			}
			return nil
		})
		if st.Action == "" {
			return st, false
		}
		st.Args = sf.strings("args", nil)
		if st.Name == "" {
			st.Name = strings.TrimSpace(st.Action + " " + strings.Join(st.Args, " "))
		}
		for _, k := range []string{"timeout", "env_from", "drill"} {
			if sf.has(k) {
				d.addf(sf.lineOf(k), child(path, k), "only run: steps take %s (an action has its own limits and drill form)", k)
			}
		}
		return st, true
	}
	if sf.has("args") {
		d.addf(sf.lineOf("args"), child(path, "args"), "only action: steps take args (a run: step's list is its whole command)")
	}
	if sf.get("run").Kind != yaml.SequenceNode {
		d.addf(sf.get("run").Line, child(path, "run"), "want the command as a list of words, e.g. [terraform, apply, -auto-approve] (no shell runs it, so a single string would be one program name)")
		return st, false
	}
	st.Run = sf.strings("run", nil)
	if len(st.Run) == 0 || strings.TrimSpace(st.Run[0]) == "" {
		d.addf(sf.get("run").Line, child(path, "run"), "want at least the program to run, e.g. [terraform, apply]")
		return st, false
	}
	if st.Name == "" {
		st.Name = strings.Join(st.Run, " ")
	}
	st.Timeout = sf.duration("timeout")
	st.EnvFrom = sf.strings("env_from", func(v string) error {
		if !envNameRE.MatchString(v) {
			return fmt.Errorf("%s is not an environment variable name (name the variable, never its value)", fmtQuote(v))
		}
		return nil
	})
	if v, ok := sf.str("drill"); ok {
		switch v {
		case "true":
			st.Drill = true
		case "false":
		default:
			d.addf(sf.get("drill").Line, child(path, "drill"), "want true or false, got %s", fmtQuote(v))
		}
	}
	return st, true
}

// playbookTargets reports action steps whose action the service has nothing
// to act on (restore-db without databases, redeploy without
// kubernetes.source, …): found at load, not at 3 a.m.
func (d *decoder) playbookTargets(s *Service) {
	needs := map[string]struct {
		ok   bool
		want string
	}{
		"restore-db":      {len(s.Databases) > 0, "databases:"},
		"restore-models":  {s.Models != nil, "models:"},
		"redeploy":        {s.Kubernetes != nil && s.Kubernetes.Source != nil, "kubernetes.source:"},
		"restore-vault":   {s.Vault != nil, "vault:"},
		"failover":        {s.Failover != nil, "failover:"},
		"verify":          {len(s.Health) > 0 || len(s.Databases) > 0, "health: or databases:"},
		"rollout-restart": {true, ""},
		"scale":           {true, ""},
	}
	for _, pb := range s.Playbooks {
		for _, st := range pb.Steps {
			if st.Action == "" {
				continue
			}
			if n := needs[st.Action]; !n.ok {
				d.addf(pb.line, pb.path, "step %q runs %s, but this service has no %s", st.Name, st.Action, n.want)
			}
		}
	}
}
