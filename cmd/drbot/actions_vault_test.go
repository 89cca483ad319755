package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/vaultrestore"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/slack"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/internal/fakevault"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// vaultWorld is the e2e world with the real restore-vault action: the seed's
// inflow snapshots bucket on moto and a fake Vault named by VAULT_ADDR and
// VAULT_TOKEN.
type vaultWorld struct {
	*world
	s3     *s3.Client
	vault  *fakevault.Server
	action *vaultrestore.Action
	moto   string // moto_server's endpoint
}

func newVaultWorld(t *testing.T) *vaultWorld {
	t.Helper()
	ctx := context.Background()
	endpoint := testenv.Moto(t)
	load := func(ctx context.Context, r string) (aws.Config, error) {
		return awsconf.Load(ctx, r, awsconf.Static(endpoint, "test", "test"))
	}
	acfg, err := load(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	vw := &vaultWorld{s3: awsconf.S3(acfg), vault: fakevault.New(), moto: endpoint}
	t.Cleanup(vw.vault.Close)
	if _, err := vw.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("inflow-vault-backups")}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAULT_ADDR", vw.vault.URL())
	t.Setenv("VAULT_TOKEN", vw.vault.Token())
	// The in-process backups.check job lists the snapshots with the SDK's
	// own configuration: point it at moto too.
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"} {
		t.Setenv(k, v)
	}
	vw.world = newWorld(t, "15m")
	vw.cfg, err = runbook.Parse("vault.yaml", []byte(`
slack:
  approvers: [UBOB, SDBA, carol@example.com]
approvals:
  required: 1
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    vault:
      address_env: VAULT_ADDR
      token_env: VAULT_TOKEN
      snapshots: s3://inflow-vault-backups/raft/
      every: 24h
      verify: [secret/prod]
`))
	if err != nil {
		t.Fatal(err)
	}
	vw.action = vaultrestore.New(vw.cfg, load, quietLog())
	vw.action.TempDir = t.TempDir()
	return vw
}

func (vw *vaultWorld) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := vw.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("inflow-vault-backups"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func (vw *vaultWorld) keys(t *testing.T) []string {
	t.Helper()
	out, err := vw.s3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("inflow-vault-backups")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

func (vw *vaultWorld) start(t *testing.T) *instance {
	t.Helper()
	return serveWith(t, vw.world, func(ctx context.Context, log *slog.Logger, db *postgres.DB, client *slack.Client) *runtime {
		reg := actions.Registry{}
		reg.Register(vw.action)
		return newRuntimeWith(ctx, log, vw.cfg, db, client, reg)
	})
}

// preRestoreKeys are the pre-restore snapshots in the bucket.
func (vw *vaultWorld) preRestoreKeys(t *testing.T) []string {
	var out []string
	for _, k := range vw.keys(t) {
		if strings.HasPrefix(k, "raft/pre-restore-") {
			out = append(out, k)
		}
	}
	return out
}

func vaultAuditSteps(t *testing.T, db *postgres.DB, id int64) []string {
	t.Helper()
	rows, err := db.Pool().Query(context.Background(), "SELECT kind || coalesce(':' || (data->>'step'), '') FROM audit_events WHERE request_id = $1 ORDER BY seq", id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// TestRestoreVaultEndToEnd: /dr restore-vault inflow → the card pins the
// newest snapshot and names the pre-restore snapshot → another person
// approves → the current state is saved to S3, the snapshot installed,
// Vault verified (healthy, secret/prod lists keys), each step audited.
func TestRestoreVaultEndToEnd(t *testing.T) {
	vw := newVaultWorld(t)
	vw.vault.Put("secret/prod/db", map[string]string{"password": "p1"})
	vw.vault.Put("secret/prod/stripe", map[string]string{"key": "sk"})
	vw.put(t, "raft/vault-20261130-020000.snap", vw.vault.Snapshot())
	vw.vault.Delete("secret/prod") // the disaster
	in := vw.start(t)

	// Dry run: the plan, no request, nothing touched.
	in.command(t, vw.world, alice, "restore-vault inflow --dry-run")
	vw.waitEphemeral(t, alice, "Dry run")
	vw.waitEphemeral(t, alice, "vault-20261130-020000.snap")
	if rs, _ := in.db.RecentRequests(context.Background(), "inflow", 5); len(rs) != 0 || vw.vault.Restores() != 0 || len(vw.preRestoreKeys(t)) != 0 {
		t.Fatalf("a dry run did something: %d requests, %d restores, %v", len(rs), vw.vault.Restores(), vw.keys(t))
	}

	in.command(t, vw.world, alice, `restore-vault inflow --reason "secret/prod wiped"`)
	card, id := vw.card(t, in.db, 0)
	blocks := unescape(card.Blocks)
	for _, want := range []string{"vault-20261130-020000.snap", "s3://inflow-vault-backups/raft/pre-restore-", "VAULT_ADDR", "secret/prod lists keys"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("card lacks %q:\n%s", want, blocks)
		}
	}
	if strings.Contains(blocks, vw.vault.Token()) {
		t.Fatal("the card shows the token")
	}
	in.click(t, clickPayload(t, vw.world, card, alice, chat.ActionApprove, id))
	vw.waitEphemeral(t, alice, "you cannot approve it")
	if vw.vault.Restores() != 0 {
		t.Fatal("restored before approval")
	}
	in.click(t, clickPayload(t, vw.world, card, bob, chat.ActionApprove, id))
	vw.waitState(t, in.db, id, store.RequestSucceeded)
	vw.waitCard(t, card.TS, "vault kv list secret/prod")
	if got := vw.vault.Secrets()["secret/prod/db"]["password"]; got != "p1" || vw.vault.Restores() != 1 {
		t.Fatalf("vault after restore: %q, %d restores", got, vw.vault.Restores())
	}
	if keys := vw.preRestoreKeys(t); len(keys) != 1 {
		t.Fatalf("pre-restore snapshots %v", keys)
	}
	kinds := vaultAuditSteps(t, in.db, id)
	for _, want := range []string{"step.started:save-current", "step.finished:save-current", "step.finished:fetch-check", "step.finished:restore", "request.succeeded"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("audit lacks %s: %v", want, kinds)
		}
	}
}

// TestRestoreVaultEmptyVerifyPathEndToEnd: the snapshot restores fine but
// secret/prod lists nothing: the request fails verification, the card says
// so and names the kept pre-restore snapshot, which is still in S3.
func TestRestoreVaultEmptyVerifyPathEndToEnd(t *testing.T) {
	vw := newVaultWorld(t)
	vw.put(t, "raft/vault-20261130-020000.snap", fakevault.Archive(5, map[string]int{"secret": 2}, map[string]map[string]string{"secret/staging/db": {"p": "x"}}))
	vw.vault.Put("secret/prod/db", map[string]string{"password": "p1"})
	in := vw.start(t)

	in.command(t, vw.world, alice, "restore-vault inflow")
	card, id := vw.card(t, in.db, 0)
	in.click(t, clickPayload(t, vw.world, card, bob, chat.ActionApprove, id))
	vw.waitState(t, in.db, id, store.RequestFailed)
	keys := vw.preRestoreKeys(t)
	if len(keys) != 1 {
		t.Fatalf("pre-restore snapshots %v", keys)
	}
	final := vw.waitCard(t, card.TS, "secret/prod lists nothing after the restore")
	if !strings.Contains(unescape(final.Blocks)+final.Text, "kept as s3://inflow-vault-backups/"+keys[0]) {
		t.Errorf("the card does not name the kept snapshot %s:\n%s", keys[0], final.Blocks)
	}
	// The kept snapshot is the state before: it holds secret/prod.
	out, err := vw.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("inflow-vault-backups"), Key: aws.String(keys[0])}, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if err != nil {
		t.Fatal(err)
	}
	saved, _ := io.ReadAll(out.Body)
	out.Body.Close()
	probe := fakevault.New()
	defer probe.Close()
	if err := probe.Install(saved); err != nil || probe.Secrets()["secret/prod/db"]["password"] != "p1" {
		t.Fatalf("kept snapshot: %v %v", err, probe.Secrets())
	}

	// The way back: the command the card suggests, pasted (a second later:
	// the undo saves the current state under a new name), approved by
	// another person, puts the state from before the restore back.
	undo := "/dr restore-vault inflow --backup " + strings.TrimPrefix(keys[0], "raft/")
	if !slices.Contains(vw.suggested(), undo) {
		t.Fatalf("the bot did not suggest %q; it suggested %q", undo, vw.suggested())
	}
	time.Sleep(1100 * time.Millisecond)
	in.command(t, vw.world, alice, strings.TrimPrefix(undo, "/dr "))
	ucard, uid := vw.card(t, in.db, id)
	if !strings.Contains(unescape(ucard.Blocks), "is a snapshot drbot saved before an earlier restore") {
		t.Errorf("the undo card does not say what it restores:\n%s", unescape(ucard.Blocks))
	}
	in.click(t, clickPayload(t, vw.world, ucard, bob, chat.ActionApprove, uid))
	vw.waitState(t, in.db, uid, store.RequestSucceeded)
	if got := vw.vault.Secrets()["secret/prod/db"]["password"]; got != "p1" {
		t.Fatalf("after the undo Vault holds %v", vw.vault.Secrets())
	}
	if keys := vw.preRestoreKeys(t); len(keys) != 2 {
		t.Fatalf("the undo did not keep the state it replaced: %v", keys)
	}
}

// TestRestoreVaultWrongTokenEndToEnd: the token is revoked between approval
// and execution: the request fails with a clear message naming the
// variable, and nothing is saved or restored.
func TestRestoreVaultWrongTokenEndToEnd(t *testing.T) {
	vw := newVaultWorld(t)
	vw.vault.Put("secret/prod/db", map[string]string{"password": "p1"})
	vw.put(t, "raft/vault-20261130-020000.snap", vw.vault.Snapshot())
	in := vw.start(t)

	in.command(t, vw.world, alice, "restore-vault inflow")
	card, id := vw.card(t, in.db, 0)
	vw.vault.SetToken("hvs.rotated")
	in.click(t, clickPayload(t, vw.world, card, bob, chat.ActionApprove, id))
	vw.waitState(t, in.db, id, store.RequestFailed)
	vw.waitCard(t, card.TS, "refused the token from VAULT_TOKEN while saving Vault's current state (403 permission denied): nothing was restored")
	if vw.vault.Restores() != 0 || len(vw.preRestoreKeys(t)) != 0 {
		t.Fatalf("something changed: %d restores, %v", vw.vault.Restores(), vw.keys(t))
	}

	// Asked again with the revoked token, the command is refused before any
	// request is made; so is one without the variable, naming it.
	in.command(t, vw.world, alice, "restore-vault inflow")
	vw.waitEphemeral(t, alice, "refuses the token from VAULT_TOKEN (403 permission denied): put a valid token there; nothing was planned")
	t.Setenv("VAULT_TOKEN", "")
	in.command(t, vw.world, alice, "restore-vault inflow")
	vw.waitEphemeral(t, alice, "the environment variable VAULT_TOKEN (vault.token_env) is empty or unset")
	if rs, err := in.db.RecentRequests(context.Background(), "inflow", 5); err != nil || len(rs) != 1 {
		t.Fatalf("requests %d, %v", len(rs), err)
	}
}

// TestKilledServeResumesVaultRestore: the real `drbot serve` is killed with
// SIGKILL while Vault is installing the snapshot; the next process resumes
// the request from its journal — the saved pre-restore snapshot kept, not
// taken again; the snapshot fetched again, checked and installed once —
// and verifies it.
func TestKilledServeResumesVaultRestore(t *testing.T) {
	vw := newVaultWorld(t)
	vw.vault.Put("secret/prod/db", map[string]string{"password": "p1"})
	vw.put(t, "raft/vault-20261130-020000.snap", vw.vault.Snapshot())
	vw.vault.Delete("secret/prod")
	cfgFile := filepath.Join(t.TempDir(), "vault.yaml")
	if err := os.WriteFile(cfgFile, []byte(`
slack:
  approvers: [UBOB, SDBA, carol@example.com]
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    vault:
      address_env: VAULT_ADDR
      token_env: VAULT_TOKEN
      snapshots: s3://inflow-vault-backups/raft/
      every: 24h
      verify: [secret/prod]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	entered, release := vw.vault.HoldRestore()
	defer release()
	addr := freeAddr(t)
	cmd := command(t, []string{
		"DATABASE_URL=" + vw.url, "DRBOT_LISTEN=" + addr,
		"SLACK_BOT_TOKEN=" + vw.slack.BotToken(), "SLACK_SIGNING_SECRET=" + e2eSecret, "SLACK_API_URL=" + vw.slack.APIURL(),
		"DRBOT_EXECUTION_LEASE=5s",
		"VAULT_ADDR=" + vw.vault.URL(), "VAULT_TOKEN=" + vw.vault.Token(),
		"AWS_ENDPOINT_URL=" + vw.moto, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
	}, "serve", "--config", cfgFile, "--log-format", "json")
	srv := startServer(t, cmd, addr)
	signedPost(t, srv.base+"/slack/commands", fakeslack.SlashCommand{Text: "restore-vault inflow", UserID: alice, UserName: "alice", ChannelID: vw.channel}.Form().Encode())
	probe := startProbe(t, vw.world)
	card, id := vw.card(t, probe, 0)
	signedPost(t, srv.base+"/slack/interactions", clickPayload(t, vw.world, card, bob, chat.ActionApprove, id))
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatalf("the restore never reached Vault:\n%s", srv.logs.String())
	}
	srv.kill()
	release()
	if vw.vault.Restores() != 0 {
		t.Fatal("the killed process's restore was installed")
	}
	if keys := vw.preRestoreKeys(t); len(keys) != 1 {
		t.Fatalf("pre-restore snapshots before the resume: %v", keys)
	}

	in := vw.start(t)
	vw.waitState(t, in.db, id, store.RequestSucceeded)
	if vw.vault.Restores() != 1 || vw.vault.Secrets()["secret/prod/db"]["password"] != "p1" {
		t.Fatalf("after the resume: %d restores, %v", vw.vault.Restores(), vw.vault.Secrets())
	}
	if keys := vw.preRestoreKeys(t); len(keys) != 1 {
		t.Fatalf("pre-restore snapshots after the resume: %v (the save must not run again)", keys)
	}
	vw.waitCard(t, card.TS, "vault kv list secret/prod")
	steps := vaultAuditSteps(t, in.db, id)
	if n := countOf(steps, "step.started:save-current"); n != 1 {
		t.Errorf("save-current started %d times: %v", n, steps)
	}
	if n := countOf(steps, "step.started:restore"); n != 2 {
		t.Errorf("restore started %d times, want 2 (killed, resumed): %v", n, steps)
	}
}
