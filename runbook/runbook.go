// Package runbook is drbot's runbook configuration model: the services it
// handles, their recovery targets (databases, models, failover), checks,
// escalation and approval policy, loaded from YAML with strict validation.
//
// Load and Parse report every problem at once as a *ValidationError whose
// lines read "file:line: key.path: message". Secrets never live in the
// config: database URLs are read from the environment variable a database
// names, only when they are needed (Database.URL).
//
// Plain YAML anchors, aliases and merge keys (<<) work; keys starting with
// "x-" are ignored anywhere, which gives anchors a place to live.
package runbook

import (
	"fmt"
	"os"
	"time"
)

// Defaults applied when the config leaves a value out.
const (
	DefaultChannelPrefix     = "incident"
	DefaultApprovals         = 1
	DefaultApprovalExpiry    = 15 * time.Minute
	DefaultFailoverApprovals = 2 // for the failover command unless approvals.commands.failover overrides it
	DefaultNamespace         = "default"
)

// CommandFailover is the command name that needs DefaultFailoverApprovals.
const CommandFailover = "failover"

// EventSecurity is the only event an escalation can be triggered "on": the
// incident is marked a security incident.
const EventSecurity = "security"

// Config is a whole runbook config file.
type Config struct {
	Slack     Slack
	Approvals Approvals
	Services  []Service
}

// Slack holds chat settings.
type Slack struct {
	ChannelPrefix   string   // incident channels are <prefix>-<service>-<yyyymmdd>; default "incident"
	AnnounceChannel string   // optional channel where new incident channels are announced
	Approvers       []string // Slack user ids (U…), user group ids (S…) or e-mail addresses
	// Requesters may request recovery actions and see their dry runs (same
	// entries as Approvers); nil (unset) means everyone.
	Requesters []string
	// Responders may run the incident commands ack, resolve and security
	// (same entries as Approvers); nil (unset) means the incident channel's members.
	Responders []string
}

// Approvals is the approval policy for destructive commands.
type Approvals struct {
	Required     int                         // approvals from people other than the requester; default 1
	ExpiresAfter Duration                    // a pending request expires after this; default 15m
	Commands     map[string]CommandApprovals // per-command overrides, keyed by command name
}

// CommandApprovals overrides the approval policy for one command. Zero
// fields inherit from Approvals.
type CommandApprovals struct {
	Required     int      // approvals this command needs
	ExpiresAfter Duration // a pending request for this command expires after this
}

// Service is one service that drbot handles incidents for.
type Service struct {
	Name       string    // lowercase letters, digits and hyphens; part of channel names
	PagerDuty  PagerDuty `yaml:"pagerduty"` // which PagerDuty services open incidents for this service
	Objectives Objectives
	Escalation []Escalation
	Databases  []Database
	Models     *Models     // nil when the service has no model files to restore
	Kubernetes *Kubernetes // nil when not set; see Service.Namespace
	Failover   *Failover   // nil when the service has no region failover
	Health     []HealthCheck
	Vault      *Vault // nil when the service has no Vault to restore
	Drills     Drills
	Scenarios  []Scenario // the disaster-scenario table; see Service.Scenario
	Playbooks  []Playbook // multi-step procedures; see Service.Playbook
}

// PagerDuty maps PagerDuty services to this runbook service.
type PagerDuty struct {
	ServiceIDs         []string // PagerDuty service ids (P…) whose incidents belong to this service
	EscalationPolicyID string   // whose on-call responders are invited to the channel
}

// Objectives are the recovery targets. Zero means not set.
type Objectives struct {
	RTO Duration // recovery time objective: maximum downtime
	RPO Duration // recovery point objective: maximum data loss
}

// Escalation notifies people either After a delay since the incident
// opened, or On an event (EventSecurity). Exactly one of After and On is set.
type Escalation struct {
	After  Duration
	On     string   // "security": when the incident is marked a security incident
	Role   string   // who is being called in, e.g. Database Admin
	Notify []string // Slack user ids, user group ids or e-mail addresses
}

// Database is a PostgreSQL database that can be restored from backups.
type Database struct {
	Name    string        // the database name, e.g. lstm_pfd
	URLEnv  string        // the environment variable that holds the database URL
	Backups *Backups      // nil when no backups are configured
	Writers []WorkloadRef // scaled to zero while a restored database is swapped in
	Checks  []Check       // run after a restore
	// A label selector of pods (in the service's namespace) that must all be
	// Ready before a restore starts, e.g. app=postgresql.
	WaitFor string

	path string // key path, for messages
}

// Backups says where a database's backups are and how often they are made.
type Backups struct {
	Location Location
	Every    Duration // expected interval between backups; zero when not set
}

// Check is a SQL query whose single numeric result must satisfy Expect.
type Check struct {
	Name   string // a short description, e.g. experiments present
	SQL    string // a query returning one number
	Expect Expect
}

// Models describes model files restored by copying Backups to Target.
type Models struct {
	Backups Location
	Target  Location
	Restart []WorkloadRef // restarted after a restore so they reload the models
	// Snapshots, when set, says Backups holds one folder per backup run
	// (models-*/checkpoints/): one snapshot is restored, its Inside path
	// mapping onto Target. Nil: Backups is a mirror of Target, synced whole.
	Snapshots *SnapshotPattern
	Every     Duration // expected interval between model backups; zero when not set
	Verify    []string // names of the service's health checks that must pass after a restore
}

// Kubernetes says where the service's workloads run.
type Kubernetes struct {
	Namespace string // default "default"
	Selector  string // label selector of the service's pods, e.g. app=lstm-pfd
	// Source is where the service's manifests live in git, for redeploy;
	// nil when not set.
	Source *GitSource
}

// GitSource is a kustomization in a git repository: redeploy checks out Ref
// and applies the kustomization at Path (git checkout main && kubectl apply -k …).
type GitSource struct {
	Repo string // the repository URL: https://…, or file:///… for a local repository
	Ref  string // a branch, tag or commit; default main
	Path string // the kustomization's folder inside the repository, e.g. infra/kubernetes/environments/prod
	// TokenEnv names the environment variable holding an access token for a
	// private repository (sent as HTTP basic auth); empty for a public one.
	TokenEnv string
}

// Failover is a region failover: promote an RDS read replica and/or point
// a DNS record elsewhere, then check Health. At least one of RDS and DNS is set.
type Failover struct {
	RDS    *FailoverRDS
	DNS    *FailoverDNS
	Health string // optional http(s) URL checked after the failover
}

// FailoverRDS is the read replica promoted during a failover.
type FailoverRDS struct {
	Replica string // DB instance identifier
	Region  string // the replica's AWS region
}

// FailoverDNS is the Route53 record changed during a failover.
type FailoverDNS struct {
	ZoneID string // Route53 hosted zone id
	Record string // the record name, e.g. api.example.com
	Type   string // A, AAAA or CNAME
	Value  string // what the record points to after the failover
	TTL    int    // seconds
}

// HealthCheck is either an HTTP check (HTTP set: a 2xx answer, or
// ExpectStatus, is healthy) or a Prometheus metric check (Metric set).
type HealthCheck struct {
	Name   string // a short name, used by /dr verify
	HTTP   string // an http(s) URL that answers 2xx (or expect_status) when healthy
	Method string // the HTTP method: GET (the default), HEAD, POST, PUT, PATCH or DELETE
	Body   string // the request body, sent with POST, PUT, PATCH or DELETE, e.g. a smoke-test JSON
	// The HTTP status a healthy answer has (100–599); when not set, any 2xx.
	ExpectStatus int
	Metric       *MetricCheck
}

// HTTPMethod returns the check's HTTP method, GET when not set.
func (h HealthCheck) HTTPMethod() string {
	if h.Method == "" {
		return "GET"
	}
	return h.Method
}

// MetricCheck fetches URL in the Prometheus text format and compares the
// metric Name against Expect.
type MetricCheck struct {
	URL    string // the target's /metrics URL
	Name   string // the metric name
	Expect Expect
}

// Drills is the disaster-recovery drill schedule.
type Drills struct {
	Every Duration // zero when no schedule is set
	// Plan says which procedure each quarter's drill exercises (runbook
	// section 7); empty when not set.
	Plan []DrillQuarter
	// Approval makes a drill wait for a second person's approval like a
	// real recovery; by default a drill (which never touches live) needs none.
	Approval bool
}

// DrillQuarter is one row of a drill plan.
type DrillQuarter struct {
	Quarter   int    // 1 to 4
	Procedure string // an action kind (restore-db, …) or one of the service's playbooks
}

// Service returns the service called name.
func (c *Config) Service(name string) (*Service, bool) {
	if c == nil {
		return nil, false
	}
	for i := range c.Services {
		if c.Services[i].Name == name {
			return &c.Services[i], true
		}
	}
	return nil, false
}

// ServiceByPagerDutyID returns the service that PagerDuty service id maps to.
func (c *Config) ServiceByPagerDutyID(id string) (*Service, bool) {
	if c == nil || id == "" {
		return nil, false
	}
	for i := range c.Services {
		for _, sid := range c.Services[i].PagerDuty.ServiceIDs {
			if sid == id {
				return &c.Services[i], true
			}
		}
	}
	return nil, false
}

// ServiceNames returns the service names in config order.
func (c *Config) ServiceNames() []string {
	if c == nil {
		return nil
	}
	names := make([]string, len(c.Services))
	for i, s := range c.Services {
		names[i] = s.Name
	}
	return names
}

// ApprovalsFor returns how many approvals a command needs and how long a
// request for it stays open. A per-command override in approvals.commands
// wins; otherwise the failover command needs at least
// DefaultFailoverApprovals and every other command approvals.required.
// It works on a Config built by hand too (zero values mean the defaults).
func (c *Config) ApprovalsFor(command string) (required int, expires time.Duration) {
	required, expires = DefaultApprovals, DefaultApprovalExpiry
	if c == nil {
		if command == CommandFailover {
			required = DefaultFailoverApprovals
		}
		return required, expires
	}
	if c.Approvals.Required > 0 {
		required = c.Approvals.Required
	}
	if c.Approvals.ExpiresAfter.Duration > 0 {
		expires = c.Approvals.ExpiresAfter.Duration
	}
	if command == CommandFailover {
		required = max(required, DefaultFailoverApprovals)
	}
	if o, ok := c.Approvals.Commands[command]; ok {
		if o.Required > 0 {
			required = o.Required
		}
		if o.ExpiresAfter.Duration > 0 {
			expires = o.ExpiresAfter.Duration
		}
	}
	return required, expires
}

// Database returns the service's database called name.
func (s Service) Database(name string) (*Database, bool) {
	for i := range s.Databases {
		if s.Databases[i].Name == name {
			return &s.Databases[i], true
		}
	}
	return nil, false
}

// HealthCheck returns the service's health check called name.
func (s Service) HealthCheck(name string) (*HealthCheck, bool) {
	for i := range s.Health {
		if s.Health[i].Name == name {
			return &s.Health[i], true
		}
	}
	return nil, false
}

// Namespace returns the Kubernetes namespace of the service's workloads
// (DefaultNamespace when the config names none).
func (s Service) Namespace() string {
	if s.Kubernetes != nil && s.Kubernetes.Namespace != "" {
		return s.Kubernetes.Namespace
	}
	return DefaultNamespace
}

// URL reads the database URL from the environment variable named by
// url_env. The error names the variable and the config key, never the value.
func (d Database) URL() (string, error) {
	where := d.path
	if where == "" {
		where = "databases[" + d.Name + "]"
	}
	where += ".url_env"
	if d.URLEnv == "" {
		return "", fmt.Errorf("database %q names no environment variable (%s)", d.Name, where)
	}
	v, ok := os.LookupEnv(d.URLEnv)
	if !ok {
		return "", fmt.Errorf("%s is not set (%s)", d.URLEnv, where)
	}
	if v == "" {
		return "", fmt.Errorf("%s is empty (%s)", d.URLEnv, where)
	}
	return v, nil
}
