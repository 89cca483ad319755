// Package diagnose answers /dr diagnose <service> (runbook 001 Appendix
// "Common Issues": backup download fails, PostgreSQL won't start, model
// won't load): one read-only report of everything the runbooks tell an
// engineer to look at first, each failing line with the runbook's remedy.
//
// It looks at the AWS identity in use (STS GetCallerIdentity), every backup
// location of the service (database backups, model backups, Vault
// snapshots: listable, newest object readable with HeadObject, its age
// against `every`), every database (server version, size, connections),
// the pods of the service's selector and of its databases' wait_for
// selectors (phase, restarts, last termination, the last log lines of
// failing ones), the namespace's PVCs, the model metrics, and Vault's health.
//
// Every check runs at once with its own timeout (DefaultCheckTimeout) and
// the whole report has a deadline (DefaultDeadline): a database that never
// answers or a bucket that is gone is a failing line, never a hang. A part
// drbot has no access to (no Kubernetes, no AWS configuration, an unset env
// var) is named as not configured. Nothing in the report is a secret: values
// of the env vars the runbook names and of AWS credentials are scrubbed.
package diagnose

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/client-go/kubernetes"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/runbook"
)

// Kind is the command name.
const Kind = "diagnose"

// Defaults.
const (
	DefaultCheckTimeout = 5 * time.Second
	DefaultDeadline     = 20 * time.Second
	// LogTail is how many log lines of a failing pod are shown.
	LogTail = 20
	// maxLogPods bounds the failing pods whose logs are read per selector.
	maxLogPods = 3
)

// Command declares /dr diagnose: read-only, it runs at once.
var Command = actions.Command{
	Name:    Kind,
	Summary: "Find what is broken: AWS identity, backups, databases, pods, PVCs, model metrics, Vault",
	Description: "Read-only, no approval: checks at once, each with a timeout, the AWS identity in use, every backup location " +
		"(listable, newest object readable, its age), every database (version, size, connections), the pods and their last logs, " +
		"the PVCs, the model metrics and Vault's health. Each failing line carries the runbook's remedy " +
		"(runbook 001 Appendix: backup download fails, PostgreSQL won't start, model won't load).",
	Examples: []string{"/dr diagnose lstm-pfd", "/dr diagnose inflow"},
}

// Deps is what the checks need; a nil part is reported as not configured.
type Deps struct {
	// AWS loads the AWS configuration for a region ("" for the default).
	// Nil: AWS is not configured for this bot.
	AWS func(ctx context.Context, region string) (aws.Config, error)
	// Open opens a backup location; nil opens s3:// locations with an S3
	// client built from AWS (path-style under an endpoint override) and
	// file:// locations from disk.
	Open func(ctx context.Context, loc runbook.Location) (storage.Store, error)
	// Kube is the cluster's clientset; nil when the bot has no Kubernetes
	// access, KubeErr then says why.
	Kube    kubernetes.Interface
	KubeErr error
	// HTTP is the client for metrics and Vault (a plain client when nil;
	// every request is bounded by the check's context).
	HTTP *http.Client
	// LookupEnv reads the env vars the runbook names (os.LookupEnv when nil).
	LookupEnv func(string) (string, bool)
	// CheckTimeout bounds each check, Deadline the whole report.
	CheckTimeout time.Duration
	Deadline     time.Duration
	// Now is the clock for backup ages (time.Now when nil).
	Now func() time.Time
}

func (d Deps) lookupEnv(name string) (string, bool) {
	if d.LookupEnv != nil {
		return d.LookupEnv(name)
	}
	return os.LookupEnv(name)
}

func (d Deps) checkTimeout() time.Duration {
	if d.CheckTimeout > 0 {
		return d.CheckTimeout
	}
	return DefaultCheckTimeout
}

func (d Deps) deadline() time.Duration {
	if d.Deadline > 0 {
		return d.Deadline
	}
	return DefaultDeadline
}

func (d Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d Deps) httpClient() *http.Client {
	if d.HTTP != nil {
		return d.HTTP
	}
	return &http.Client{}
}

// Diagnoser is the /dr diagnose procedure (an actions.Reader).
type Diagnoser struct {
	cfg  *runbook.Config
	deps Deps
}

var _ actions.Reader = (*Diagnoser)(nil)

// New returns the /dr diagnose procedure over cfg's services.
func New(cfg *runbook.Config, deps Deps) *Diagnoser { return &Diagnoser{cfg: cfg, deps: deps} }

// Command implements actions.Procedure.
func (d *Diagnoser) Command() actions.Command { return Command }

// Read implements actions.Reader: the actions.Diagnosis of the service.
func (d *Diagnoser) Read(ctx context.Context, p actions.Params) (any, error) {
	svc, err := p.ServiceIn(d.cfg)
	if err != nil {
		return nil, err
	}
	return Service(ctx, d.deps, *svc), nil
}

// check is one independent look; it returns its findings (one or more).
type check struct {
	area, name string
	run        func(ctx context.Context) []actions.Finding
}

// Service diagnoses svc: every check at once, each bounded by the check
// timeout, the whole by the deadline. A check still running at the deadline
// is a failing line saying so; it is abandoned (its context is cancelled).
func Service(ctx context.Context, deps Deps, svc runbook.Service) actions.Diagnosis {
	began := time.Now()
	diag := actions.Diagnosis{Service: svc.Name, Deadline: deps.deadline()}
	checks, notConfigured := plan(deps, svc)
	diag.NotConfigured = notConfigured

	ctx, cancel := context.WithTimeout(ctx, deps.deadline())
	defer cancel()
	type result struct {
		i        int
		findings []actions.Finding
	}
	results := make(chan result, len(checks)) // buffered: an abandoned check never blocks
	for i, c := range checks {
		go func() {
			cctx, ccancel := context.WithTimeout(ctx, deps.checkTimeout())
			defer ccancel()
			start := time.Now()
			var fs []actions.Finding
			func() {
				defer func() {
					if p := recover(); p != nil {
						fs = []actions.Finding{{Area: c.area, Name: c.name, Status: actions.StatusFail, Detail: "the check failed inside drbot (see drbot's log)"}}
						logPanic(ctx, c.name, p)
					}
				}()
				fs = c.run(cctx)
			}()
			for j := range fs {
				if fs[j].Latency == 0 {
					fs[j].Latency = time.Since(start)
				}
			}
			results <- result{i, fs}
		}()
	}
	got := make([][]actions.Finding, len(checks))
	done := make([]bool, len(checks))
	for n := 0; n < len(checks); n++ {
		select {
		case r := <-results:
			got[r.i], done[r.i] = r.findings, true
		case <-ctx.Done():
			n = len(checks) // stop waiting
		}
	}
	for i, c := range checks {
		if !done[i] {
			got[i] = []actions.Finding{{Area: c.area, Name: c.name, Status: actions.StatusFail,
				Detail: fmt.Sprintf("no answer within the report's deadline (%s)", deps.deadline()), Latency: time.Since(began)}}
		}
		diag.Findings = append(diag.Findings, got[i]...)
	}
	diag.Elapsed = time.Since(began)
	scrub(&diag, secrets(deps, svc))
	return diag
}

// plan lists the checks for svc and the parts that are not configured.
func plan(deps Deps, svc runbook.Service) ([]check, []string) {
	var checks []check
	var notConfigured []string

	locs := locations(svc)
	if usesAWS(svc, locs) {
		if deps.AWS == nil {
			notConfigured = append(notConfigured, "AWS: no AWS configuration in this bot")
		} else {
			checks = append(checks, check{"aws", "AWS identity", func(ctx context.Context) []actions.Finding {
				return []actions.Finding{identity(ctx, deps)}
			}})
		}
	}
	for _, l := range locs {
		if l.loc.Scheme == runbook.SchemeS3 && deps.AWS == nil && deps.Open == nil {
			continue // reported above
		}
		checks = append(checks, check{"backups", l.title, func(ctx context.Context) []actions.Finding {
			return []actions.Finding{location(ctx, deps, svc, l)}
		}})
	}
	for _, db := range svc.Databases {
		u, err := databaseURL(deps, db)
		if err != nil {
			notConfigured = append(notConfigured, "database "+db.Name+": "+err.Error())
			continue
		}
		checks = append(checks, check{"database", "database " + db.Name, func(ctx context.Context) []actions.Finding {
			return []actions.Finding{database(ctx, svc, db, u)}
		}})
	}
	if sels := selectors(svc); len(sels) > 0 {
		if deps.Kube == nil {
			why := "no Kubernetes access"
			if deps.KubeErr != nil {
				why = deps.KubeErr.Error()
			}
			notConfigured = append(notConfigured, "Kubernetes: "+why)
		} else {
			ns := svc.Namespace()
			for _, s := range sels {
				checks = append(checks, check{"pods", "pods " + s.selector, func(ctx context.Context) []actions.Finding {
					return Pods(ctx, deps.Kube, ns, s.selector, s.remedy(svc))
				}})
			}
			checks = append(checks, check{"pvc", "PVCs in " + ns, func(ctx context.Context) []actions.Finding {
				return PVCs(ctx, deps.Kube, ns)
			}})
		}
	}
	for _, h := range svc.Health {
		if h.Metric == nil {
			continue
		}
		checks = append(checks, check{"model", "metric " + h.Name, func(ctx context.Context) []actions.Finding {
			return []actions.Finding{metric(ctx, deps, svc, h)}
		}})
	}
	if v := svc.Vault; v != nil {
		addr, ok := deps.lookupEnv(v.AddressEnv)
		if !ok || addr == "" {
			notConfigured = append(notConfigured, fmt.Sprintf("Vault: %s is not set (vault.address_env)", v.AddressEnv))
		} else {
			token, tok := deps.lookupEnv(v.TokenEnv)
			if !tok || token == "" {
				notConfigured = append(notConfigured, fmt.Sprintf("Vault token: %s is not set (vault.token_env); restore-vault needs it", v.TokenEnv))
				token = ""
			}
			checks = append(checks, check{"vault", "Vault", func(ctx context.Context) []actions.Finding {
				return VaultHealth(ctx, deps.httpClient(), svc, addr, token)
			}})
		}
	}
	return checks, notConfigured
}

// usesAWS reports whether the service has anything in AWS: an s3://
// location or a failover through RDS or Route53.
func usesAWS(svc runbook.Service, locs []backupLocation) bool {
	for _, l := range locs {
		if l.loc.Scheme == runbook.SchemeS3 {
			return true
		}
	}
	if svc.Models != nil && svc.Models.Target.Scheme == runbook.SchemeS3 {
		return true
	}
	return svc.Failover != nil
}

// selectorCheck is a label selector whose pods diagnose looks at.
type selectorCheck struct {
	selector string
	database bool // a database's wait_for selector (PostgreSQL pods)
}

func (s selectorCheck) remedy(svc runbook.Service) *actions.Remedy {
	if s.database {
		return postgresWontStart(s.selector, svc.Namespace())
	}
	return podsFailing(svc)
}

// selectors are the service's selector and its databases' wait_for
// selectors, each once, in config order.
func selectors(svc runbook.Service) []selectorCheck {
	var out []selectorCheck
	seen := map[string]bool{}
	if k := svc.Kubernetes; k != nil && k.Selector != "" {
		out = append(out, selectorCheck{selector: k.Selector})
		seen[k.Selector] = true
	}
	for _, db := range svc.Databases {
		if db.WaitFor != "" && !seen[db.WaitFor] {
			out = append(out, selectorCheck{selector: db.WaitFor, database: true})
			seen[db.WaitFor] = true
		}
	}
	return out
}
