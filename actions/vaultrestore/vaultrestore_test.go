package vaultrestore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/vaultrestore"
	"github.com/drbot-dev/drbot/internal/fakevault"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

const (
	bucket = "inflow-vault-backups"
	prefix = "raft/"
)

// world is moto S3 with the seed's snapshot bucket and a fake Vault whose
// address and token are in VAULT_ADDR and VAULT_TOKEN.
type world struct {
	s3    *s3.Client
	load  vaultrestore.LoadAWS
	vault *fakevault.Server
	now   time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	endpoint := testenv.Moto(t)
	w := &world{vault: fakevault.New(), now: time.Now().UTC()}
	t.Cleanup(w.vault.Close)
	w.load = func(ctx context.Context, region string) (aws.Config, error) {
		return awsconf.Load(ctx, region, awsconf.Static(endpoint, "test", "test"))
	}
	cfg, err := w.load(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	w.s3 = awsconf.S3(cfg)
	if _, err := w.s3.CreateBucket(ctx(t), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAULT_ADDR", w.vault.URL())
	t.Setenv("VAULT_TOKEN", w.vault.Token())
	return w
}

func (w *world) config(t *testing.T, snapshots string) *runbook.Config {
	t.Helper()
	cfg, err := runbook.Parse("vault.yaml", []byte(`
services:
  - name: inflow
    pagerduty:
      service_ids: [PINFLOW]
    vault:
      address_env: VAULT_ADDR
      token_env: VAULT_TOKEN
      snapshots: `+snapshots+`
      every: 24h
      verify: [secret/prod]
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (w *world) action(t *testing.T) *vaultrestore.Action {
	a := vaultrestore.New(w.config(t, "s3://"+bucket+"/"+prefix), w.load, nil)
	a.Now = func() time.Time { return w.now }
	a.TempDir = t.TempDir()
	return a
}

func (w *world) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := w.s3.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func (w *world) get(t *testing.T, key string) ([]byte, error) {
	t.Helper()
	out, err := w.s3.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func (w *world) keys(t *testing.T) []string {
	t.Helper()
	out, err := w.s3.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// seed stores two snapshots of good state (the newer one with the prod
// secrets) and a pre-restore snapshot written after both, then breaks Vault:
// secret/prod deleted, a stray secret added.
func (w *world) seed(t *testing.T) []byte {
	t.Helper()
	w.vault.Put("secret/prod/db", map[string]string{"password": "old"})
	w.put(t, prefix+"vault-20261129-020000.snap", w.vault.Snapshot())
	time.Sleep(1100 * time.Millisecond) // S3 LastModified has second resolution
	w.vault.Put("secret/prod/db", map[string]string{"password": "p1"})
	w.vault.Put("secret/prod/stripe", map[string]string{"key": "sk"})
	good := w.vault.Snapshot()
	w.put(t, prefix+"vault-20261130-020000.snap", good)
	time.Sleep(1100 * time.Millisecond)
	w.put(t, prefix+"pre-restore-20261130120000.snap", fakevault.Archive(9, map[string]int{"secret": 2}, nil))
	w.vault.Delete("secret/prod")
	w.vault.Put("secret/staging/x", map[string]string{"a": "b"})
	return good
}

func stepNames(p actions.Plan) string {
	var s []string
	for _, st := range p.Steps {
		s = append(s, st.Name)
	}
	return strings.Join(s, ",")
}

func fact(p actions.Plan, label string) string {
	for _, f := range p.Facts {
		if f.Label == label {
			return f.Value
		}
	}
	return ""
}

// The seed's inflow Vault: newest snapshot (not the pre-restore one) pinned,
// current state saved and kept, snapshot installed, verified.
func TestRestoreVaultFromS3(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	before := w.vault.Snapshot()
	a := w.action(t)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	stamp := w.now.Format(vaultrestore.StampFormat)
	if got := stepNames(plan); got != "save-current,fetch-check,restore" {
		t.Fatalf("steps %s", got)
	}
	if plan.Target != "vault:inflow" || !strings.Contains(plan.Summary, "vault-20261130-020000.snap") {
		t.Fatalf("plan %q → %q", plan.Target, plan.Summary)
	}
	if got := fact(plan, "Current state saved as (kept)"); got != "s3://"+bucket+"/"+prefix+"pre-restore-"+stamp+".snap" {
		t.Fatalf("pre-restore fact %q", got)
	}
	if v := fact(plan, "Version"); !strings.HasPrefix(v, "ETag \"") {
		t.Fatalf("version fact %q", v)
	}
	if got := fact(plan, "Vault now"); got != "initialized, unsealed, active (Vault "+fakevault.Version+")" {
		t.Fatalf("vault now %q", got)
	}
	if blob, _ := plan.Hash(); strings.Contains(string(plan.Spec)+blob, w.vault.Token()) {
		t.Fatal("the plan holds the token")
	}
	if w.vault.Restores() != 0 {
		t.Fatal("Plan restored")
	}

	j := actiontest.NewJournal()
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if got := w.vault.Secrets()["secret/prod/db"]["password"]; got != "p1" || w.vault.Restores() != 1 {
		t.Fatalf("after restore: password %q, %d restores", got, w.vault.Restores())
	}
	if _, ok := w.vault.Secrets()["secret/staging/x"]; ok {
		t.Fatal("state after the snapshot survived the restore")
	}
	saved, err := w.get(t, prefix+"pre-restore-"+stamp+".snap")
	if err != nil {
		t.Fatalf("pre-restore snapshot: %v", err)
	}
	// The kept snapshot is the state before: installing it brings the
	// stray secret back.
	other := fakevault.New()
	defer other.Close()
	if err := other.Install(saved); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Secrets()["secret/staging/x"]; !ok || len(before) == 0 {
		t.Fatalf("pre-restore snapshot is not the state before: %v", other.Secrets())
	}
	if notes := strings.Join(j.Notes(), "\n"); !strings.Contains(notes, "pre-restore-"+stamp+".snap") || !strings.Contains(notes, "/dr restore-vault inflow --backup") {
		t.Fatalf("notes %s", notes)
	}
	if p, ok := j.LastProgress("fetch-check"); !ok || p.Done == 0 || p.Done != p.Total || p.Unit != "bytes" {
		t.Fatalf("fetch progress %+v", p)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() || len(rep.Checks) != 3 {
		t.Fatalf("verify %+v, %v", rep, err)
	}
	if rep.Checks[1].Name != "vault kv list secret/prod" || rep.Checks[1].Observed != "2 keys" {
		t.Fatalf("kv check %+v", rep.Checks[1])
	}

	// Running it again (a retried job) changes nothing: every step is done.
	if err := a.Execute(ctx(t), plan, j); err != nil || w.vault.Restores() != 1 {
		t.Fatalf("second execute: %v, %d restores", err, w.vault.Restores())
	}
}

// A restore whose verify path lists nothing fails verification, says so,
// and names the kept pre-restore snapshot, which stays in S3.
func TestRestoreVaultVerifyPathEmpty(t *testing.T) {
	w := newWorld(t)
	w.vault.Put("secret/prod/db", map[string]string{"password": "p1"})
	w.put(t, prefix+"vault-20261130-020000.snap", fakevault.Archive(3, map[string]int{"secret": 2}, map[string]map[string]string{"secret/other/x": {"a": "b"}}))
	a := w.action(t)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil {
		t.Fatal(err)
	}
	kept := "s3://" + bucket + "/" + prefix + "pre-restore-" + w.now.Format(vaultrestore.StampFormat) + ".snap"
	failed := rep.Failed()
	if rep.OK() || len(failed) != 1 || failed[0].Observed != "no keys" ||
		failed[0].Error != "secret/prod lists nothing after the restore; the state before the restore is kept as "+kept+
			"; `/dr restore-vault inflow --backup pre-restore-"+w.now.Format(vaultrestore.StampFormat)+".snap` puts it back" {
		t.Fatalf("report %+v", rep)
	}
	if !slices.Contains(w.keys(t), prefix+"pre-restore-"+w.now.Format(vaultrestore.StampFormat)+".snap") {
		t.Fatalf("pre-restore snapshot not kept: %v", w.keys(t))
	}
}

// A wrong token fails at the first step with a clear message; nothing is
// saved or restored.
func TestRestoreVaultWrongToken(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	a := w.action(t)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAULT_TOKEN", "hvs.wrong")
	err = a.Execute(ctx(t), plan, actiontest.NewJournal())
	var rf *actions.Refusal
	if !errors.As(err, &rf) || rf.Msg != "Vault at "+w.vault.URL()+" refused the token from VAULT_TOKEN while saving Vault's current state (403 permission denied): nothing was restored" {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "hvs.wrong") {
		t.Fatal("the token is in the error")
	}
	if w.vault.Restores() != 0 || slices.ContainsFunc(w.keys(t), func(k string) bool { return strings.Contains(k, w.now.Format(vaultrestore.StampFormat)) }) {
		t.Fatalf("something happened: %d restores, %v", w.vault.Restores(), w.keys(t))
	}
}

// Missing variables are refusals that name them; a sealed Vault is refused
// with the remedy.
func TestRestoreVaultRefusals(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	a := w.action(t)
	refusal := func(want string) {
		t.Helper()
		_, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
		var rf *actions.Refusal
		if !errors.As(err, &rf) || !strings.Contains(rf.Msg, want) {
			t.Fatalf("plan: %v, want a refusal containing %q", err, want)
		}
	}
	t.Setenv("VAULT_ADDR", "")
	refusal("the environment variable VAULT_ADDR (vault.address_env) is empty or unset")
	t.Setenv("VAULT_ADDR", w.vault.URL())
	t.Setenv("VAULT_TOKEN", "")
	refusal("no Vault token: the environment variable VAULT_TOKEN (vault.token_env) is empty or unset")
	t.Setenv("VAULT_TOKEN", "hvs.wrong")
	refusal("Vault at " + w.vault.URL() + " refuses the token from VAULT_TOKEN (403 permission denied)")
	t.Setenv("VAULT_TOKEN", w.vault.Token())
	w.vault.Seal()
	refusal("is sealed: unseal it (vault operator unseal)")
	w.vault.Unseal()
	_, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Flags: map[string]string{"backup": "nope.snap"}})
	if rf, ok := errors.AsType[*actions.Refusal](err); !ok || rf.Msg != `no snapshot "nope.snap" in s3://inflow-vault-backups/raft/` {
		t.Fatalf("unknown --backup: %v", err)
	}
	_, err = a.Plan(ctx(t), actions.Params{Service: "inflow", Flags: map[string]string{"backup": "../db/inflow.dump"}})
	if rf, ok := errors.AsType[*actions.Refusal](err); !ok || rf.Msg != `"../db/inflow.dump" is not a snapshot name` {
		t.Fatalf("--backup leaving the location: %v", err)
	}
	// Named explicitly, a pre-restore snapshot can be restored (the undo).
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Flags: map[string]string{"backup": "pre-restore-20261130120000.snap"}})
	if err != nil || !strings.Contains(strings.Join(plan.Warnings, "\n"), "saved before an earlier restore") {
		t.Fatalf("explicit pre-restore: %v %v", plan.Warnings, err)
	}
}

// The address changing after approval, the snapshot replaced after
// approval, and a corrupt snapshot: each refused before anything is
// restored.
func TestRestoreVaultPinned(t *testing.T) {
	w := newWorld(t)
	good := w.seed(t)
	a := w.action(t)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	err = a.Execute(ctx(t), plan, actiontest.NewJournal())
	if rf, ok := errors.AsType[*actions.Refusal](err); !ok || !strings.Contains(rf.Msg, "VAULT_ADDR now points at http://127.0.0.1:1") {
		t.Fatalf("moved address: %v", err)
	}
	t.Setenv("VAULT_ADDR", w.vault.URL())

	w.put(t, prefix+"vault-20261130-020000.snap", append(good[:len(good):len(good)], 0))
	err = a.Execute(ctx(t), plan, actiontest.NewJournal())
	var rf *actions.Refusal
	if !errors.As(err, &rf) || !strings.Contains(rf.Msg, "changed since it was approved") {
		t.Fatalf("replaced snapshot: %v", err)
	}

	w.now = w.now.Add(time.Second)
	tampered := fakevault.Build(map[string][]byte{
		"meta.json": []byte(`{"Index":1}`), "state.bin": []byte(`{}`),
		"SHA256SUMS": []byte(strings.Repeat("0", 64) + "  meta.json\n" + strings.Repeat("0", 64) + "  state.bin\n"), "SHA256SUMS.sealed": []byte("s"),
	}, "meta.json", "state.bin", "SHA256SUMS", "SHA256SUMS.sealed")
	w.put(t, prefix+"vault-20261201-020000.snap", tampered)
	plan, err = a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Execute(ctx(t), plan, actiontest.NewJournal())
	if !errors.As(err, &rf) || !strings.Contains(rf.Msg, "failed its integrity check: checksum mismatch for meta.json") {
		t.Fatalf("corrupt snapshot: %v", err)
	}
	if w.vault.Restores() != 0 {
		t.Fatalf("%d restores", w.vault.Restores())
	}
}

// A process killed while Vault installs the snapshot: the next attempt skips
// the save and the fetch, fetches again into a new file, checks it is the
// same snapshot, and installs it.
func TestRestoreVaultResumesAfterCrash(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	a := w.action(t)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := w.vault.HoldRestore()
	j := actiontest.NewJournal()
	c, cancel := context.WithCancel(ctx(t))
	done := make(chan error, 1)
	go func() { done <- a.Execute(c, plan, j) }()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("restore never reached Vault")
	}
	cancel() // the process dies mid-request
	if err := <-done; err == nil {
		t.Fatal("interrupted execute succeeded")
	}
	// The fake notices the client went away on its own time: release the
	// hold only once it has (else it installs the abandoned request).
	gone := func() bool {
		for _, c := range w.vault.Calls() {
			if c.Status == fakevault.StatusClientGone {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !gone() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	release()
	if w.vault.Restores() != 0 {
		t.Fatal("the interrupted restore installed")
	}
	if entries, _ := os.ReadDir(a.TempDir); len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if w.vault.Restores() != 1 || w.vault.Secrets()["secret/prod/db"]["password"] != "p1" {
		t.Fatalf("after resume: %d restores, %v", w.vault.Restores(), w.vault.Secrets())
	}
	if sk := j.Skipped(); !slices.Contains(sk, "save-current") || !slices.Contains(sk, "fetch-check") {
		t.Fatalf("skipped %v", sk)
	}
	if !strings.Contains(strings.Join(j.Notes(), "\n"), "installing the snapshot again") {
		t.Fatalf("notes %v", j.Notes())
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() {
		t.Fatalf("verify %+v %v", rep, err)
	}
}

// The drill fetches and checks the snapshot; Vault is never called and
// nothing is written.
func TestRestoreVaultDrill(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	a := w.action(t)
	t.Setenv("VAULT_TOKEN", "") // a drill needs no Vault access
	plan, err := a.DrillPlan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Kind != vaultrestore.Kind || !strings.HasPrefix(plan.Target, "vault-drill:inflow/") || stepNames(plan) != "fetch-check" {
		t.Fatalf("drill plan %+v", plan)
	}
	keys := w.keys(t)
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() || !strings.Contains(rep.Checks[0].Observed, "checksums match") {
		t.Fatalf("drill verify %+v, %v", rep, err)
	}
	// Verify after a restart (no cached result) fetches again.
	b := w.action(t)
	if rep, err := b.Verify(ctx(t), plan); err != nil || !rep.OK() {
		t.Fatalf("drill verify after restart %+v, %v", rep, err)
	}
	if calls := w.vault.Calls(); len(calls) != 0 {
		t.Fatalf("the drill called Vault: %+v", calls)
	}
	if got := w.keys(t); !slices.Equal(got, keys) {
		t.Fatalf("the drill wrote to S3: %v → %v", keys, got)
	}
	if entries, _ := os.ReadDir(a.TempDir); len(entries) != 0 {
		t.Fatalf("the drill left files: %v", entries)
	}

	// A corrupt newest snapshot fails the drill.
	w.put(t, prefix+"vault-20261202-020000.snap", []byte("not a snapshot"))
	plan, err = a.DrillPlan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Execute(ctx(t), plan, actiontest.NewJournal())
	if rf, ok := errors.AsType[*actions.Refusal](err); !ok || !strings.Contains(rf.Msg, "failed its integrity check: not a snapshot archive") {
		t.Fatalf("corrupt drill: %v", err)
	}
}

// A file:// location works the same; the pre-restore snapshot lands in the
// directory and listings skip it.
func TestRestoreVaultFromFiles(t *testing.T) {
	dir := t.TempDir()
	v := fakevault.New()
	defer v.Close()
	t.Setenv("VAULT_ADDR", v.URL())
	t.Setenv("VAULT_TOKEN", v.Token())
	v.Put("secret/prod/db", map[string]string{"password": "p1"})
	if err := os.WriteFile(filepath.Join(dir, "vault.snap"), v.Snapshot(), 0o644); err != nil {
		t.Fatal(err)
	}
	v.Delete("secret/prod")
	w := &world{vault: v}
	a := vaultrestore.New(w.config(t, "file://"+dir+"/"), nil, nil)
	a.TempDir = t.TempDir()
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	if rep, err := a.Verify(ctx(t), plan); err != nil || !rep.OK() {
		t.Fatalf("verify %+v %v", rep, err)
	}
	s, _ := vaultrestore.SpecOf(plan)
	if _, err := os.Stat(filepath.Join(dir, s.PreRestore)); err != nil {
		t.Fatal(err)
	}
	// The newest file is now the pre-restore snapshot: it is not picked.
	// (A second later: within the same second its name is taken.)
	a.Now = func() time.Time { return time.Now().Add(2 * time.Second) }
	again, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil || !strings.Contains(again.Summary, "from vault.snap") {
		t.Fatalf("re-plan %q %v", again.Summary, err)
	}
}

// Health reads sys/health for a diagnosis.
func TestHealth(t *testing.T) {
	v := fakevault.New()
	defer v.Close()
	cfg := &runbook.Vault{AddressEnv: "VAULT_ADDR", TokenEnv: "VAULT_TOKEN"}
	t.Setenv("VAULT_ADDR", "")
	if c := vaultrestore.Health(ctx(t), cfg); c.OK || !strings.Contains(c.Error, "VAULT_ADDR") {
		t.Fatalf("unset: %+v", c)
	}
	t.Setenv("VAULT_ADDR", v.URL())
	if c := vaultrestore.Health(ctx(t), cfg); !c.OK || c.Observed != "initialized, unsealed, active (Vault "+fakevault.Version+")" {
		t.Fatalf("healthy: %+v", c)
	}
	v.SetStandby(true)
	if c := vaultrestore.Health(ctx(t), cfg); c.OK || !strings.Contains(c.Observed, "standby") {
		t.Fatalf("standby: %+v", c)
	}
	v.Seal()
	if c := vaultrestore.Health(ctx(t), cfg); c.OK || !strings.Contains(c.Observed, "sealed") {
		t.Fatalf("sealed: %+v", c)
	}
	v.Close()
	if c := vaultrestore.Health(ctx(t), cfg); c.OK || c.Observed != "unreachable" {
		t.Fatalf("down: %+v", c)
	}
}

// On a versioned bucket the plan pins the version: a snapshot overwritten
// after approval still restores exactly the approved version.
func TestRestoreVaultPinsVersion(t *testing.T) {
	w := newWorld(t)
	if _, err := w.s3.PutBucketVersioning(ctx(t), &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	w.vault.Put("secret/prod/db", map[string]string{"password": "approved"})
	w.put(t, prefix+"vault.snap", w.vault.Snapshot())
	a := w.action(t)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := vaultrestore.SpecOf(plan)
	if s.Snapshot.VersionID == "" || fact(plan, "Version") != s.Snapshot.VersionID {
		t.Fatalf("version not pinned: %+v, fact %q", s.Snapshot, fact(plan, "Version"))
	}
	w.vault.Put("secret/prod/db", map[string]string{"password": "later"})
	w.put(t, prefix+"vault.snap", w.vault.Snapshot()) // a newer version of the same key
	w.vault.Delete("secret/prod")
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	if got := w.vault.Secrets()["secret/prod/db"]["password"]; got != "approved" {
		t.Fatalf("restored %q, want the approved version", got)
	}
}
