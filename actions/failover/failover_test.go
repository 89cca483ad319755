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
// whose api record points at the primary region.
type world struct {
	load   failover.LoadAWS
	rds    *rds.Client
	r53    *route53.Client
	zoneID string
	health *httptest.Server
	sick   atomic.Bool
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
		if w.sick.Load() {
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
		!strings.Contains(fact(plan, "Secondary health"), "healthy") || !strings.Contains(fact(plan, "New value"), "10.1.0.1 (TTL 60s)") {
		t.Fatalf("facts %+v", plan.Facts)
	}
	if len(plan.Warnings) != 0 {
		t.Fatalf("warnings %v", plan.Warnings)
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

func TestFailoverFailsWhenSecondaryNeverHealthy(t *testing.T) {
	w := newWorld(t)
	w.sick.Store(true)
	a := w.action()
	a.Waits.Health = 100 * time.Millisecond
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Warnings) != 1 || !strings.Contains(plan.Warnings[0], "health check fails") {
		t.Fatalf("warnings %v", plan.Warnings)
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
	rep, _ := a.Verify(ctx(t), plan)
	if rep.OK() || len(rep.Failed()) != 1 || rep.Failed()[0].Kind != "http" {
		t.Fatalf("verify %+v", rep)
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
