package models_test

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/models"
	"github.com/drbot-dev/drbot/runbook"
)

// lstmModels is runbook-v2.yaml's LSTM-PFD models block (without the
// restart, so no cluster is needed), loaded by the real loader.
const lstmModels = `services:
  - name: lstm-pfd
    models:
      backups: s3://lstm-pfd-backups/models/
      snapshots: models-*/checkpoints/
      every: 24h
      target: s3://lstm-pfd-models/checkpoints/
  - name: inflow
    models:
      backups: s3://inflow-models-backup/
      target: s3://inflow-models/
`

// seedNightly lays out runbook 001's backups: one folder per nightly run,
// each with checkpoints/{lstm_pfd.pt,scaler.pkl} of its own content, and a
// versioned target bucket (each write to it is a version).
func seedNightly(t *testing.T, w *world) *models.Action {
	t.Helper()
	for _, b := range []string{"lstm-pfd-backups", "lstm-pfd-models", "inflow-models-backup", "inflow-models"} {
		if _, err := w.s3.CreateBucket(ctx(t), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.s3.PutBucketVersioning(ctx(t), &s3.PutBucketVersioningInput{Bucket: aws.String("lstm-pfd-models"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	// Written newest first, so the last-written objects belong to the oldest
	// run: the choice must come from the names, not from upload times.
	for _, run := range []string{"20260115-020000", "20260114-020000", "20260113-020000"} {
		w.put(t, "lstm-pfd-backups", "models/models-"+run+"/checkpoints/lstm_pfd.pt", "weights "+run)
		w.put(t, "lstm-pfd-backups", "models/models-"+run+"/checkpoints/scaler.pkl", "scaler "+run)
	}
	cfg, err := runbook.Parse("drbot.yaml", []byte(lstmModels))
	if err != nil {
		t.Fatal(err)
	}
	return models.New(cfg, w.load, nil)
}

// targetState returns the target's keys and, per key, its body and how many
// versions were written.
func targetState(t *testing.T, w *world, bucket string) (keys []string, body map[string]string, versions map[string]int) {
	t.Helper()
	body, versions = map[string]string{}, map[string]int{}
	out, err := w.s3.ListObjectVersions(ctx(t), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range out.Versions {
		versions[aws.ToString(v.Key)]++
	}
	for k := range versions {
		keys = append(keys, k)
		body[k] = w.get(t, bucket, k)
	}
	sort.Strings(keys)
	return keys, body, versions
}

func TestRestoreModelsRestoresOneSnapshotOntoTheTarget(t *testing.T) {
	w := newWorld(t)
	a := seedNightly(t, w)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "lstm-pfd"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fact(plan, "Snapshot"); got != "models-20260115-020000 (the newest of 3 snapshots by the date in its name)" {
		t.Fatalf("snapshot fact %q (facts %+v)", got, plan.Facts)
	}
	if !strings.Contains(plan.Summary, "from snapshot models-20260115-020000") || !strings.Contains(plan.Summary, "copy 2 of 2 objects") {
		t.Fatalf("summary %q", plan.Summary)
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	keys, body, versions := targetState(t, w, "lstm-pfd-models")
	if got := strings.Join(keys, ","); got != "checkpoints/lstm_pfd.pt,checkpoints/scaler.pkl" {
		t.Fatalf("target keys %s, want exactly the snapshot's checkpoints/ directly under checkpoints/", got)
	}
	for _, k := range keys {
		if versions[k] != 1 {
			t.Errorf("%s written %d times, want once", k, versions[k])
		}
	}
	if body["checkpoints/lstm_pfd.pt"] != "weights 20260115-020000" || body["checkpoints/scaler.pkl"] != "scaler 20260115-020000" {
		t.Fatalf("target holds %v, want the 20260115 run", body)
	}
	if n := w.counter.copies.Load(); n != 2 {
		t.Fatalf("%d server-side copies, want 2", n)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() {
		t.Fatalf("verify %+v, %v", rep, err)
	}

	// --backup picks an older run; its objects replace the newer ones.
	w.counter.copies.Store(0)
	plan, err = a.Plan(ctx(t), actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "models-20260114-020000"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fact(plan, "Snapshot"); got != "models-20260114-020000 (named by --backup)" {
		t.Fatalf("snapshot fact %q", got)
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	keys, body, versions = targetState(t, w, "lstm-pfd-models")
	if got := strings.Join(keys, ","); got != "checkpoints/lstm_pfd.pt,checkpoints/scaler.pkl" {
		t.Fatalf("target keys %s", got)
	}
	if body["checkpoints/lstm_pfd.pt"] != "weights 20260114-020000" || body["checkpoints/scaler.pkl"] != "scaler 20260114-020000" {
		t.Fatalf("target holds %v, want the 20260114 run", body)
	}
	if versions["checkpoints/lstm_pfd.pt"] != 2 || w.counter.copies.Load() != 2 {
		t.Fatalf("versions %v after two restores, %d copies in the second", versions, w.counter.copies.Load())
	}
}

func TestRestoreModelsSnapshotRefusals(t *testing.T) {
	w := newWorld(t)
	a := seedNightly(t, w)
	// An empty newer run (a failed nightly) is passed over.
	w.put(t, "lstm-pfd-backups", "models/models-20260116-020000/log.txt", "failed before checkpoints")
	plan, err := a.Plan(ctx(t), actions.Params{Service: "lstm-pfd"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fact(plan, "Snapshot"); !strings.HasPrefix(got, "models-20260115-020000 (the newest of 4 snapshots") || !strings.Contains(got, "1 newer had nothing under checkpoints/") {
		t.Fatalf("snapshot fact %q", got)
	}
	for _, tc := range []struct{ backup, want string }{
		{"models-20260101-020000", "no snapshot models-20260101-020000 in s3://lstm-pfd-backups/models/ (nothing under models-20260101-020000/checkpoints/); the newest of 4: models-20260116-020000, models-20260115-020000, models-20260114-020000, models-20260113-020000"},
		{"models-20260116-020000", "no snapshot models-20260116-020000"},
		{"other-20260115-020000", `--backup takes a snapshot folder of s3://lstm-pfd-backups/models/ named like models-* (e.g. models-20260115-020000), got "other-20260115-020000"`},
		{"../models-20260115-020000", "--backup takes a snapshot folder"},
		{"models-20260115-020000/../../x", "--backup takes a snapshot folder"},
	} {
		_, err := a.Plan(ctx(t), actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": tc.backup}})
		var r *actions.Refusal
		if !errors.As(err, &r) || !strings.Contains(r.Msg, tc.want) {
			t.Errorf("--backup %s: Plan = %v, want a refusal containing %q", tc.backup, err, tc.want)
		}
	}
	// The folder with its inside path is accepted too.
	if _, err := a.Plan(ctx(t), actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "models-20260113-020000/checkpoints/"}}); err != nil {
		t.Fatal(err)
	}
	if n := w.counter.copies.Load(); n != 0 {
		t.Fatalf("plans copied %d objects", n)
	}
}

// Without snapshots the backups location is a mirror of the target, synced
// whole (inflow: "models are immutable in S3"), folders included.
func TestRestoreModelsMirrorIsSyncedWhole(t *testing.T) {
	w := newWorld(t)
	a := seedNightly(t, w)
	w.put(t, "inflow-models-backup", "ranker/v3/model.onnx", "ranker v3")
	w.put(t, "inflow-models-backup", "2026-01-15/embeddings.bin", "embeddings")
	w.put(t, "inflow-models-backup", "vocab.txt", "vocab")
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	if fact(plan, "Snapshot") != "" || !strings.Contains(fact(plan, "Backup"), "s3://inflow-models-backup/ (3 objects)") {
		t.Fatalf("mirror plan facts %+v", plan.Facts)
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	keys, _, _ := targetState(t, w, "inflow-models")
	if got := strings.Join(keys, ","); got != "2026-01-15/embeddings.bin,ranker/v3/model.onnx,vocab.txt" {
		t.Fatalf("mirror target keys %s", got)
	}
}

// TestRestoreModelsIgnoresAnUndatedCopyOfAnOldSnapshot: an operator
// quarantines a bad run by copying it to models-20260113-020000-old (an S3
// "rename" is a copy, so its objects are new). Its name holds no timestamp, so
// it would be dated by its objects — today — and restored as "the newest".
// Snapshots dated by their names outrank any dated only by their objects.
func TestRestoreModelsIgnoresAnUndatedCopyOfAnOldSnapshot(t *testing.T) {
	w := newWorld(t)
	a := seedNightly(t, w)
	w.put(t, "lstm-pfd-backups", "models/models-20260113-020000-old/checkpoints/lstm_pfd.pt", "quarantined")
	w.put(t, "lstm-pfd-backups", "models/models-20260113-020000-old/checkpoints/scaler.pkl", "quarantined")
	plan, err := a.Plan(ctx(t), actions.Params{Service: "lstm-pfd"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fact(plan, "Snapshot"); !strings.HasPrefix(got, "models-20260115-020000 (") {
		t.Fatalf("snapshot fact %q, want the newest dated run models-20260115-020000", got)
	}
	// It can still be restored by name.
	plan, err = a.Plan(ctx(t), actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "models-20260113-020000-old"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fact(plan, "Snapshot"); got != "models-20260113-020000-old (named by --backup)" {
		t.Fatalf("snapshot fact %q", got)
	}
}
