package runbook

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Scenario severities, lowest first.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Severities are the accepted scenario severities, lowest first.
var Severities = []string{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// ActionKinds are the recovery action kinds a scenario's playbook may name
// (besides the names of the service's playbooks). The runbook package cannot
// import actions, so the list lives here; actions' kinds must stay in it.
var ActionKinds = []string{
	"restore-db", "restore-models", "rollout-restart", "scale", "failover",
	"redeploy", "restore-vault", "rollback", "verify", "diagnose",
}

// Scenario is one row of a service's disaster-scenario table: an incident
// whose PagerDuty title contains every Match word is this scenario.
type Scenario struct {
	Name     string   // the scenario's name, shown in the incident header
	Severity string   // low, medium, high or critical; "" when not set
	Match    []string // words that must all appear in the PagerDuty title (case-insensitive); the first scenario that matches wins
	Estimate Duration // how long recovery usually takes; zero when not set
	Playbook string   // an action kind or a playbook name; "" when not set
	// Security opens a matching incident as a security incident: a private
	// channel and the service's on: security escalations.
	Security bool
}

// Command is the /dr command the scenario's playbook implies: "/dr <kind>"
// when it names an action kind, "/dr playbook <name>" when it names one of the
// service's playbooks, "" when the scenario has no playbook.
func (s Scenario) Command() string {
	switch {
	case s.Playbook == "":
		return ""
	case slices.Contains(ActionKinds, s.Playbook):
		return "/dr " + s.Playbook
	}
	return "/dr playbook " + s.Playbook
}

// MatchScenario returns the first of scenarios whose every Match word appears
// in title (case-insensitively), or nil.
func MatchScenario(scenarios []Scenario, title string) *Scenario {
	t := strings.ToLower(title)
	for i := range scenarios {
		s := &scenarios[i]
		if len(s.Match) == 0 {
			continue
		}
		all := true
		for _, w := range s.Match {
			if !strings.Contains(t, strings.ToLower(w)) {
				all = false
				break
			}
		}
		if all {
			return s
		}
	}
	return nil
}

// Scenario returns the first scenario of the service matching title, or nil.
func (s *Service) Scenario(title string) *Scenario {
	if s == nil {
		return nil
	}
	return MatchScenario(s.Scenarios, title)
}

// playbookNames returns the names of the entries of the service's
// "playbooks" list as written in the raw service mapping n (whether or not
// this loader decodes that key), and whether the key is there.
func (d *decoder) playbookNames(n *yaml.Node) ([]string, bool) {
	n = d.resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := d.resolve(n.Content[i]); k == nil || k.Value != "playbooks" {
			continue
		}
		v := d.resolve(n.Content[i+1])
		if v == nil || v.Kind != yaml.SequenceNode {
			return nil, true
		}
		var names []string
		for _, item := range v.Content {
			item = d.resolve(item)
			if item == nil || item.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(item.Content); j += 2 {
				if k := d.resolve(item.Content[j]); k != nil && k.Value == "name" {
					if nv := d.resolve(item.Content[j+1]); nv != nil && nv.Kind == yaml.ScalarNode {
						names = append(names, nv.Value)
					}
				}
			}
		}
		return names, true
	}
	return nil, false
}

// scenarios decodes a service's scenarios list; svcNode is the raw service
// mapping (for the names of its playbooks).
func (d *decoder) scenarios(f *fields, path string, svcNode *yaml.Node) []Scenario {
	items := f.list("scenarios")
	if len(items) == 0 {
		return nil
	}
	playbooks, _ := d.playbookNames(svcNode)
	var out []Scenario
	names := map[string]int{}
	for i, item := range items {
		p := index(child(path, "scenarios"), i)
		sf := d.mapping(item, p, "name", "severity", "match", "estimate", "playbook", "security")
		if sf == nil {
			if isNull(d.resolve(item)) {
				d.addf(item.Line, p, "empty scenario (want at least a name and match)")
			}
			continue
		}
		var s Scenario
		if name, ok := sf.required("name", "what the scenario is, e.g. Database corruption"); ok {
			if first, dup := names[strings.ToLower(name)]; dup {
				d.addf(sf.get("name").Line, child(p, "name"), "duplicate scenario name %q in this service (first at line %d)", name, first)
			} else {
				names[strings.ToLower(name)] = sf.get("name").Line
			}
			s.Name = name
		}
		s.Severity, _ = sf.check("severity", func(v string) error {
			if !slices.Contains(Severities, v) {
				return fmt.Errorf("%s is not a severity (want one of %s)", fmtQuote(v), strings.Join(Severities, ", "))
			}
			return nil
		})
		if !sf.has("match") {
			sf.missing("match", "a list of words that all appear in the PagerDuty title, e.g. [database, corrupt]")
		} else {
			words := sf.strings("match", func(v string) error {
				if strings.TrimSpace(v) == "" {
					return fmt.Errorf("must not be empty (a word of the PagerDuty title)")
				}
				return nil
			})
			if len(words) == 0 && sf.get("match").Kind == yaml.SequenceNode {
				d.addf(sf.get("match").Line, child(p, "match"), "want at least one word (a scenario without words would match every incident)")
			}
			for _, w := range words {
				s.Match = append(s.Match, strings.ToLower(strings.TrimSpace(w)))
			}
		}
		s.Estimate = sf.duration("estimate")
		s.Playbook, _ = sf.check("playbook", func(v string) error {
			if slices.Contains(ActionKinds, v) || slices.Contains(playbooks, v) {
				return nil
			}
			known := append(slices.Clone(ActionKinds), playbooks...)
			return fmt.Errorf("%s is neither an action (%s) nor one of this service's playbooks", fmtQuote(v), strings.Join(known, ", "))
		})
		if v, ok := sf.str("security"); ok {
			switch v {
			case "true":
				s.Security = true
			case "false":
			default:
				d.addf(sf.get("security").Line, child(p, "security"), "want true or false, got %s", fmtQuote(v))
			}
		}
		out = append(out, s)
	}
	return out
}

// people decodes a slack list of users, groups and e-mails that, when set,
// must not be empty (an empty list would lock everyone out; leave the key
// out to let everyone in).
func (d *decoder) people(f *fields, key string) []string {
	if f == nil || !f.has(key) {
		return nil
	}
	out := f.strings(key, checkContact)
	if n := f.get(key); n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		d.addf(n.Line, child(f.path, key), "empty list: nobody could act; leave %s out to allow everyone", key)
	}
	if out == nil {
		out = []string{}
	}
	return out
}
