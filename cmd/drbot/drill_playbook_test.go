package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/drill"
	"github.com/drbot-dev/drbot/actions/playbook"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// drillPlaybookConfig is runbook 001's lstm-pfd in the reference shape
// (../shared/examples/runbook-v2.yaml): cluster-recovery is two run: steps
// (terraform with drill: true, helm without), restore-db, restore-models
// and verify; a real PostgreSQL database with a file:// backup, models
// mirrored between two moto buckets.
func drillPlaybookConfig(env, dir string, q int, extra string) string {
	return `
slack:
  approvers: [UBOB]
  announce_channel: CANNOUNCE
approvals:
  required: 1
  expires_after: 15m
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    objectives:
      rto: 1h
      rpo: 24h
    databases:
      - name: orders
        url_env: ` + env + `
        backups:
          location: file://` + dir + `/
        checks:
          - name: orders restored
            sql: SELECT count(*) FROM orders
            expect: ">= 20"
    models:
      backups: s3://lstm-models-backup/
      target: s3://lstm-models/
    playbooks:
      - name: cluster-recovery
        description: Complete cluster recovery (runbook section 3)
        steps:
          - name: provision infrastructure
            run: [terraform, apply, -auto-approve, -input=false, -no-color]
            drill: true
          - name: deploy lstm-pfd
            run: [helm, upgrade, --install, lstm-pfd, ./deploy/helm/lstm-pfd]
          - action: restore-db
          - action: restore-models
          - action: verify
    scenarios:
      - name: Complete cluster failure
        match: [cluster]
        estimate: 45m
        playbook: cluster-recovery
    drills:
      every: 2160h
` + extra + `      plan:
        - quarter: ` + fmt.Sprint(q) + `
          procedure: cluster-recovery
`
}

// s3State lists a bucket's keys with their ETags.
func s3State(t *testing.T, client *s3.Client, bucket string) []string {
	t.Helper()
	out, err := client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key)+" "+aws.ToString(o.ETag))
	}
	sort.Strings(keys)
	return keys
}

// TestServePlaybookDrill: `/dr drill cluster-recovery lstm-pfd` through
// drbot serve with real PostgreSQL, moto and terraform runs without a
// second person: the run: step without drill: true is skipped and listed,
// the one with it runs (terraform applies its terraform_data), restore-db
// runs its drill form (copy restored, checked and dropped; live and the
// database list unchanged), restore-models its drill form (scratch prefix
// copied, compared, emptied; the live target unchanged) and verify, which
// changes nothing, runs as it is. The card gives each step's time and the
// total against the RTO and the scenario's estimate; /dr drills shows
// cluster-recovery as last tested today.
func TestServePlaybookDrill(t *testing.T) {
	terraformOnPath(t)
	ctx := context.Background()
	w := newDrillWorld(t, "")
	q, _ := drill.Quarter(time.Now())
	env := "E2E_DRILL_URL_" + strings.ToUpper(w.live)
	w.cfgText = drillPlaybookConfig(env, w.backups, q, "")
	cfg, err := runbook.Parse("drill-playbook.yaml", []byte(w.cfgText))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	w.channel = w.slack.AddChannel("dr-ops", fakeslack.BotUserID, alice, bob)

	endpoint := testenv.Moto(t)
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	acfg, err := awsconf.Load(ctx, "", awsconf.Static(endpoint, "test", "test"))
	if err != nil {
		t.Fatal(err)
	}
	client := awsconf.S3(acfg)
	for _, b := range []string{"lstm-models-backup", "lstm-models"} {
		if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(bucket, key, body string) {
		t.Helper()
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(body))}); err != nil {
			t.Fatal(err)
		}
	}
	put("lstm-models-backup", "lstm_pfd/model.pt", "weights v7")
	put("lstm-models-backup", "lstm_pfd/config.json", `{"layers": 4}`)
	put("lstm-models", "lstm_pfd/model.pt", "weights v8 (live)")
	targetBefore := s3State(t, client, "lstm-models")

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(`resource "terraform_data" "cluster" {
  input = "lstm-pfd"
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("terraform", "-chdir="+dir, "init", "-input=false", "-no-color").CombinedOutput(); err != nil {
		t.Fatalf("terraform init: %v\n%s", err, out)
	}
	t.Setenv(playbook.DirEnv, dir)

	in := startServeInstance(t, w.world)
	dbsBefore, liveBefore := databases(t), w.liveState(t)

	in.command(t, w.world, alice, "drill cluster-recovery lstm-pfd")
	var req store.ActionRequest
	if !w.slack.WaitFor(wait, func() bool {
		rs, err := in.db.RecentRequests(ctx, "lstm-pfd", 1)
		if err != nil || len(rs) == 0 || rs[0].MessageTS == "" {
			return false
		}
		req = rs[0]
		return true
	}) {
		t.Fatalf("no drill request; ephemerals %+v", w.slack.Ephemerals())
	}
	if req.Kind != store.KindDrill {
		t.Fatalf("request %d is a %s, want a drill", req.ID, req.Kind)
	}
	got := w.waitState(t, in.db, req.ID, store.RequestSucceeded)
	if got.State != store.RequestSucceeded {
		t.Fatalf("drill ended %s", got.State)
	}

	if as := approvalsOf(t, in.db, req.ID); len(as) != 0 {
		t.Errorf("a drill took approvals: %+v", as)
	}
	if dbs := databases(t); !slices.Equal(dbs, dbsBefore) {
		t.Errorf("databases after the drill = %v, want %v", dbs, dbsBefore)
	}
	if got := w.liveState(t); got != liveBefore {
		t.Errorf("live after the drill: %s, before: %s", got, liveBefore)
	}
	if got := s3State(t, client, "lstm-models"); !slices.Equal(got, targetBefore) {
		t.Errorf("models target after the drill = %v, want %v (scratch emptied, live untouched)", got, targetBefore)
	}
	if st, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate")); err != nil || !strings.Contains(string(st), "terraform_data") {
		t.Errorf("the drill: true step did not apply: %v", err)
	}

	evs, err := in.db.AuditEvents(ctx, store.AuditFilter{RequestID: &req.ID})
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, ev := range evs {
		if ev.Kind == store.AuditStepFinished {
			var d struct{ Step, Error string }
			_ = json.Unmarshal(ev.Data, &d)
			steps = append(steps, d.Step)
		}
	}
	t.Logf("steps: %v", steps)
	for _, want := range []string{"1.run", "3.restore-side", "3.check-side", "3.drop-copy", "4.copy-objects", "4.compare", "4.delete-scratch", "5.verify"} {
		if !slices.Contains(steps, want) {
			t.Errorf("step %s did not finish; finished: %v", want, steps)
		}
	}
	if slices.ContainsFunc(steps, func(s string) bool { return strings.HasPrefix(s, "2.") }) {
		t.Errorf("the run: step without drill: true ran: %v", steps)
	}

	card := w.waitCard(t, req.MessageTS, "cluster-recovery drill: ")
	text := card.Text + unescape(card.Blocks)
	t.Logf("card: %s", unescape(card.Blocks))
	for _, want := range []string{
		"no approval needed", "RTO 1h", "scenario estimate 45m",
		"skipped in a drill: `helm upgrade --install lstm-pfd ./deploy/helm/lstm-pfd`",
		"Request #" + fmt.Sprint(req.ID) + ": drill cluster-recovery lstm-pfd",
		"1.run ", "3.restore-side ", "4.copy-objects ", "5.verify ",
		"step 3: orders restored", "step 5: orders restored",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("card lacks %q:\n%s", want, unescape(card.Blocks))
		}
	}
	// Each step's checks once: a step's own verification is not repeated.
	if n := strings.Count(text, "live database untouched"); n != 1 {
		t.Errorf("\"live database untouched\" is on the card %d times, want once", n)
	}

	in.command(t, w.world, alice, "drills lstm-pfd")
	today := time.Now().UTC().Format("2006-01-02") + " (today)"
	said := w.waitSaid(t, "last tested "+today)
	t.Logf("/dr drills: %s", said)
	if !strings.Contains(said, "cluster-recovery") || !strings.Contains(said, "succeeded") {
		t.Errorf("/dr drills does not show cluster-recovery succeeded: %s", said)
	}
}

// TestKilledServeFinishesPlaybookDrill: `drbot serve` is killed with
// SIGKILL while a playbook drill's restore-db step streams a slow plain SQL
// backup into its drill copy. The next process resumes the drill from its
// journal: step 1 (mkdir, which fails when run twice) is not run again,
// the copy is restored again, checked and dropped, step 4 runs, and the
// run: step without drill: true (false, which would fail it) never runs.
// Live and the database list are as before.
func TestKilledServeFinishesPlaybookDrill(t *testing.T) {
	w := newDrillWorld(t, "")
	ctx := context.Background()
	plain := filepath.Join(w.backups, "orders-20261202.sql")
	if out, err := exec.Command("pg_dump", "--dbname", w.liveURL, "--file", plain, "--exclude-table-data", "orders").CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v: %s", err, out)
	}
	appendFile(t, plain, "INSERT INTO public.orders SELECT generate_series(1, 20);\nSELECT pg_sleep(4);\n")
	dbsBefore, liveBefore := databases(t), w.liveState(t)

	q, _ := drill.Quarter(time.Now())
	env := "E2E_DRILL_URL_" + strings.ToUpper(w.live)
	cfgText := strings.Replace(drillConfig(env, w.backups, q, ""), "    scenarios:\n", `    playbooks:
      - name: cluster-recovery
        steps:
          - name: prepare
            run: [mkdir, stage1]
            drill: true
          - name: deploy
            run: ["false"]
          - action: restore-db
            args: [--backup, orders-20261202.sql]
          - name: finish
            run: [mkdir, stage4]
            drill: true
    scenarios:
`, 1)
	cfg, err := runbook.Parse("drill-kill.yaml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	cfgFile := filepath.Join(t.TempDir(), "drill.yaml")
	if err := writeFile(cfgFile, cfgText); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	cmd := exec.Command(drbotBinary(t), "serve", "--config", cfgFile, "--log-format", "json")
	cmd.Env = []string{
		"PATH=" + pathEnv(), "HOME=" + t.TempDir(),
		"DATABASE_URL=" + w.url, "DRBOT_LISTEN=" + addr, env + "=" + w.liveURL,
		"SLACK_BOT_TOKEN=" + w.slack.BotToken(), "SLACK_SIGNING_SECRET=" + e2eSecret, "SLACK_API_URL=" + w.slack.APIURL(),
		"DRBOT_EXECUTION_LEASE=3s", playbook.DirEnv + "=" + dir,
	}
	srv := startServer(t, cmd, addr)
	signedPost(t, srv.base+"/slack/commands", fakeslackCommand(alice, w.channel, "drill cluster-recovery inflow"))
	probe := startProbe(t, w.world)
	req := w.newestDrill(t, probe, 0)
	copyName := ""
	if !w.slack.WaitFor(wait, func() bool {
		for _, n := range databases(t) {
			if strings.HasPrefix(n, w.live+"_drill_") {
				copyName = n
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the drill copy never appeared:\n%s", srv.logs.String())
	}
	time.Sleep(500 * time.Millisecond) // into pg_sleep: the restore is under way
	srv.kill()
	if r, err := probe.Request(ctx, req.ID); err != nil || r.State != store.RequestRunning {
		t.Fatalf("after the kill the drill is %v (%v), want running", r.State, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stage1")); err != nil {
		t.Fatalf("step 1 did not run before the kill: %v", err)
	}

	t.Setenv(playbook.DirEnv, dir)
	in := startServeInstance(t, w.world)
	t.Cleanup(func() {
		if t.Failed() {
			evs, _ := in.db.AuditEvents(context.Background(), store.AuditFilter{RequestID: &req.ID})
			for _, ev := range evs {
				t.Logf("audit %s %s %s %s", ev.At.Format("15:04:05.000"), ev.Actor, ev.Kind, ev.Data)
			}
			t.Logf("killed serve's log:\n%s", srv.logs.String())
		}
	})
	deadline := time.Now().Add(3 * wait)
	for r, _ := in.db.Request(ctx, req.ID); r.State != store.RequestSucceeded; r, _ = in.db.Request(ctx, req.ID) {
		if store.Final(r.State) || time.Now().After(deadline) {
			t.Fatalf("resumed playbook drill is %s, want succeeded", r.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dbs := databases(t); !slices.Equal(dbs, dbsBefore) {
		t.Errorf("databases after the resumed drill = %v, want %v (no orphan copy)", dbs, dbsBefore)
	}
	if got := w.liveState(t); got != liveBefore {
		t.Errorf("live after the drill: %s, before: %s", got, liveBefore)
	}
	if _, err := os.Stat(filepath.Join(dir, "stage4")); err != nil {
		t.Errorf("step 4 did not run after the resume: %v", err)
	}
	started := map[string]int{}
	evs, err := in.db.AuditEvents(ctx, store.AuditFilter{RequestID: &req.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Kind == store.AuditStepStarted {
			var d struct{ Step string }
			_ = json.Unmarshal(ev.Data, &d)
			started[d.Step]++
		}
	}
	if started["1.run"] != 1 || started["2.run"] != 0 || started["3.restore-side"] != 2 || started["3.drop-copy"] != 1 || started["4.run"] != 1 {
		t.Errorf("step.started per step = %v; want 1.run once, 2.run never, 3.restore-side twice (killed, resumed), 3.drop-copy and 4.run once", started)
	}
	var dropped bool
	if err := in.db.Pool().QueryRow(ctx, `SELECT dropped_at IS NOT NULL FROM drill_copies WHERE name = $1`, copyName).Scan(&dropped); err != nil || !dropped {
		t.Errorf("drill copy %s recorded dropped = %v (%v)", copyName, dropped, err)
	}
	card := w.waitCard(t, req.MessageTS, "cluster-recovery drill: ")
	if s := unescape(card.Blocks); !strings.Contains(s, "skipped in a drill: `false`") {
		t.Errorf("the card does not list the skipped step:\n%s", s)
	}
}
