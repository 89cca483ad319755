package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/drbot-dev/drbot/actions"
)

// The drill form of failover (issue 11): every preflight check a failover
// depends on, run for real, without promoting the replica or changing DNS —
// the replica is available and replicating from its source, the record's
// TTL is at most the configured one (runbook 000 lowers it before a
// failover), and the secondary answers the health URL (reached at the
// record's new value, as DNS would route it after the failover). Verify
// checks that the replica is still a replica and the record unchanged.
//
// Its Spec uses keys of its own (drill_rds, drill_dns), so a drill plan can
// never be read as a failover's.

// Drill steps.
const (
	StepCheckReplica   = "check-replica"
	StepCheckTTL       = "check-dns-ttl"
	StepCheckSecondary = "check-secondary"
)

var _ actions.Drillable = (*Action)(nil)

// DrillSpec is a failover drill's pinned input.
type DrillSpec struct {
	Drill  bool     `json:"drill"`
	RDS    *RDSSpec `json:"drill_rds,omitempty"`
	DNS    *DNSSpec `json:"drill_dns,omitempty"`
	Health string   `json:"drill_health,omitempty"`
	// CurrentTTL is the record's TTL when planned (0: no such record).
	CurrentTTL int64 `json:"current_ttl,omitempty"`
}

// DrillPlan implements actions.Drillable: it reads what the checks will
// look at (nothing is changed, now or when it runs).
func (a *Action) DrillPlan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	svc, err := p.ServiceIn(a.cfg)
	if err != nil {
		return actions.Plan{}, err
	}
	fo := svc.Failover
	if fo == nil || (fo.RDS == nil && fo.DNS == nil) {
		return actions.Plan{}, actions.Refusef("service %s has no failover configured (failover.rds or failover.dns)", svc.Name)
	}
	s := DrillSpec{Drill: true, Health: fo.Health}
	var steps []actions.Step
	var facts []actions.Fact
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
		s.RDS = &RDSSpec{Replica: fo.RDS.Replica, Region: fo.RDS.Region, Source: aws.ToString(inst.ReadReplicaSourceDBInstanceIdentifier), Engine: aws.ToString(inst.Engine)}
		facts = append(facts, actions.Fact{Label: "Replica (not promoted)", Value: fmt.Sprintf("%s (%s), replicating from %s", s.RDS.Replica, s.RDS.Region, orNone(s.RDS.Source))})
		steps = append(steps, actions.Step{Name: StepCheckReplica, Description: fmt.Sprintf("check that %s is available and replicating from its source", s.RDS.Replica)})
	}
	if fo.DNS != nil {
		d := fo.DNS
		client, err := a.route53Client(ctx)
		if err != nil {
			return actions.Plan{}, err
		}
		record := fqdn(d.Record)
		cur, ttl, err := recordTTL(ctx, client, d.ZoneID, record, d.Type)
		if err != nil {
			return actions.Plan{}, err
		}
		s.DNS = &DNSSpec{ZoneID: d.ZoneID, Record: record, Type: d.Type, Value: d.Value, TTL: int64(d.TTL), Current: cur}
		if s.DNS.TTL <= 0 {
			s.DNS.TTL = 60
		}
		s.CurrentTTL = ttl
		facts = append(facts, actions.Fact{Label: "DNS record (not changed)", Value: fmt.Sprintf("%s %s → %s, TTL %ds (at most %ds for a failover)", strings.TrimSuffix(record, "."), d.Type, orNone(strings.Join(cur, ", ")), ttl, s.DNS.TTL)})
		steps = append(steps, actions.Step{Name: StepCheckTTL, Description: fmt.Sprintf("check that %s's TTL is at most %ds", strings.TrimSuffix(record, "."), s.DNS.TTL)})
	}
	if fo.Health != "" {
		where := "the secondary"
		if s.DNS != nil {
			where = "the secondary at " + s.DNS.Value
		}
		steps = append(steps, actions.Step{Name: StepCheckSecondary, Description: fmt.Sprintf("GET %s from %s: it must answer 2xx", redact(fo.Health), where)})
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("encode drill plan: %w", err)
	}
	return actions.Plan{
		Kind: Kind, Service: svc.Name, Target: "drill:failover:" + svc.Name,
		Summary: fmt.Sprintf("Drill: every failover preflight check of %s, without promoting or changing DNS", svc.Name),
		Steps:   steps, Facts: facts, Spec: raw,
	}, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// recordTTL returns the record's values and TTL (none, 0 when it does not exist).
func recordTTL(ctx context.Context, client *route53.Client, zone, record, typ string) ([]string, int64, error) {
	out, err := client.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{
		HostedZoneId: aws.String(zone), StartRecordName: aws.String(record), StartRecordType: r53types.RRType(typ), MaxItems: aws.Int32(1),
	})
	if err != nil {
		var nz *r53types.NoSuchHostedZone
		if errors.As(err, &nz) {
			return nil, 0, actions.Refusef("Route53 hosted zone %s not found", zone)
		}
		return nil, 0, fmt.Errorf("list record sets of zone %s: %w", zone, err)
	}
	for _, rr := range out.ResourceRecordSets {
		if !strings.EqualFold(unescape(aws.ToString(rr.Name)), record) || string(rr.Type) != typ {
			continue
		}
		vals, err := currentValues(ctx, client, zone, record, typ)
		return vals, aws.ToInt64(rr.TTL), err
	}
	return nil, 0, nil
}

func decodeDrill(plan actions.Plan) (DrillSpec, bool) {
	var s DrillSpec
	if json.Unmarshal(plan.Spec, &s) != nil || !s.Drill {
		return DrillSpec{}, false
	}
	return s, true
}

// executeDrill runs every check, each a journalled step whose result is its
// report, and fails naming the checks that did not pass.
func (a *Action) executeDrill(ctx context.Context, s DrillSpec, j actions.Journal) error {
	var failed []string
	run := func(step string, check func(ctx context.Context) actions.CheckResult) error {
		rep, err := actions.RunStep(ctx, j, step, func(ctx context.Context, _ bool) (actions.Report, error) {
			return actions.Report{Checks: []actions.CheckResult{check(ctx)}}, nil
		})
		if err != nil {
			return err
		}
		for _, c := range rep.Failed() {
			failed = append(failed, fmt.Sprintf("%s: %s", c.Name, firstOf(c.Error, c.Observed)))
		}
		return nil
	}
	if s.RDS != nil {
		if err := run(StepCheckReplica, func(ctx context.Context) actions.CheckResult { return a.checkReplica(ctx, s.RDS) }); err != nil {
			return err
		}
	}
	if s.DNS != nil {
		if err := run(StepCheckTTL, func(ctx context.Context) actions.CheckResult { return a.checkTTL(ctx, s.DNS) }); err != nil {
			return err
		}
	}
	if s.Health != "" {
		if err := run(StepCheckSecondary, func(ctx context.Context) actions.CheckResult { return a.checkSecondary(ctx, s) }); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return actions.Refusef("the failover would not be ready: %s (nothing was promoted or changed)", strings.Join(failed, "; "))
	}
	return nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkReplica: available, and a read replica of a source whose replication
// status (when RDS reports one) is normal.
func (a *Action) checkReplica(ctx context.Context, r *RDSSpec) actions.CheckResult {
	c := actions.CheckResult{Name: "replica available and in sync", Kind: "rds", Target: r.Replica + " (" + r.Region + ")", Expected: "available, replicating"}
	began := time.Now()
	defer func() { c.Latency = time.Since(began) }()
	client, err := a.rdsClient(ctx, r.Region)
	if err != nil {
		c.Error = userError(ctx, err)
		return c
	}
	inst, err := describe(ctx, client, r.Replica)
	if err != nil {
		c.Error = userError(ctx, err)
		return c
	}
	status := aws.ToString(inst.DBInstanceStatus)
	source := aws.ToString(inst.ReadReplicaSourceDBInstanceIdentifier)
	repl := "replicating"
	ok := status == "available" && source != ""
	for _, si := range inst.StatusInfos {
		if aws.ToString(si.StatusType) == "read replication" {
			repl = aws.ToString(si.Status)
			if (si.Normal != nil && !*si.Normal) || repl == "error" || repl == "stopped" || repl == "terminated" {
				ok = false
			}
		}
	}
	c.Observed = fmt.Sprintf("%s, %s from %s", status, repl, source)
	if source == "" {
		c.Observed = status + ", not a read replica (already promoted?)"
	}
	c.OK = ok
	return c
}

// checkTTL: the record's TTL is at most the configured one, so clients
// follow the DNS change within it.
func (a *Action) checkTTL(ctx context.Context, d *DNSSpec) actions.CheckResult {
	name := strings.TrimSuffix(d.Record, ".")
	c := actions.CheckResult{Name: "DNS TTL at most " + fmt.Sprint(d.TTL) + "s", Kind: "dns", Target: name + " " + d.Type, Expected: fmt.Sprintf("≤ %ds", d.TTL)}
	client, err := a.route53Client(ctx)
	if err != nil {
		c.Error = userError(ctx, err)
		return c
	}
	cur, ttl, err := recordTTL(ctx, client, d.ZoneID, d.Record, d.Type)
	if err != nil {
		c.Error = userError(ctx, err)
		return c
	}
	if len(cur) == 0 {
		c.Observed = "no such record (the failover would create it)"
		c.OK = true
		return c
	}
	c.Observed = fmt.Sprintf("%ds", ttl)
	c.OK = ttl <= d.TTL
	if !c.OK {
		c.Observed += fmt.Sprintf(": lower it to %ds well before a failover (runbook 000)", d.TTL)
	}
	return c
}

// checkSecondary GETs the health URL from the secondary: the connection goes
// to the record's new value (the port and Host of the URL kept), as clients
// will reach it after the DNS change.
func (a *Action) checkSecondary(ctx context.Context, s DrillSpec) actions.CheckResult {
	target := redact(s.Health)
	c := actions.CheckResult{Name: "secondary healthy", Kind: "http", Target: target, Expected: "2xx"}
	w := a.Waits.withDefaults()
	client := a.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	if s.DNS != nil && s.DNS.Type != "" {
		via := strings.TrimSuffix(s.DNS.Value, ".")
		c.Target += " via " + via
		u, err := url.Parse(s.Health)
		if err != nil {
			c.Error = "not a valid URL"
			return c
		}
		port := u.Port()
		if port == "" {
			port = "80"
			if u.Scheme == "https" {
				port = "443"
			}
		}
		dialer := &net.Dialer{Timeout: w.Probe}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, net.JoinHostPort(via, port))
		}
		client = &http.Client{Transport: tr, Timeout: w.Probe, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	ctx, cancel := context.WithTimeout(ctx, w.Probe)
	defer cancel()
	began := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Health, nil)
	if err != nil {
		c.Error = "not a valid URL"
		return c
	}
	resp, err := client.Do(req)
	c.Latency = time.Since(began)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, which may carry credentials
		}
		c.Observed = "no answer"
		c.Error = "no answer: " + err.Error()
		return c
	}
	_ = resp.Body.Close()
	c.Observed = fmt.Sprintf("%d in %s", resp.StatusCode, c.Latency.Round(time.Millisecond))
	c.OK = resp.StatusCode >= 200 && resp.StatusCode < 300
	return c
}

// verifyDrill: nothing changed — the replica is still a replica of the same
// source, the record still has its planned values.
func (a *Action) verifyDrill(ctx context.Context, s DrillSpec) (actions.Report, error) {
	var r actions.Report
	if s.RDS != nil {
		c := actions.CheckResult{Name: "replica not promoted", Kind: "rds", Target: s.RDS.Replica, Expected: "replicating from " + orNone(s.RDS.Source)}
		client, err := a.rdsClient(ctx, s.RDS.Region)
		if err != nil {
			return r, err
		}
		inst, err := describe(ctx, client, s.RDS.Replica)
		if err != nil {
			return r, err
		}
		src := aws.ToString(inst.ReadReplicaSourceDBInstanceIdentifier)
		c.Observed = "replicating from " + orNone(src)
		c.OK = src == s.RDS.Source
		r.Checks = append(r.Checks, c)
	}
	if s.DNS != nil {
		c := actions.CheckResult{Name: "DNS record unchanged", Kind: "dns", Target: strings.TrimSuffix(s.DNS.Record, "."), Expected: orNone(strings.Join(s.DNS.Current, ", "))}
		client, err := a.route53Client(ctx)
		if err != nil {
			return r, err
		}
		cur, _, err := recordTTL(ctx, client, s.DNS.ZoneID, s.DNS.Record, s.DNS.Type)
		if err != nil {
			return r, err
		}
		c.Observed = orNone(strings.Join(cur, ", "))
		c.OK = c.Observed == c.Expected
		r.Checks = append(r.Checks, c)
	}
	return r, nil
}
