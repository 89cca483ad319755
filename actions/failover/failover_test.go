package failover_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/failover"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const region = "us-west-2"

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// world is a moto AWS with a primary, its read replica, and a hosted zone
// whose api record points at the primary region. health is the service's
// public health URL: it is answered by whichever region the api record
// points at in moto, as DNS would route it. The primary is down (the
// disaster) unless primaryUp is set; the secondary is up unless sick is set.
type world struct {
	load      failover.LoadAWS
	rds       *rds.Client
	r53       *route53.Client
	zoneID    string
	health    *httptest.Server
	sick      atomic.Bool
	primaryUp atomic.Bool
}

// servedBySecondary reports whether api.inflow.ai points at the secondary now.
func (w *world) servedBySecondary(ctx context.Context) bool {
	out, err := w.r53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(w.zoneID)})
	if err != nil {
		return false
	}
	for _, rr := range out.ResourceRecordSets {
		if aws.ToString(rr.Name) == "api.inflow.ai." && rr.Type == r53types.RRTypeA && len(rr.ResourceRecords) > 0 {
			return aws.ToString(rr.ResourceRecords[0].Value) == "10.1.0.1"
		}
	}
	return false
}

func newWorld(t *testing.T) *world {
	t.Helper()
	endpoint := testenv.Moto(t)
	w := &world{}
	w.load = func(ctx context.Context, r string) (aws.Config, error) {
		return awsconf.Load(ctx, r, awsconf.Static(endpoint, "test", "test"))
	}
	cfg, err := w.load(ctx(t), region)
	if err != nil {
		t.Fatal(err)
	}
	w.rds = rds.NewFromConfig(cfg)
	gcfg, err := w.load(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	w.r53 = route53.NewFromConfig(gcfg)

	if _, err := w.rds.CreateDBInstance(ctx(t), &rds.CreateDBInstanceInput{
		DBInstanceIdentifier: aws.String("inflow-primary"), DBInstanceClass: aws.String("db.t3.micro"),
		Engine: aws.String("postgres"), AllocatedStorage: aws.Int32(20),
		MasterUsername: aws.String("admin"), MasterUserPassword: aws.String("password123"),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.rds.CreateDBInstanceReadReplica(ctx(t), &rds.CreateDBInstanceReadReplicaInput{
		DBInstanceIdentifier: aws.String("inflow-secondary"), SourceDBInstanceIdentifier: aws.String("inflow-primary"),
		DBInstanceClass: aws.String("db.t3.micro"),
	}); err != nil {
		t.Fatal(err)
	}
	zone, err := w.r53.CreateHostedZone(ctx(t), &route53.CreateHostedZoneInput{Name: aws.String("inflow.ai"), CallerReference: aws.String(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	w.zoneID = strings.TrimPrefix(aws.ToString(zone.HostedZone.Id), "/hostedzone/")
	if _, err := w.r53.ChangeResourceRecordSets(ctx(t), &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(w.zoneID),
		ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{
			Action: r53types.ChangeActionCreate,
			ResourceRecordSet: &r53types.ResourceRecordSet{
				Name: aws.String("api.inflow.ai"), Type: r53types.RRTypeA, TTL: aws.Int64(300),
				ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("10.0.0.1")}},
			},
		}}},
	}); err != nil {
		t.Fatal(err)
	}
	w.health = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		up := w.primaryUp.Load()
		if w.servedBySecondary(r.Context()) {
			up = !w.sick.Load()
		}
		if !up {
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = rw.Write([]byte("ok"))
	}))
	t.Cleanup(w.health.Close)
	return w
}

func (w *world) config() *runbook.Config {
	return &runbook.Config{Services: []runbook.Service{{
		Name: "inflow",
		Failover: &runbook.Failover{
			RDS:    &runbook.FailoverRDS{Replica: "inflow-secondary", Region: region},
			DNS:    &runbook.FailoverDNS{ZoneID: w.zoneID, Record: "api.inflow.ai", Type: "A", Value: "10.1.0.1", TTL: 60},
			Health: w.health.URL + "/health",
		},
	}, {Name: "bare"}}}
}

func (w *world) action() *failover.Action {
	a := failover.New(w.config(), w.load)
	a.Waits = failover.Waits{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond,
		DBAvailable: time.Minute, DNSChanged: time.Minute, Health: 2 * time.Second, HealthInterval: 10 * time.Millisecond}
	return a
}

func (w *world) record(t *testing.T) (string, int64) {
	t.Helper()
	out, err := w.r53.ListResourceRecordSets(ctx(t), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(w.zoneID)})
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range out.ResourceRecordSets {
		if aws.ToString(rr.Name) == "api.inflow.ai." && rr.Type == r53types.RRTypeA {
			return aws.ToString(rr.ResourceRecords[0].Value), aws.ToInt64(rr.TTL)
		}
	}
	t.Fatal("no api.inflow.ai A record")
	return "", 0
}

func fact(p actions.Plan, label string) string {
	for _, f := range p.Facts {
		if f.Label == label {
			return f.Value
		}
	}
	return ""
}

func TestFailoverPromotesFlipsDNSAndChecksHealth(t *testing.T) {
	w := newWorld(t)
	a := w.action()
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	steps := []string{}
	for _, s := range plan.Steps {
		steps = append(steps, s.Name)
	}
	if got := strings.Join(steps, ","); got != "promote-replica,wait-db-available,upsert-dns,wait-dns-insync,health-check" {
		t.Fatalf("steps %s", got)
	}
	if fact(plan, "Current value") != "10.0.0.1" || fact(plan, "Replicates from") != "inflow-primary" ||
		!strings.Contains(fact(plan, "Primary health (step 1)"), "answered 503 Service Unavailable: unreachable") || !strings.Contains(fact(plan, "New value"), "10.1.0.1 (TTL 60s)") {
		t.Fatalf("facts %+v", plan.Facts)
	}
	if len(plan.Warnings) != 0 || len(plan.Danger) != 0 || plan.ExtraApprovals != 0 {
		t.Fatalf("warnings %v danger %v extra %d", plan.Warnings, plan.Danger, plan.ExtraApprovals)
	}
	// Plan is read-only: nothing changed.
	if v, _ := w.record(t); v != "10.0.0.1" {
		t.Fatalf("plan changed the record to %s", v)
	}

	j := actiontest.NewJournal()
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(j.Finished(), ","); got != strings.Join(steps, ",") {
		t.Fatalf("finished %s", got)
	}
	if v, ttl := w.record(t); v != "10.1.0.1" || ttl != 60 {
		t.Fatalf("record %s TTL %d after failover", v, ttl)
	}
	notes := strings.Join(j.Notes(), "\n")
	for _, want := range []string{"promoted read replica inflow-secondary", "is available", "10.1.0.1", "INSYNC", "health check passed: 200"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() || len(rep.Checks) != 3 {
		t.Fatalf("verify %+v, %v", rep, err)
	}

	// Running it again resumes nothing: every step is recorded as done.
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if len(j.Skipped()) != 5 {
		t.Fatalf("second run skipped %v", j.Skipped())
	}
}

func TestFailoverResumesAfterCrashAfterPromote(t *testing.T) {
	w := newWorld(t)
	a := w.action()
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	// A first attempt promoted and recorded it, then crashed in the DNS step.
	if _, err := w.rds.PromoteReadReplica(ctx(t), &rds.PromoteReadReplicaInput{DBInstanceIdentifier: aws.String("inflow-secondary")}); err != nil {
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	if err := j.MarkDone(failover.StepPromote, "promoted"); err != nil {
		t.Fatal(err)
	}
	if err := j.MarkDone(failover.StepWaitDB, "available"); err != nil {
		t.Fatal(err)
	}
	j.MarkStarted(failover.StepUpsertDNS)
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(j.Skipped(), ","); got != "promote-replica,wait-db-available" {
		t.Fatalf("skipped %s", got)
	}
	if slices.Contains(j.Ran(), failover.StepPromote) {
		t.Fatal("the promote ran again")
	}
	if v, _ := w.record(t); v != "10.1.0.1" {
		t.Fatalf("record %s", v)
	}
}

func TestFailoverPlanRefusals(t *testing.T) {
	w := newWorld(t)
	cfg := w.config()
	cases := []struct {
		name   string
		mutate func(*runbook.Failover)
		svc    string
		want   string
	}{
		{"no failover", nil, "bare", "no failover configured"},
		{"unknown service", nil, "nope", "unknown service"},
		{"missing replica", func(f *runbook.Failover) { f.RDS.Replica = "ghost" }, "inflow", "ghost not found"},
		{"missing zone", func(f *runbook.Failover) { f.RDS = nil; f.DNS.ZoneID = "ZNOPE12345" }, "inflow", "hosted zone ZNOPE12345 not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := *cfg
			c.Services = slices.Clone(cfg.Services)
			if tc.mutate != nil {
				f := *c.Services[0].Failover
				r := *f.RDS
				d := *f.DNS
				f.RDS, f.DNS = &r, &d
				tc.mutate(&f)
				c.Services[0].Failover = &f
			}
			a := failover.New(&c, w.load)
			_, err := a.Plan(ctx(t), actions.Params{Service: tc.svc})
			var r *actions.Refusal
			if !errors.As(err, &r) || !strings.Contains(r.Msg, tc.want) {
				t.Fatalf("Plan = %v, want a refusal containing %q", err, tc.want)
			}
		})
	}
}

// After the DNS change the health URL that had to fail must pass: when the
// secondary does not answer either, the health step fails and so does Verify.
func TestFailoverFailsWhenSecondaryNeverHealthy(t *testing.T) {
	w := newWorld(t)
	w.sick.Store(true)
	a := w.action()
	a.Waits.Health = 100 * time.Millisecond
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fact(plan, "Primary health (step 1)"), "503") {
		t.Fatalf("facts %+v", plan.Facts)
	}
	j := actiontest.NewJournal()
	err = a.Execute(ctx(t), plan, j)
	var r *actions.Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Msg, "did not answer 2xx") {
		t.Fatalf("Execute = %v", err)
	}
	if got := strings.Join(j.Failed(), ","); got != "health-check" {
		t.Fatalf("failed %s", got)
	}
	if v, _ := w.record(t); v != "10.1.0.1" {
		t.Fatalf("the DNS change did not happen before the health step: %s", v)
	}
	rep, _ := a.Verify(ctx(t), plan)
	if rep.OK() || len(rep.Failed()) != 1 || rep.Failed()[0].Kind != "http" || !strings.Contains(rep.Failed()[0].Observed, "503") ||
		rep.Failed()[0].Target != w.health.URL+"/health" {
		t.Fatalf("verify %+v", rep)
	}
	// The secondary comes up: the same URL now passes.
	w.sick.Store(false)
	if rep, _ := a.Verify(ctx(t), plan); !rep.OK() {
		t.Fatalf("verify after the secondary came up %+v", rep)
	}
}

func TestFailoverDNSOnly(t *testing.T) {
	w := newWorld(t)
	cfg := w.config()
	cfg.Services[0].Failover.RDS = nil
	cfg.Services[0].Failover.Health = ""
	cfg.Services[0].Failover.DNS.Record = "new.inflow.ai"
	a := failover.New(cfg, w.load)
	a.Waits = failover.Waits{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fact(plan, "Current value"), "no such record") || len(plan.Steps) != 2 {
		t.Fatalf("plan %+v", plan)
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() || rep.Checks[0].Observed != "10.1.0.1" {
		t.Fatalf("verify %+v, %v", rep, err)
	}
}

func TestFailoverResumesAPromoteThatCrashedMidStep(t *testing.T) {
	w := newWorld(t)
	a := w.action()
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	// The first attempt issued the promote and died before recording it.
	if _, err := w.rds.PromoteReadReplica(ctx(t), &rds.PromoteReadReplicaInput{DBInstanceIdentifier: aws.String("inflow-secondary")}); err != nil {
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	j.MarkStarted(failover.StepPromote)
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatalf("resumed Execute: %v", err)
	}
	if len(j.Finished()) != 5 {
		t.Fatalf("finished %v", j.Finished())
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() {
		t.Fatalf("verify %+v, %v", rep, err)
	}
}

func refusal(t *testing.T, err error) string {
	t.Helper()
	var r *actions.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("got %v, want a refusal", err)
	}
	return r.Msg
}

// Runbook step 1: while the service's health URL answers 2xx the primary is
// not down, and failover is refused with what was observed; nothing changes.
func TestFailoverRefusedWhilePrimaryHealthy(t *testing.T) {
	w := newWorld(t)
	w.primaryUp.Store(true)
	a := w.action()
	for _, dry := range []bool{false, true} {
		_, err := a.Plan(ctx(t), actions.Params{Service: "inflow", DryRun: dry})
		want := "primary still healthy: GET " + w.health.URL + "/health answered 200 OK; failover refused " +
			"(step 1 of the runbook: verify the primary is unreachable). Use --force to override (needs 3 approvals)"
		if msg := refusal(t, err); msg != want {
			t.Fatalf("refusal\n got %q\nwant %q", msg, want)
		}
	}
	if v, _ := w.record(t); v != "10.0.0.1" {
		t.Fatalf("record changed to %s", v)
	}
	out, err := w.rds.DescribeDBInstances(ctx(t), &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("inflow-secondary")})
	if err != nil || aws.ToString(out.DBInstances[0].ReadReplicaSourceDBInstanceIdentifier) != "inflow-primary" {
		t.Fatalf("replica changed: %v", err)
	}

	// The count follows the config: one required → two with --force.
	cfg := w.config()
	cfg.Approvals.Commands = map[string]runbook.CommandApprovals{"failover": {Required: 1}}
	one := failover.New(cfg, w.load)
	if _, err := one.Plan(ctx(t), actions.Params{Service: "inflow"}); !strings.HasSuffix(refusal(t, err), "(needs 2 approvals)") {
		t.Fatalf("with required 1: %v", err)
	}
}

// --force plans it anyway: the plan records it (so the hash covers it), asks
// for one more approval and says so in a danger line; the failover then runs
// and the same health URL passes from the secondary.
func TestFailoverForcedWhilePrimaryHealthy(t *testing.T) {
	w := newWorld(t)
	w.primaryUp.Store(true)
	a := w.action()
	forced, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Flags: map[string]string{failover.FlagForce: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	if forced.ExtraApprovals != 1 || len(forced.Danger) != 1 || !strings.HasPrefix(forced.Summary, "FORCED") ||
		!strings.Contains(string(forced.Spec), `"force":true`) {
		t.Fatalf("forced plan: extra %d danger %v summary %q spec %s", forced.ExtraApprovals, forced.Danger, forced.Summary, forced.Spec)
	}
	for _, want := range []string{"FORCED with --force", "the primary still answers", "answered 200 OK", "Needs 3 approvals instead of 2"} {
		if !strings.Contains(forced.Danger[0], want) {
			t.Errorf("danger line lacks %q: %s", want, forced.Danger[0])
		}
	}
	if f := fact(forced, "Primary health (step 1)"); !strings.Contains(f, "200 OK: still healthy") {
		t.Errorf("primary health fact %q", f)
	}

	// The same world without --force (the primary now down) plans without
	// the bump, under another hash: an approval of one never counts for the other.
	w.primaryUp.Store(false)
	plain, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	hf, _ := forced.Hash()
	hp, _ := plain.Hash()
	if hf == hp || plain.ExtraApprovals != 0 || len(plain.Danger) != 0 {
		t.Fatalf("plain plan %+v", plain)
	}
	// --force with the primary down still costs the extra approval: the
	// requester chose to skip the check.
	again, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Flags: map[string]string{failover.FlagForce: "true"}})
	if err != nil || again.ExtraApprovals != 1 || len(again.Danger) != 1 || !strings.Contains(again.Danger[0], "not enforced") {
		t.Fatalf("forced plan with the primary down: %+v, %v", again, err)
	}

	w.primaryUp.Store(true)
	j := actiontest.NewJournal()
	if err := a.Execute(ctx(t), forced, j); err != nil {
		t.Fatal(err)
	}
	if v, _ := w.record(t); v != "10.1.0.1" {
		t.Fatalf("record %s", v)
	}
	if rep, err := a.Verify(ctx(t), forced); err != nil || !rep.OK() {
		t.Fatalf("verify %+v, %v", rep, err)
	}
}

// A primary that refuses connections, times out or answers 5xx is
// unreachable: the failover proceeds and the card shows what was observed.
func TestFailoverProceedsWhenPrimaryUnreachable(t *testing.T) {
	w := newWorld(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/health"
	closed.Close()
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) })
	cases := []struct {
		name, url, want string
	}{
		{"5xx", w.health.URL + "/health", "answered 503 Service Unavailable: unreachable, as runbook step 1 requires"},
		{"connection refused", closedURL, "connection refused"},
		{"timeout", hung.URL + "/health", "got no answer within 200ms: unreachable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := w.config()
			cfg.Services[0].Failover.Health = tc.url
			a := failover.New(cfg, w.load)
			a.Waits.Probe = 200 * time.Millisecond
			plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
			if err != nil {
				t.Fatal(err)
			}
			if f := fact(plan, "Primary health (step 1)"); !strings.Contains(f, tc.want) {
				t.Fatalf("primary health fact %q, want %q", f, tc.want)
			}
			if plan.ExtraApprovals != 0 || len(plan.Danger) != 0 {
				t.Fatalf("plan %+v", plan)
			}
		})
	}
}
