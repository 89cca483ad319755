package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/diagnose"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/testenv"
)

// TestServeDiagnoseReportsEachProblemWithinTheDeadline (issue 10, point 4)
// drives the real `drbot serve` with /dr diagnose inflow against moto (STS
// and S3: one bucket present, one missing), a real PostgreSQL, a database
// address that accepts connections and never answers, and a sealed Vault;
// the bot has no Kubernetes access. One message arrives in the channel
// well within the deadline: the missing bucket and the unreachable database
// each with the runbook's remedy, the sealed Vault with how to unseal it,
// Kubernetes named as not configured, and no secret anywhere in Slack or
// in drbot's log.
func TestServeDiagnoseReportsEachProblemWithinTheDeadline(t *testing.T) {
	w := newWorld(t, "15m")
	ctx := context.Background()

	const (
		awsKeyID   = "AKIAE2EDIAGNOSE"
		awsSecret  = "aws-e2e-diagnose-secret"
		dbPassword = "db-e2e-diagnose-password"
		vaultToken = "hvs.e2e-diagnose-token"
	)
	endpoint := testenv.Moto(t)
	awsCfg, err := awsconf.Load(ctx, "us-east-1", awsconf.Static(endpoint, awsKeyID, awsSecret))
	if err != nil {
		t.Fatal(err)
	}
	s3c := awsconf.S3(awsCfg)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("reports-backups")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("reports-backups"), Key: aws.String("pg/reports-20261201.dump"), Body: strings.NewReader("dump")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("reports-backups"), Key: aws.String("raft/vault-20261201.snap"), Body: strings.NewReader("snap")}); err != nil {
		t.Fatal(err)
	}

	// A database server that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	})
	sealed := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(rw).Encode(map[string]any{"initialized": true, "sealed": true, "standby": true, "version": "1.15.4"})
	}))
	t.Cleanup(sealed.Close)

	reportsURL := strings.Replace(testenv.PostgresURL(t), "postgres://postgres@", "postgres://postgres:"+dbPassword+"@", 1)
	inflowURL := fmt.Sprintf("postgres://admin:%s@%s/inflow?sslmode=disable", dbPassword, ln.Addr())

	cfgFile := filepath.Join(t.TempDir(), "diagnose.yaml")
	if err := os.WriteFile(cfgFile, []byte(`
slack:
  approvers: [UBOB]
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    databases:
      - name: inflow
        url_env: INFLOW_DATABASE_URL
        backups:
          location: s3://inflow-backups-gone/postgres/
          every: 1h
      - name: reports
        url_env: REPORTS_DATABASE_URL
        backups:
          location: s3://reports-backups/pg/
          every: 24h
    kubernetes:
      namespace: inflow-prod
      selector: app=inflow
    vault:
      address_env: VAULT_ADDR
      token_env: VAULT_TOKEN
      snapshots: s3://reports-backups/raft/
`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	env := []string{"DRBOT_LISTEN=" + addr, "SLACK_API_URL=" + w.slack.APIURL(), "SLACK_BOT_TOKEN=" + w.slack.BotToken(),
		"SLACK_SIGNING_SECRET=" + e2eSecret, "DATABASE_URL=" + w.url,
		"AWS_ENDPOINT_URL=" + endpoint, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=" + awsKeyID, "AWS_SECRET_ACCESS_KEY=" + awsSecret,
		"INFLOW_DATABASE_URL=" + inflowURL, "REPORTS_DATABASE_URL=" + reportsURL,
		"VAULT_ADDR=" + sealed.URL, "VAULT_TOKEN=" + vaultToken}
	srv := startServer(t, command(t, env, "serve", "--config", cfgFile, "--log-format", "json"), addr)

	form := fakeslack.SlashCommand{Text: "diagnose inflow", UserID: alice, UserName: "alice", ChannelID: w.channel}.Form()
	began := time.Now()
	signedPost(t, srv.base+"/slack/commands", form.Encode())
	var report string
	if !w.slack.WaitFor(wait, func() bool {
		for _, m := range w.slack.Messages(w.channel) {
			if text := m.Text + unescape(m.Blocks); strings.Contains(text, "Diagnosis of inflow") {
				report = text
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no diagnosis in the channel:\n%+v\nlogs:\n%s", w.slack.Messages(w.channel), srv.logs.String())
	}
	took := time.Since(began)
	if took > diagnose.DefaultDeadline {
		t.Errorf("the report took %s; its deadline is %s", took, diagnose.DefaultDeadline)
	}
	if took > diagnose.DefaultCheckTimeout+5*time.Second {
		t.Errorf("the report took %s; every check has %s", took, diagnose.DefaultCheckTimeout)
	}
	t.Logf("report in %s:\n%s", took.Round(time.Millisecond), report)

	for _, want := range []string{
		"Diagnosis of inflow: 3 problems",
		// the missing bucket, with runbook 001 A.1
		"inflow backups (s3://inflow-backups-gone/postgres/)*: cannot list: NoSuchBucket",
		`runbook 001, Appendix A.1 \"Backup Download Fails\"_: Check AWS credentials: ` + "`aws sts get-caller-identity`" + ` · Check bucket permissions: ` + "`aws s3 ls s3://inflow-backups-gone/`",
		// the unreachable database, with runbook 001 A.2
		"database inflow*: no answer within 5s at " + ln.Addr().String(),
		`runbook 001, Appendix A.2 \"PostgreSQL Won't Start\"_: Check pod logs: ` + "`kubectl logs -l app=postgresql -n inflow-prod --tail=100`",
		// Vault sealed
		"Vault health*: sealed, version 1.15.4",
		"`vault operator unseal`",
		"`/dr restore-vault inflow`",
		// what works
		"AWS identity*: account 123456789012",
		"reports backups (s3://reports-backups/pg/)*: 1 object; newest reports-20261201.dump",
		"database reports*: PostgreSQL 15",
		// what is not configured
		"Not configured, not checked: Kubernetes:",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	n := 0
	for _, m := range w.slack.Messages(w.channel) {
		if strings.Contains(m.Text, "Diagnosis of inflow") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d diagnosis messages, want one", n)
	}
	// Nothing secret reaches Slack (messages, ephemerals) or the log.
	var all strings.Builder
	for _, m := range w.slack.Messages(w.channel) {
		all.WriteString(m.Text + string(m.Blocks))
	}
	for _, e := range w.slack.Ephemerals() {
		fmt.Fprintf(&all, "%+v", e)
	}
	for name, s := range map[string]string{"AWS key id": awsKeyID, "AWS secret": awsSecret, "DB password": dbPassword, "Vault token": vaultToken} {
		if strings.Contains(all.String(), s) {
			t.Errorf("Slack shows the %s", name)
		}
		if strings.Contains(srv.logs.String(), s) {
			t.Errorf("drbot's log shows the %s", name)
		}
	}
}
