package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// TestServeResolveShowsAchievedObjectivesAndTimelineFolds (issue 11, points
// 5 and 6) drives the real `drbot serve` with real PostgreSQL, pg_restore
// and moto: runbook 001's lstm_pfd database has a pg_dump backup in
// s3://lstm-pfd-backups/db/ whose time is known (moto's LastModified); the
// incident opened 3 s after it. alice requests restore-db, bob approves, it
// is verified; alice runs /dr verify three times and /dr timeline: the
// restore's steps are named in words with their durations, bob's approval is
// named, and the three identical verifications are one line ×3. After
// /dr resolve the summary and `drbot timeline export` give the achieved RPO
// (3 s: the incident's start minus the backup's time) and the achieved RTO
// (opened → the restore verified) against the objectives, and the export
// holds no fill-in placeholder.
func TestServeResolveShowsAchievedObjectivesAndTimelineFolds(t *testing.T) {
	ctx := context.Background()
	w := &world{slack: fakeslack.New(), url: testenv.PostgresURL(t)}
	t.Cleanup(w.slack.Close)
	for _, u := range []fakeslack.User{{ID: alice, Name: "alice"}, {ID: bob, Name: "bob"}} {
		w.slack.AddUser(u)
	}
	w.channel = w.slack.AddChannel("incident-lstm-pfd-20261201", fakeslack.BotUserID, alice, bob)

	// The live database; drbot serve; then the backup in moto and the
	// incident 3 s after it (the incident's clock starts once drbot is up).
	cluster := testenv.Cluster(t)
	const live = "lstm_pfd_e2e_timeline"
	if err := cluster.CreateDatabase(ctx, live); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropPrefixed(t, cluster.URL("postgres"), live) })
	hostileExec(t, cluster.URL(live), "CREATE TABLE experiments (id int PRIMARY KEY); INSERT INTO experiments SELECT generate_series(1, 200)")
	dump := filepath.Join(t.TempDir(), "lstm_pfd-20261201.dump")
	if out, err := exec.Command("pg_dump", "--dbname", cluster.URL(live), "--format", "custom", "--file", dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v: %s", err, out)
	}
	endpoint := testenv.Moto(t)
	health := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { _, _ = rw.Write([]byte("ok")) }))
	t.Cleanup(health.Close)
	cfgFile := filepath.Join(t.TempDir(), "lstm-pfd.yaml")
	if err := os.WriteFile(cfgFile, []byte(`
slack:
  approvers: [UBOB]
approvals:
  required: 1
  expires_after: 15m
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    objectives: {rto: 1h, rpo: 4h}
    databases:
      - name: lstm_pfd
        url_env: LSTM_PFD_DATABASE_URL
        backups:
          location: s3://lstm-pfd-backups/db/
        checks:
          - name: experiments present
            sql: SELECT COUNT(*) FROM experiments
            expect: "> 0"
    health:
      - name: dashboard
        http: `+health.URL+`/health
`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	env := []string{"DRBOT_LISTEN=" + addr, "DATABASE_URL=" + w.url, "SLACK_BOT_TOKEN=" + w.slack.BotToken(), "SLACK_SIGNING_SECRET=" + e2eSecret,
		"SLACK_API_URL=" + w.slack.APIURL(), "LSTM_PFD_DATABASE_URL=" + cluster.URL(live),
		"AWS_ENDPOINT_URL=" + endpoint, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1"}
	srv := startServer(t, command(t, env, "serve", "--config", cfgFile, "--log-format", "json"), addr)
	awsCfg, err := awsconf.Load(ctx, "us-east-1", awsconf.Static(endpoint, "test", "test"))
	if err != nil {
		t.Fatal(err)
	}
	s3c := awsconf.S3(awsCfg)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("lstm-pfd-backups")}); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lstm-pfd-backups"), Key: aws.String("db/lstm_pfd-20261201.dump"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	head, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("lstm-pfd-backups"), Key: aws.String("db/lstm_pfd-20261201.dump")})
	if err != nil {
		t.Fatal(err)
	}
	backupAt := aws.ToTime(head.LastModified).UTC()

	// The incident started 3 s after the backup.
	opened := backupAt.Add(3 * time.Second)
	time.Sleep(time.Until(opened))
	probe := startProbe(t, w)
	inc, _, err := probe.OpenIncident(ctx, store.Incident{PagerDutyID: "PD-E2E-TL", Service: "lstm-pfd", Title: "Database corruption detected on lstm_pfd",
		Status: store.IncidentTriggered, OpenedAt: opened, RTO: time.Hour, RPO: 4 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.SetIncidentChannel(ctx, inc.ID, w.channel); err != nil {
		t.Fatal(err)
	}

	slash := func(user, text string) {
		t.Helper()
		form := fakeslack.SlashCommand{Text: text, UserID: user, UserName: strings.ToLower(user[1:]), ChannelID: w.channel, ChannelName: "incident-lstm-pfd-20261201"}.Form()
		signedPost(t, srv.base+"/slack/commands", form.Encode())
	}
	said := func(want string) string {
		t.Helper()
		var got string
		if !w.slack.WaitFor(wait, func() bool {
			for _, m := range w.slack.Messages(w.channel) {
				if text := m.Text + unescape(m.Blocks); strings.Contains(text, want) {
					got = text
					return true
				}
			}
			return false
		}) {
			t.Fatalf("the channel never showed %q; logs:\n%s", want, srv.logs.String())
		}
		return got
	}

	slash(alice, `restore-db --reason "experiments table corrupted"`)
	var req store.ActionRequest
	if !w.slack.WaitFor(wait, func() bool {
		rs, err := probe.RequestsForIncident(ctx, inc.ID)
		if err != nil || len(rs) == 0 || rs[0].MessageTS == "" {
			return false
		}
		req = rs[0]
		return true
	}) {
		t.Fatalf("no approval card; ephemerals %+v\nlogs:\n%s", w.slack.Ephemerals(), srv.logs.String())
	}
	card, ok := w.slack.Message(w.channel, req.MessageTS)
	if !ok {
		t.Fatal("card not found")
	}
	signedPost(t, srv.base+"/slack/interactions", clickPayload(t, w, card, bob, chat.ActionApprove, req.ID))
	w.waitState(t, probe, req.ID, store.RequestSucceeded)
	verified := auditAt(t, probe, inc.ID, store.RequestMovedKind(store.RequestSucceeded))

	for i := range 3 {
		slash(alice, "verify")
		if !w.slack.WaitFor(wait, func() bool { return countKind(t, probe, inc.ID, store.AuditVerifyRan) == i+1 }) {
			t.Fatalf("verify %d not recorded; logs:\n%s", i+1, srv.logs.String())
		}
	}
	slash(alice, "timeline")
	tl := said("Timeline: Database corruption detected on lstm_pfd")
	for _, want := range []string{
		"restore-db lstm_pfd requested (request #" + fmt.Sprint(req.ID) + "), needs 1 approval: experiments table corrupted",
		"restore-db lstm_pfd: approved by @bob (1 of 1 needed) after ",
		"restore-db lstm_pfd: streamed ",
		"KiB into " + live + "_restore_",
		"restore-db lstm_pfd: checks on the restored copy: verified, 1/1 checks passed in ",
		"restore-db lstm_pfd: swapped the restored copy in as " + live + "; previous database kept as " + live + "_pre_restore_",
		"restore-db lstm_pfd succeeded: verified, 2/2 checks passed after ",
		"Verified lstm-pfd by UALICE: passed, 2/2 checks passed ×3 (until ",
		"experiments table corrupted — @alice",
	} {
		if !strings.Contains(tl, want) {
			t.Errorf("/dr timeline lacks %q:\n%s", want, tl)
		}
	}
	if n := strings.Count(tl, "Verified lstm-pfd"); n != 1 {
		t.Errorf("/dr timeline shows %d verify lines, want 1 folded:\n%s", n, tl)
	}

	wantRPO := fmt.Sprintf("lstm_pfd: 3s of data lost (request #%d restored s3://lstm-pfd-backups/db/lstm_pfd-20261201.dump, taken %s): RPO 4h met",
		req.ID, backupAt.Format("2006-01-02 15:04:05 UTC"))
	took := verified.Sub(opened)
	if took <= 0 || took >= time.Hour {
		t.Fatalf("verified %s after opening", took)
	}
	shown := took.Round(time.Second).String() // as runbooks write it: 42s, 3m
	if took >= time.Minute {
		shown = fmt.Sprintf("%dm", int(took.Round(time.Minute)/time.Minute))
	}
	wantRTO := fmt.Sprintf("%s from opened to verified healthy (restore-db lstm_pfd, request #%d: verified, 2/2 checks passed, at %s): RTO 1h met",
		shown, req.ID, verified.UTC().Format("15:04:05 UTC"))

	slash(alice, "resolve restored from the backup")
	summary := said("Resolved: Database corruption detected on lstm_pfd")
	for _, want := range []string{"RTO achieved", wantRTO, "RPO achieved", wantRPO, "restore-db lstm_pfd: streamed ", "approved by @bob"} {
		if !strings.Contains(summary, want) {
			t.Errorf("resolution summary lacks %q:\n%s", want, summary)
		}
	}

	// With the Slack settings the export names people as Slack does.
	out, err := command(t, []string{"DATABASE_URL=" + w.url, "SLACK_BOT_TOKEN=" + w.slack.BotToken(), "SLACK_API_URL=" + w.slack.APIURL()},
		"timeline", "export", fmt.Sprint(inc.ID)).CombinedOutput()
	if err != nil {
		t.Fatalf("timeline export: %v\n%s", err, out)
	}
	md := string(out)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("resolution summary:\n%s\nexport:\n%s", summary, md)
		}
	})
	for _, want := range []string{
		"| RTO (opened → verified healthy) | 1h | " + wantRTO,
		"| RPO lstm_pfd (incident start − backup's time) | 4h | " + wantRPO,
		"Verified lstm-pfd by UALICE: passed, 2/2 checks passed ×3",
		"restore-db lstm_pfd: approved by @bob (1 of 1 needed)",
		"| @alice |",
		"## Action items suggested by the record",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("timeline export lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(strings.ToLower(md), "fill in") {
		t.Errorf("timeline export holds a fill-in placeholder:\n%s", md)
	}

	// The audit trail's JSON carries the same figures for machines.
	out, err = command(t, []string{"DATABASE_URL=" + w.url}, "audit", "export", "--incident", fmt.Sprint(inc.ID), "--format", "json").Output()
	if err != nil {
		t.Fatalf("audit export: %v", err)
	}
	var exp struct {
		Objectives struct {
			RTO struct {
				Verified        bool    `json:"verified"`
				AchievedSeconds float64 `json:"achieved_seconds"`
			} `json:"rto"`
			RPO []struct {
				Database    string    `json:"database"`
				BackupAt    time.Time `json:"backup_at"`
				LostSeconds float64   `json:"lost_seconds"`
			} `json:"rpo"`
		} `json:"objectives"`
	}
	if err := json.Unmarshal(out, &exp); err != nil {
		t.Fatalf("audit export JSON: %v\n%s", err, out)
	}
	o := exp.Objectives
	if !o.RTO.Verified || o.RTO.AchievedSeconds != took.Seconds() || len(o.RPO) != 1 || o.RPO[0].Database != "lstm_pfd" ||
		!o.RPO[0].BackupAt.Equal(backupAt) || o.RPO[0].LostSeconds != 3 {
		t.Errorf("audit export objectives %+v; want verified after %s, lstm_pfd lost 3 s from the backup of %s", o, took, backupAt)
	}
}

// auditAt is the time of the incident's first audit row of kind.
func auditAt(t *testing.T, db *postgres.DB, incident int64, kind string) time.Time {
	t.Helper()
	evs, err := db.AuditEvents(context.Background(), store.AuditFilter{IncidentID: &incident})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Kind == kind {
			return e.At
		}
	}
	t.Fatalf("incident %d has no %s row", incident, kind)
	return time.Time{}
}

func countKind(t *testing.T, db *postgres.DB, incident int64, kind string) int {
	t.Helper()
	evs, err := db.AuditEvents(context.Background(), store.AuditFilter{IncidentID: &incident})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// dropPrefixed drops the databases named prefix_… (the restore's side and
// pre-restore copies) and prefix itself.
func dropPrefixed(t *testing.T, adminURL, prefix string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, prefix)
	if err != nil {
		return
	}
	names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, n := range names {
		_ = testenv.Cluster(t).DropDatabase(ctx, n)
	}
}
