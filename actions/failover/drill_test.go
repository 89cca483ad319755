package failover_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/failover"
	"github.com/drbot-dev/drbot/runbook"
)

// awsState is moto's RDS instances and Route53 records, as text.
func (w *world) awsState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	dbs, err := w.rds.DescribeDBInstances(ctx(t), &rds.DescribeDBInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dbs.DBInstances {
		fmt.Fprintf(&b, "rds %s %s source=%s replicas=%v\n", aws.ToString(d.DBInstanceIdentifier), aws.ToString(d.DBInstanceStatus),
			aws.ToString(d.ReadReplicaSourceDBInstanceIdentifier), d.ReadReplicaDBInstanceIdentifiers)
	}
	rrs, err := w.r53.ListResourceRecordSets(ctx(t), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(w.zoneID)})
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range rrs.ResourceRecordSets {
		var vals []string
		for _, v := range rr.ResourceRecords {
			vals = append(vals, aws.ToString(v.Value))
		}
		fmt.Fprintf(&b, "dns %s %s ttl=%d %v\n", aws.ToString(rr.Name), rr.Type, aws.ToInt64(rr.TTL), vals)
	}
	return b.String()
}

func (w *world) setTTL(t *testing.T, ttl int64) {
	t.Helper()
	if _, err := w.r53.ChangeResourceRecordSets(ctx(t), &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(w.zoneID),
		ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{
			Action: r53types.ChangeActionUpsert,
			ResourceRecordSet: &r53types.ResourceRecordSet{
				Name: aws.String("api.inflow.ai"), Type: r53types.RRTypeA, TTL: aws.Int64(ttl),
				ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("10.0.0.1")}},
			},
		}}},
	}); err != nil {
		t.Fatal(err)
	}
}

// TestFailoverDrillChecksWithoutChangingAnything: the failover drill runs
// every preflight check — replica available and replicating, the record's
// TTL at most the configured one, the secondary answering the health URL
// at the record's new value — and moto's RDS and Route53 state is exactly
// as before, whether the checks pass or fail.
func TestFailoverDrillChecksWithoutChangingAnything(t *testing.T) {
	w := newWorld(t)
	var secondaryUp = true
	var hosts []string
	secondary := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hosts = append(hosts, r.Host)
		if !secondaryUp {
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = rw.Write([]byte("ok"))
	}))
	t.Cleanup(secondary.Close)
	su, _ := url.Parse(secondary.URL)
	cfg := &runbook.Config{Services: []runbook.Service{{
		Name: "inflow",
		Failover: &runbook.Failover{
			RDS: &runbook.FailoverRDS{Replica: "inflow-secondary", Region: region},
			DNS: &runbook.FailoverDNS{ZoneID: w.zoneID, Record: "api.inflow.ai", Type: "A", Value: "127.0.0.1", TTL: 60},
			// The public name: the drill reaches it at the record's new value.
			Health: "http://api.inflow.ai:" + su.Port() + "/health",
		},
	}}}
	a := failover.New(cfg, w.load)
	a.Waits = failover.Waits{Probe: 2e9}
	before := w.awsState(t)

	drill := func() (actions.Plan, []string, error) {
		t.Helper()
		plan, err := a.DrillPlan(ctx(t), actions.Params{Service: "inflow"})
		if err != nil {
			t.Fatal(err)
		}
		j := actiontest.NewJournal()
		err = a.Execute(ctx(t), plan, j)
		return plan, j.Finished(), err
	}
	// TTL 300 > 60: the drill fails on that check, and changes nothing.
	plan, done, err := drill()
	if err == nil || !strings.Contains(err.Error(), "DNS TTL at most 60s: 300s") {
		t.Errorf("drill with TTL 300: %v", err)
	}
	if want := []string{"check-replica", "check-dns-ttl", "check-secondary"}; !slices.Equal(done, want) {
		t.Errorf("checks run %v, want %v", done, want)
	}
	if after := w.awsState(t); after != before {
		t.Fatalf("AWS state changed by a failing drill:\n%s\nwas\n%s", after, before)
	}
	if rep, err := a.Verify(ctx(t), plan); err != nil || !rep.OK() {
		t.Errorf("verify after a failing drill: %+v, %v", rep, err)
	}

	// TTL lowered as runbook 000 asks: every check passes, nothing changes.
	w.setTTL(t, 60)
	before = w.awsState(t)
	plan, _, err = drill()
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	if after := w.awsState(t); after != before {
		t.Fatalf("AWS state changed by the drill:\n%s\nwas\n%s", after, before)
	}
	if !strings.Contains(before, "rds inflow-secondary available source=inflow-primary") {
		t.Fatalf("moto state: %s", before)
	}
	if len(hosts) == 0 || hosts[len(hosts)-1] != "api.inflow.ai:"+su.Port() {
		t.Errorf("the secondary was asked for hosts %v, want the public name", hosts)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() || len(rep.Checks) != 2 {
		t.Errorf("verify: %+v, %v", rep, err)
	}
	// The secondary down: refused, still nothing changed.
	secondaryUp = false
	if _, _, err := drill(); err == nil || !strings.Contains(err.Error(), "secondary healthy") {
		t.Errorf("drill with the secondary down: %v", err)
	}
	if after := w.awsState(t); after != before {
		t.Fatalf("AWS state changed:\n%s\nwas\n%s", after, before)
	}
}
