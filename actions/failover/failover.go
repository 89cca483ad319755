// Package failover is the "failover" action: the inflow runbook's region
// failover. Plan is a read-only preflight (runbook step 1: the service's
// health URL must NOT answer 2xx, i.e. the primary is unreachable, unless the
// requester forces it; the read replica exists and is available; the DNS
// record's current value), then
// Execute promotes the replica (RDS PromoteReadReplica and the SDK's
// DB-instance-available waiter), points the DNS record at the secondary
// (Route53 UPSERT and the SDK's record-sets-changed waiter) and checks that
// the same health URL now answers 2xx. Each step is journalled and resumable.
package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/runbook"
)

// Kind is the action kind (runbook.CommandFailover).
const Kind = runbook.CommandFailover

// Step names.
//
//nolint:gosec // G101: step names, not credentials
const (
	StepPromote     = "promote-replica"
	StepWaitDB      = "wait-db-available"
	StepUpsertDNS   = "upsert-dns"
	StepWaitDNS     = "wait-dns-insync"
	StepHealthCheck = "health-check"
)

// LoadAWS returns the AWS configuration for a region ("" = the configured
// one). Production passes awsconf.Load; tests add awsconf.Static(moto, …).
type LoadAWS func(ctx context.Context, region string) (aws.Config, error)

// Waits bounds the waits. Zero fields take the defaults.
type Waits struct {
	// MinDelay and MaxDelay are the SDK waiters' delays between attempts
	// (SDK defaults when zero: 30s/120s for RDS, 30s/120s for Route53).
	MinDelay, MaxDelay time.Duration
	DBAvailable        time.Duration // default 30m
	DNSChanged         time.Duration // default 10m
	Health             time.Duration // default 5m
	HealthInterval     time.Duration // default 5s
	// Probe bounds the preflight's one GET of the health URL (default 5s):
	// a primary that does not answer within it counts as unreachable.
	Probe time.Duration
}

func (w Waits) withDefaults() Waits {
	if w.DBAvailable <= 0 {
		w.DBAvailable = 30 * time.Minute
	}
	if w.DNSChanged <= 0 {
		w.DNSChanged = 10 * time.Minute
	}
	if w.Health <= 0 {
		w.Health = 5 * time.Minute
	}
	if w.HealthInterval <= 0 {
		w.HealthInterval = 5 * time.Second
	}
	if w.Probe <= 0 {
		w.Probe = 5 * time.Second
	}
	return w
}

// Action is the failover action.
type Action struct {
	cfg  *runbook.Config
	load LoadAWS
	// HTTP is the client for the health check (verify's default when nil).
	HTTP  *http.Client
	Waits Waits
	log   *slog.Logger
}

var _ actions.Action = (*Action)(nil)

// New returns the failover action over cfg's services.
func New(cfg *runbook.Config, load LoadAWS) *Action {
	return &Action{cfg: cfg, load: load, log: slog.Default()}
}

// Kind implements actions.Action.
func (a *Action) Kind() string { return Kind }

// FlagForce is the failover command's flag that overrides runbook step 1
// (the primary must be unreachable).
const FlagForce = "force"

// Spec is the pinned execution input.
type Spec struct {
	RDS    *RDSSpec `json:"rds,omitempty"`
	DNS    *DNSSpec `json:"dns,omitempty"`
	Health string   `json:"health,omitempty"`
	// Force records that the requester overrode runbook step 1 (--force).
	Force bool `json:"force,omitempty"`
}

// RDSSpec is the replica to promote, as found by the preflight.
type RDSSpec struct {
	Replica string `json:"replica"`
	Region  string `json:"region"`
	Source  string `json:"source,omitempty"` // the instance it replicated from when planned ("" = already standalone)
	Engine  string `json:"engine,omitempty"`
}

// DNSSpec is the record to change, with its value when planned.
type DNSSpec struct {
	ZoneID  string   `json:"zone_id"`
	Record  string   `json:"record"` // fully qualified, with the trailing dot
	Type    string   `json:"type"`
	Value   string   `json:"value"`
	TTL     int64    `json:"ttl"`
	Current []string `json:"current,omitempty"` // values when planned (empty: no such record)
}

func (a *Action) rdsClient(ctx context.Context, region string) (*rds.Client, error) {
	cfg, err := a.load(ctx, region)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration for %s: %w", region, err)
	}
	return rds.NewFromConfig(cfg), nil
}

func (a *Action) route53Client(ctx context.Context) (*route53.Client, error) {
	cfg, err := a.load(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return route53.NewFromConfig(cfg), nil
}

// Plan implements actions.Action: the read-only preflight.
func (a *Action) Plan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	svc, err := p.ServiceIn(a.cfg)
	if err != nil {
		return actions.Plan{}, err
	}
	fo := svc.Failover
	if fo == nil || (fo.RDS == nil && fo.DNS == nil) {
		return actions.Plan{}, actions.Refusef("service %s has no failover configured (failover.rds or failover.dns)", svc.Name)
	}
	force := flagForce.On(p)
	var (
		spec     = Spec{Health: fo.Health, Force: force}
		steps    []actions.Step
		facts    []actions.Fact
		warnings []string
		danger   []string
		summary  []string
		extra    int
	)
	// Runbook step 1: verify the primary is unreachable. The health URL is
	// the service's public one, so before the DNS change it is answered by
	// the primary: 2xx means the primary still serves and failing over would
	// split traffic and writes across two primaries.
	usual := max(a.required(), 1)
	if fo.Health != "" {
		target, healthy, observed := a.probe(ctx, fo.Health)
		if healthy && !force {
			return actions.Plan{}, actions.Refusef("primary still healthy: GET %s %s; failover refused (step 1 of the runbook: verify the primary is unreachable). Use --force to override (needs %d approvals)", target, observed, usual+1)
		}
		state := "unreachable, as runbook step 1 requires"
		if healthy {
			state = "still healthy"
		}
		facts = append(facts, actions.Fact{Label: "Primary health (step 1)", Value: fmt.Sprintf("GET %s %s: %s", target, observed, state)})
		if force {
			what := "the primary still answers (GET " + target + " " + observed + ")"
			if !healthy {
				what = "runbook step 1 is not enforced for this request (GET " + target + " " + observed + " when planned)"
			}
			danger = append(danger, fmt.Sprintf("FORCED with --force: %s. Failing over while the primary serves can split traffic and writes between two primaries. Needs %d approvals instead of %d.", what, usual+1, usual))
		}
	} else if force {
		danger = append(danger, fmt.Sprintf("FORCED with --force (no failover.health URL is configured to check the primary). Needs %d approvals instead of %d.", usual+1, usual))
	}
	if force {
		extra = 1
	}
	if fo.RDS != nil {
		if fo.RDS.Replica == "" {
			return actions.Plan{}, actions.Refusef("service %s: failover.rds names no replica", svc.Name)
		}
		client, err := a.rdsClient(ctx, fo.RDS.Region)
		if err != nil {
			return actions.Plan{}, err
		}
		inst, err := describe(ctx, client, fo.RDS.Replica)
		if err != nil {
			return actions.Plan{}, err
		}
		status := aws.ToString(inst.DBInstanceStatus)
		if status != "available" {
			return actions.Plan{}, actions.Refusef("replica %s in %s is %q, not available: it cannot be promoted now", fo.RDS.Replica, fo.RDS.Region, status)
		}
		rs := &RDSSpec{Replica: fo.RDS.Replica, Region: fo.RDS.Region, Source: aws.ToString(inst.ReadReplicaSourceDBInstanceIdentifier), Engine: aws.ToString(inst.Engine)}
		spec.RDS = rs
		facts = append(facts,
			actions.Fact{Label: "Replica", Value: fmt.Sprintf("%s (%s, %s)", rs.Replica, rs.Region, status)},
		)
		if rs.Source != "" {
			facts = append(facts, actions.Fact{Label: "Replicates from", Value: rs.Source})
		} else {
			warnings = append(warnings, fmt.Sprintf("%s is not a read replica (already promoted?): the promote step will be skipped", rs.Replica))
		}
		steps = append(steps,
			actions.Step{Name: StepPromote, Description: fmt.Sprintf("promote read replica %s in %s to a standalone database", rs.Replica, rs.Region)},
			actions.Step{Name: StepWaitDB, Description: fmt.Sprintf("wait until %s is available (up to %s)", rs.Replica, a.Waits.withDefaults().DBAvailable)},
		)
		summary = append(summary, "promote "+rs.Replica)
	}
	if fo.DNS != nil {
		d := fo.DNS
		client, err := a.route53Client(ctx)
		if err != nil {
			return actions.Plan{}, err
		}
		record := fqdn(d.Record)
		current, err := currentValues(ctx, client, d.ZoneID, record, d.Type)
		if err != nil {
			return actions.Plan{}, err
		}
		ds := &DNSSpec{ZoneID: d.ZoneID, Record: record, Type: d.Type, Value: d.Value, TTL: int64(d.TTL), Current: current}
		if ds.TTL <= 0 {
			ds.TTL = 60
		}
		spec.DNS = ds
		cur := "(no such record: it will be created)"
		if len(current) > 0 {
			cur = strings.Join(current, ", ")
		}
		facts = append(facts,
			actions.Fact{Label: "DNS record", Value: fmt.Sprintf("%s %s (zone %s)", strings.TrimSuffix(record, "."), d.Type, d.ZoneID)},
			actions.Fact{Label: "Current value", Value: cur},
			actions.Fact{Label: "New value", Value: fmt.Sprintf("%s (TTL %ds)", d.Value, ds.TTL)},
		)
		if len(current) == 1 && sameValue(current[0], d.Value) {
			warnings = append(warnings, fmt.Sprintf("%s already points at %s", strings.TrimSuffix(record, "."), d.Value))
		}
		steps = append(steps,
			actions.Step{Name: StepUpsertDNS, Description: fmt.Sprintf("UPSERT %s %s → %s, TTL %ds", strings.TrimSuffix(record, "."), d.Type, d.Value, ds.TTL)},
			actions.Step{Name: StepWaitDNS, Description: fmt.Sprintf("wait until Route53 reports the change INSYNC (up to %s)", a.Waits.withDefaults().DNSChanged)},
		)
		summary = append(summary, fmt.Sprintf("point %s at %s", strings.TrimSuffix(record, "."), d.Value))
	}
	if fo.Health != "" {
		steps = append(steps, actions.Step{Name: StepHealthCheck, Description: fmt.Sprintf("wait until %s answers 2xx, now from the secondary (up to %s)", redact(fo.Health), a.Waits.withDefaults().Health)})
		summary = append(summary, "check health")
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("encode plan: %w", err)
	}
	title := "Fail %s over: %s"
	if force {
		title = "FORCED: fail %s over: %s"
	}
	return actions.Plan{
		Kind:           Kind,
		Service:        svc.Name,
		Target:         "failover:" + svc.Name,
		Summary:        fmt.Sprintf(title, svc.Name, strings.Join(summary, ", then ")),
		Steps:          steps,
		Facts:          facts,
		Warnings:       warnings,
		Danger:         danger,
		ExtraApprovals: extra,
		Spec:           raw,
	}, nil
}

// required is the number of approvals the config asks for a failover.
func (a *Action) required() int {
	n, _ := a.cfg.ApprovalsFor(Kind)
	return n
}

// probe GETs the health URL once, within Waits.Probe. It returns the URL as
// shown to users (no credentials or query), whether it answered 2xx, and what
// was observed ("answered 200 OK", "answered 503 Service Unavailable", "got no
// answer within 5s", "got no answer: … connection refused").
func (a *Action) probe(ctx context.Context, rawURL string) (target string, healthy bool, observed string) {
	target = redact(rawURL)
	timeout := a.Waits.withDefaults().Probe
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return target, false, "got no answer: not a valid URL"
	}
	client := a.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return target, false, fmt.Sprintf("got no answer within %s", timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, which may carry credentials
		}
		return target, false, "got no answer: " + err.Error()
	}
	_ = resp.Body.Close()
	observed = "answered " + strconv.Itoa(resp.StatusCode)
	if t := http.StatusText(resp.StatusCode); t != "" {
		observed += " " + t
	}
	return target, resp.StatusCode >= 200 && resp.StatusCode < 300, observed
}

// redact drops credentials, the query and the fragment from a URL shown to users.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func healthReason(c actions.CheckResult) string {
	if c.Error != "" {
		return c.Error
	}
	return c.Observed
}

func fqdn(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func sameValue(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// describe returns the DB instance; a missing one is a refusal.
func describe(ctx context.Context, client *rds.Client, id string) (rdstypes.DBInstance, error) {
	out, err := client.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
	if err != nil {
		var nf *rdstypes.DBInstanceNotFoundFault
		if errors.As(err, &nf) {
			return rdstypes.DBInstance{}, actions.Refusef("RDS instance %s not found in the configured region", id)
		}
		return rdstypes.DBInstance{}, fmt.Errorf("describe RDS instance %s: %w", id, err)
	}
	if len(out.DBInstances) == 0 {
		return rdstypes.DBInstance{}, actions.Refusef("RDS instance %s not found in the configured region", id)
	}
	return out.DBInstances[0], nil
}

// currentValues returns the values of the record (name, type) in zone; none
// when it does not exist. An alias record reads "ALIAS target".
func currentValues(ctx context.Context, client *route53.Client, zone, record, typ string) ([]string, error) {
	out, err := client.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{
		HostedZoneId:    aws.String(zone),
		StartRecordName: aws.String(record),
		StartRecordType: r53types.RRType(typ),
		MaxItems:        aws.Int32(1),
	})
	if err != nil {
		var nz *r53types.NoSuchHostedZone
		if errors.As(err, &nz) {
			return nil, actions.Refusef("Route53 hosted zone %s not found", zone)
		}
		return nil, fmt.Errorf("list record sets of zone %s: %w", zone, err)
	}
	for _, rr := range out.ResourceRecordSets {
		if !strings.EqualFold(unescape(aws.ToString(rr.Name)), record) || string(rr.Type) != typ {
			continue
		}
		if rr.AliasTarget != nil {
			return []string{"ALIAS " + aws.ToString(rr.AliasTarget.DNSName)}, nil
		}
		var vals []string
		for _, v := range rr.ResourceRecords {
			vals = append(vals, aws.ToString(v.Value))
		}
		slices.Sort(vals)
		return vals, nil
	}
	return nil, nil
}

// unescape undoes Route53's octal escapes (\052 for *).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func decodeSpec(plan actions.Plan) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(plan.Spec, &s); err != nil {
		return s, fmt.Errorf("decode failover plan: %w", err)
	}
	if s.RDS == nil && s.DNS == nil {
		return s, errors.New("decode failover plan: nothing to fail over")
	}
	return s, nil
}

// Execute implements actions.Action.
func (a *Action) Execute(ctx context.Context, plan actions.Plan, j actions.Journal) error {
	if ds, ok := decodeDrill(plan); ok {
		return a.executeDrill(ctx, ds, j)
	}
	s, err := decodeSpec(plan)
	if err != nil {
		return err
	}
	w := a.Waits.withDefaults()
	if s.RDS != nil {
		client, err := a.rdsClient(ctx, s.RDS.Region)
		if err != nil {
			return err
		}
		outcome, err := actions.RunStep(ctx, j, StepPromote, func(ctx context.Context, resumed bool) (string, error) {
			return a.promote(ctx, client, s.RDS, resumed)
		})
		if err != nil {
			return err
		}
		j.Note(ctx, outcome)
		if _, err := actions.RunStep(ctx, j, StepWaitDB, func(ctx context.Context, _ bool) (string, error) {
			waiter := rds.NewDBInstanceAvailableWaiter(client, func(o *rds.DBInstanceAvailableWaiterOptions) {
				if w.MinDelay > 0 {
					o.MinDelay = w.MinDelay
				}
				if w.MaxDelay > 0 {
					o.MaxDelay = w.MaxDelay
				}
			})
			if err := waiter.Wait(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(s.RDS.Replica)}, w.DBAvailable); err != nil {
				return "", waitError(fmt.Sprintf("%s did not become available", s.RDS.Replica), err)
			}
			return "available", nil
		}); err != nil {
			return err
		}
		j.Note(ctx, fmt.Sprintf("%s is available", s.RDS.Replica))
	}
	if s.DNS != nil {
		client, err := a.route53Client(ctx)
		if err != nil {
			return err
		}
		d := s.DNS
		changeID, err := actions.RunStep(ctx, j, StepUpsertDNS, func(ctx context.Context, _ bool) (string, error) {
			out, err := client.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
				HostedZoneId: aws.String(d.ZoneID),
				ChangeBatch: &r53types.ChangeBatch{
					Comment: aws.String("drbot failover of " + plan.Service),
					Changes: []r53types.Change{{
						Action: r53types.ChangeActionUpsert,
						ResourceRecordSet: &r53types.ResourceRecordSet{
							Name:            aws.String(d.Record),
							Type:            r53types.RRType(d.Type),
							TTL:             aws.Int64(d.TTL),
							ResourceRecords: []r53types.ResourceRecord{{Value: aws.String(d.Value)}},
						},
					}},
				},
			})
			if err != nil {
				var nz *r53types.NoSuchHostedZone
				if errors.As(err, &nz) {
					return "", actions.Refusef("Route53 hosted zone %s not found", d.ZoneID)
				}
				var ib *r53types.InvalidChangeBatch
				if errors.As(err, &ib) {
					return "", actions.Refusef("Route53 refused the change of %s: %s", d.Record, strings.Join(ib.Messages, "; "))
				}
				return "", fmt.Errorf("upsert %s: %w", d.Record, err)
			}
			if out.ChangeInfo == nil || out.ChangeInfo.Id == nil {
				return "", fmt.Errorf("upsert %s: Route53 returned no change id", d.Record)
			}
			return aws.ToString(out.ChangeInfo.Id), nil
		})
		if err != nil {
			return err
		}
		j.Note(ctx, fmt.Sprintf("%s %s → %s (TTL %ds), change %s", strings.TrimSuffix(d.Record, "."), d.Type, d.Value, d.TTL, changeID))
		if _, err := actions.RunStep(ctx, j, StepWaitDNS, func(ctx context.Context, _ bool) (string, error) {
			waiter := route53.NewResourceRecordSetsChangedWaiter(client, func(o *route53.ResourceRecordSetsChangedWaiterOptions) {
				if w.MinDelay > 0 {
					o.MinDelay = w.MinDelay
				}
				if w.MaxDelay > 0 {
					o.MaxDelay = w.MaxDelay
				}
			})
			if err := waiter.Wait(ctx, &route53.GetChangeInput{Id: aws.String(changeID)}, w.DNSChanged); err != nil {
				return "", waitError(fmt.Sprintf("DNS change %s did not become INSYNC", changeID), err)
			}
			return "INSYNC", nil
		}); err != nil {
			return err
		}
		j.Note(ctx, "DNS change is INSYNC")
	}
	if s.Health != "" {
		observed, err := actions.RunStep(ctx, j, StepHealthCheck, func(ctx context.Context, _ bool) (string, error) {
			return a.waitHealthy(ctx, s.Health, w)
		})
		if err != nil {
			return err
		}
		j.Note(ctx, "health check passed: "+observed)
	}
	return nil
}

// promote promotes the replica unless it is already standalone. A promote
// already done (by an earlier attempt, or by hand) is detected and not
// repeated: the instance no longer names a source, or RDS answers that it is
// not a read replica.
func (a *Action) promote(ctx context.Context, client *rds.Client, s *RDSSpec, resumed bool) (string, error) {
	inst, err := describe(ctx, client, s.Replica)
	if err != nil {
		return "", err
	}
	if aws.ToString(inst.ReadReplicaSourceDBInstanceIdentifier) == "" {
		return fmt.Sprintf("%s is already a standalone instance: promote skipped", s.Replica), nil
	}
	_, err = client.PromoteReadReplica(ctx, &rds.PromoteReadReplicaInput{DBInstanceIdentifier: aws.String(s.Replica)})
	if err != nil {
		var bad *rdstypes.InvalidDBInstanceStateFault
		if errors.As(err, &bad) {
			if strings.Contains(strings.ToLower(bad.ErrorMessage()), "not a read replica") {
				return fmt.Sprintf("%s was already promoted: promote skipped", s.Replica), nil
			}
			return "", actions.Refusef("RDS will not promote %s now: %s", s.Replica, bad.ErrorMessage())
		}
		return "", fmt.Errorf("promote %s: %w", s.Replica, err)
	}
	a.log.InfoContext(ctx, "promoted read replica", "replica", s.Replica, "region", s.Region, "resumed", resumed)
	return fmt.Sprintf("promoted read replica %s (was replicating from %s)", s.Replica, aws.ToString(inst.ReadReplicaSourceDBInstanceIdentifier)), nil
}

// waitError makes a waiter's failure user-safe.
func waitError(what string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "exceeded max wait time"):
		return actions.Refusef("%s in time", what)
	case strings.Contains(msg, "waiter state transitioned to Failure"):
		return actions.Refusef("%s: it entered a failed state", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// waitHealthy polls url until it answers 2xx or w.Health passes.
func (a *Action) waitHealthy(ctx context.Context, url string, w Waits) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, w.Health)
	defer cancel()
	tick := time.NewTicker(w.HealthInterval)
	defer tick.Stop()
	for {
		c := verify.HTTP(ctx, verify.Deps{HTTP: a.HTTP}, "health", url)
		if c.OK {
			return c.Observed, nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return "", actions.Refusef("%s did not answer 2xx within %s (last: %s)", c.Target, w.Health, healthReason(c))
			}
			return "", ctx.Err()
		case <-tick.C:
		}
	}
}

// Verify implements actions.Action: the promoted instance is available, the
// record has the configured value, and the health check passes.
func (a *Action) Verify(ctx context.Context, plan actions.Plan) (actions.Report, error) {
	if ds, ok := decodeDrill(plan); ok {
		return a.verifyDrill(ctx, ds)
	}
	s, err := decodeSpec(plan)
	if err != nil {
		return actions.Report{}, err
	}
	var r actions.Report
	if s.RDS != nil {
		c := actions.CheckResult{Name: s.RDS.Replica + " available", Kind: "rds", Target: s.RDS.Replica + " (" + s.RDS.Region + ")", Expected: "available"}
		began := time.Now()
		client, err := a.rdsClient(ctx, s.RDS.Region)
		if err == nil {
			var inst rdstypes.DBInstance
			inst, err = describe(ctx, client, s.RDS.Replica)
			if err == nil {
				c.Observed = aws.ToString(inst.DBInstanceStatus)
				c.OK = c.Observed == "available"
			}
		}
		c.Latency = time.Since(began)
		if err != nil {
			c.Error = userError(ctx, err)
		}
		r.Checks = append(r.Checks, c)
	}
	if s.DNS != nil {
		d := s.DNS
		c := actions.CheckResult{Name: strings.TrimSuffix(d.Record, ".") + " " + d.Type, Kind: "dns", Target: d.ZoneID, Expected: d.Value}
		began := time.Now()
		client, err := a.route53Client(ctx)
		if err == nil {
			var vals []string
			vals, err = currentValues(ctx, client, d.ZoneID, d.Record, d.Type)
			if err == nil {
				c.Observed = strings.Join(vals, ", ")
				if len(vals) == 0 {
					c.Observed = "no such record"
				}
				c.OK = len(vals) == 1 && sameValue(vals[0], d.Value)
			}
		}
		c.Latency = time.Since(began)
		if err != nil {
			c.Error = userError(ctx, err)
		}
		r.Checks = append(r.Checks, c)
	}
	if s.Health != "" {
		// The same URL that had to fail in the preflight must pass now.
		r.Checks = append(r.Checks, verify.HTTP(ctx, verify.Deps{HTTP: a.HTTP}, "health after failover", s.Health))
	}
	return r, nil
}

func userError(ctx context.Context, err error) string {
	var ref *actions.Refusal
	if errors.As(err, &ref) {
		return ref.Msg
	}
	slog.WarnContext(ctx, "failover verify", "err", err)
	return "could not read it from AWS"
}
