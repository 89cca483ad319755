package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/failover"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/slack"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// failoverWorld is the e2e world with the real failover action over moto
// (RDS primary + read replica, a Route53 zone) and the service's public health
// URL on a local server that answers for whichever region the record points at.
type failoverWorld struct {
	*world
	r53       *route53.Client
	zoneID    string
	primaryUp atomic.Bool
	action    *failover.Action
}

func newFailoverWorld(t *testing.T) *failoverWorld {
	t.Helper()
	ctx := context.Background()
	endpoint := testenv.Moto(t)
	load := func(ctx context.Context, r string) (aws.Config, error) {
		return awsconf.Load(ctx, r, awsconf.Static(endpoint, "test", "test"))
	}
	cfg, err := load(ctx, "us-west-2")
	if err != nil {
		t.Fatal(err)
	}
	rc := rds.NewFromConfig(cfg)
	if _, err := rc.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{
		DBInstanceIdentifier: aws.String("inflow-primary"), DBInstanceClass: aws.String("db.t3.micro"),
		Engine: aws.String("postgres"), AllocatedStorage: aws.Int32(20),
		MasterUsername: aws.String("admin"), MasterUserPassword: aws.String("password123"),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.CreateDBInstanceReadReplica(ctx, &rds.CreateDBInstanceReadReplicaInput{
		DBInstanceIdentifier: aws.String("inflow-secondary"), SourceDBInstanceIdentifier: aws.String("inflow-primary"),
		DBInstanceClass: aws.String("db.t3.micro"),
	}); err != nil {
		t.Fatal(err)
	}
	fw := &failoverWorld{r53: route53.NewFromConfig(cfg)}
	zone, err := fw.r53.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("inflow.ai"), CallerReference: aws.String(t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	fw.zoneID = strings.TrimPrefix(aws.ToString(zone.HostedZone.Id), "/hostedzone/")
	if _, err := fw.r53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(fw.zoneID),
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
	health := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if fw.record(r.Context()) == "10.1.0.1" || fw.primaryUp.Load() {
			_, _ = rw.Write([]byte("ok"))
			return
		}
		http.Error(rw, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(health.Close)

	fw.world = newWorld(t, "15m")
	fw.cfg, err = runbook.Parse("failover.yaml", []byte(`
slack:
  approvers: [UBOB, SDBA, carol@example.com]
approvals:
  required: 1
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    failover:
      rds: {replica: inflow-secondary, region: us-west-2}
      dns: {zone_id: `+fw.zoneID+`, record: api.inflow.ai, type: A, value: 10.1.0.1, ttl: 60}
      health: `+health.URL+`/health
`))
	if err != nil {
		t.Fatal(err)
	}
	fw.action = failover.New(fw.cfg, load)
	fw.action.Waits = failover.Waits{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond,
		DBAvailable: time.Minute, DNSChanged: time.Minute, Health: 10 * time.Second, HealthInterval: 20 * time.Millisecond}
	return fw
}

func (fw *failoverWorld) record(ctx context.Context) string {
	out, err := fw.r53.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(fw.zoneID)})
	if err != nil {
		return ""
	}
	for _, rr := range out.ResourceRecordSets {
		if aws.ToString(rr.Name) == "api.inflow.ai." && rr.Type == r53types.RRTypeA && len(rr.ResourceRecords) > 0 {
			return aws.ToString(rr.ResourceRecords[0].Value)
		}
	}
	return ""
}

// start is startInstance with the real failover action registered.
func (fw *failoverWorld) start(t *testing.T) *instance {
	t.Helper()
	return serveWith(t, fw.world, func(ctx context.Context, log *slog.Logger, db *postgres.DB, client *slack.Client) *runtime {
		reg := actions.Registry{}
		reg.Register(fw.action)
		return newRuntimeWith(ctx, log, fw.cfg, db, client, reg)
	})
}

// TestFailoverForceEndToEnd: runbook step 1 through the whole bot. While the
// primary's health URL answers 200, /dr failover is refused with the observed
// status and nothing is requested; with --force the card carries a red
// warning and a red Approve button and needs three distinct approvers (two
// as usual, plus one); the third approval runs it and the same health URL
// passes from the secondary.
func TestFailoverForceEndToEnd(t *testing.T) {
	fw := newFailoverWorld(t)
	fw.primaryUp.Store(true)
	in := fw.start(t)

	in.command(t, fw.world, alice, "failover")
	fw.waitEphemeral(t, alice, "primary still healthy: GET http://127.0.0.1")
	fw.waitEphemeral(t, alice, "answered 200 OK; failover refused (step 1 of the runbook: verify the primary is unreachable). Use --force to override (needs 3 approvals)")
	if rs, err := in.db.RecentRequests(context.Background(), "inflow", 5); err != nil || len(rs) != 0 {
		t.Fatalf("a refused failover made requests %+v, %v", rs, err)
	}

	in.command(t, fw.world, alice, `failover --force --reason "writes corrupt on the primary"`)
	card, id := fw.card(t, in.db, 0)
	blocks := unescape(card.Blocks)
	for _, want := range []string{":red_circle: *FORCED with --force: the primary still answers", "Needs 3 approvals instead of 2"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("forced card lacks %q:\n%s", want, blocks)
		}
	}
	if style := buttonStyle(t, card.Blocks, chat.ActionApprove); style != "danger" {
		t.Errorf("the forced card's Approve button has style %q, want danger", style)
	}
	if !strings.Contains(card.Text, "0 of 3 approvals") {
		t.Errorf("forced card does not ask for three approvals: %s", card.Text)
	}
	fw.waitEphemeral(t, alice, "waiting for approval from 3 other approvers")

	// Approvals from three distinct approvers other than the requester.
	in.click(t, clickPayload(t, fw.world, card, alice, chat.ActionApprove, id))
	fw.waitEphemeral(t, alice, "you cannot approve it")
	in.click(t, clickPayload(t, fw.world, card, bob, chat.ActionApprove, id))
	in.click(t, clickPayload(t, fw.world, card, bob, chat.ActionApprove, id))
	in.click(t, clickPayload(t, fw.world, card, dave, chat.ActionApprove, id))
	fw.waitCard(t, card.TS, "2 of 3 approvals")
	if r, err := in.db.Request(context.Background(), id); err != nil || r.State != store.RequestPending {
		t.Fatalf("after two approvals the forced request is %+v, %v; want pending", r.State, err)
	}
	if got := fw.record(context.Background()); got != "10.0.0.1" {
		t.Fatalf("DNS changed before the third approval: %s", got)
	}
	in.click(t, clickPayload(t, fw.world, card, carol, chat.ActionApprove, id))
	fw.waitState(t, in.db, id, store.RequestSucceeded)
	if got := fw.record(context.Background()); got != "10.1.0.1" {
		t.Fatalf("record after the failover: %s", got)
	}
	fw.waitCard(t, card.TS, "health after failover")
	if as := approvalsOf(t, in.db, id); len(as) != 3 {
		t.Errorf("approvals %+v, want bob's, dave's and carol's", as)
	}
}

// buttonStyle returns the style of the Block Kit button with actionID.
func buttonStyle(t *testing.T, raw []byte, actionID string) string {
	t.Helper()
	var blocks []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Style    string `json:"style"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatalf("card blocks: %v", err)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.ActionID == actionID {
				return e.Style
			}
		}
	}
	t.Fatalf("no %s button on the card", actionID)
	return ""
}
