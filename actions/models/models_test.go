package models_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/kube/kubetest"
	"github.com/drbot-dev/drbot/actions/models"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// countingTransport counts the server-side copies the SDK sends.
type countingTransport struct {
	copies atomic.Int64
	keys   chan string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if src := r.Header.Get("X-Amz-Copy-Source"); src != "" && r.Method == http.MethodPut {
		c.copies.Add(1)
		select {
		case c.keys <- r.URL.Path:
		default:
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

type world struct {
	s3      *s3.Client
	load    models.LoadAWS
	counter *countingTransport
	kube    *kube.Client
	cluster *kubetest.Cluster
}

func newWorld(t *testing.T) *world {
	t.Helper()
	endpoint := testenv.Moto(t)
	w := &world{counter: &countingTransport{keys: make(chan string, 100)}}
	w.load = func(ctx context.Context, region string) (aws.Config, error) {
		cfg, err := awsconf.Load(ctx, region, awsconf.Static(endpoint, "test", "test"))
		cfg.HTTPClient = &http.Client{Transport: w.counter}
		return cfg, err
	}
	cfg, err := awsconf.Load(ctx(t), "", awsconf.Static(endpoint, "test", "test"))
	if err != nil {
		t.Fatal(err)
	}
	w.s3 = awsconf.S3(cfg)
	for _, b := range []string{"models-backup", "models"} {
		if _, err := w.s3.CreateBucket(ctx(t), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	w.cluster = kubetest.New(t, 2*time.Millisecond, kubetest.Deployment("ml", "lstm-pfd-dashboard", 2))
	w.kube = kube.New(w.cluster)
	w.kube.Poll = 2 * time.Millisecond
	return w
}

func (w *world) put(t *testing.T, bucket, key, body string) {
	t.Helper()
	if _, err := w.s3.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(body))}); err != nil {
		t.Fatal(err)
	}
}

func (w *world) get(t *testing.T, bucket, key string) string {
	t.Helper()
	out, err := w.s3.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b)
}

func (w *world) config(t *testing.T) *runbook.Config {
	backups, err := runbook.ParseLocation("s3://models-backup/lstm/")
	if err != nil {
		t.Fatal(err)
	}
	target, err := runbook.ParseLocation("s3://models/current")
	if err != nil {
		t.Fatal(err)
	}
	return &runbook.Config{Services: []runbook.Service{{
		Name:       "lstm-pfd",
		Kubernetes: &runbook.Kubernetes{Namespace: "ml", Selector: "app=lstm-pfd-dashboard"},
		Models: &runbook.Models{Backups: backups, Target: target,
			Restart: []runbook.WorkloadRef{{Kind: runbook.KindDeployment, Name: "lstm-pfd-dashboard"}}},
	}, {Name: "bare"}}}
}

func (w *world) action(t *testing.T) *models.Action {
	a := models.New(w.config(t), w.load, w.kube)
	a.RolloutTimeout = time.Minute
	return a
}

// seed puts a backup of 5 objects and a target where one matches, one has
// other content of the same size, one another size, and one is extra.
func (w *world) seed(t *testing.T) {
	t.Helper()
	b := "lstm/2026-11-22/"
	w.put(t, "models-backup", b+"model.pt", "weights-v2")
	w.put(t, "models-backup", b+"scaler.pkl", "scaler-AAAA")
	w.put(t, "models-backup", b+"config/params.json", `{"layers": 4}`)
	w.put(t, "models-backup", b+"vocab.txt", "same content")
	w.put(t, "models-backup", b+"notes with space+plus.md", "notes")
	w.put(t, "models", "current/vocab.txt", "same content")
	w.put(t, "models", "current/scaler.pkl", "scaler-BBBB")
	w.put(t, "models", "current/config/params.json", `{"layers": 3, "old": true}`)
	w.put(t, "models", "current/extra.bin", "not in the backup")
}

func TestRestoreModelsCopiesOnlyWhatDiffersAndRestarts(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	a := w.action(t)
	p := actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "2026-11-22"}}
	plan, err := a.Plan(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.Summary, "copy 4 of 5 objects") || !strings.Contains(plan.Summary, "restart deployment/lstm-pfd-dashboard") {
		t.Fatalf("summary %q", plan.Summary)
	}
	var steps []string
	for _, s := range plan.Steps {
		steps = append(steps, s.Name)
	}
	if got := strings.Join(steps, ","); got != "copy-objects,restart:deployment/lstm-pfd-dashboard,wait:deployment/lstm-pfd-dashboard" {
		t.Fatalf("steps %s", got)
	}
	if w.counter.copies.Load() != 0 {
		t.Fatal("Plan copied objects")
	}

	j := actiontest.NewJournal()
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if n := w.counter.copies.Load(); n != 4 {
		t.Fatalf("%d server-side copies, want 4 (vocab.txt is unchanged)", n)
	}
	close(w.counter.keys)
	for k := range w.counter.keys {
		if strings.HasSuffix(k, "vocab.txt") {
			t.Fatalf("copied the unchanged %s", k)
		}
	}
	for key, want := range map[string]string{
		"current/model.pt": "weights-v2", "current/scaler.pkl": "scaler-AAAA", "current/config/params.json": `{"layers": 4}`,
		"current/vocab.txt": "same content", "current/notes with space+plus.md": "notes", "current/extra.bin": "not in the backup",
	} {
		if got := w.get(t, "models", key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	p4, ok := j.LastProgress("copy-objects")
	if !ok || p4.Done != 4 || p4.Total != 4 || p4.Unit != "objects" {
		t.Fatalf("copy progress %+v", p4)
	}
	if pr, ok := j.LastProgress("wait:deployment/lstm-pfd-dashboard"); !ok || pr.Done != 2 || pr.Total != 2 {
		t.Fatalf("rollout progress %+v", pr)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() || len(rep.Checks) != 3 {
		t.Fatalf("verify %+v, %v", rep, err)
	}
	if rep.Checks[0].Observed != "4/4 objects match the backup" {
		t.Fatalf("observed %q", rep.Checks[0].Observed)
	}

	// A new plan of the same restore copies nothing, and running it copies nothing.
	again, err := a.Plan(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(again.Summary, "copy 0 of 5 objects") || len(again.Warnings) != 1 {
		t.Fatalf("re-plan %q %v", again.Summary, again.Warnings)
	}
	w.counter.copies.Store(0)
	if err := a.Execute(ctx(t), again, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	if n := w.counter.copies.Load(); n != 0 {
		t.Fatalf("re-run made %d copies", n)
	}
}

func TestRestoreModelsResumedCopySkipsObjectsInPlace(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	a := w.action(t)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "2026-11-22/"}})
	if err != nil {
		t.Fatal(err)
	}
	// The first attempt copied two objects, then crashed.
	for _, k := range []string{"model.pt", "scaler.pkl"} {
		if _, err := w.s3.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String("models"), Key: aws.String("current/" + k),
			CopySource: aws.String("models-backup/lstm/2026-11-22/" + k)}); err != nil {
			t.Fatal(err)
		}
	}
	j := actiontest.NewJournal()
	j.MarkStarted("copy-objects")
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if n := w.counter.copies.Load(); n != 2 {
		t.Fatalf("resumed copy made %d copies, want 2", n)
	}
	raw, _ := j.Done("copy-objects")
	if string(raw) != `{"copied":2,"skipped":2,"bytes":18}` {
		t.Fatalf("copy result %s", raw)
	}
	if notes := strings.Join(j.Notes(), "\n"); !strings.Contains(notes, "resuming the copy") {
		t.Fatalf("notes %q", notes)
	}
}

func TestRestoreModelsRefusesABackupChangedSincePlan(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	a := w.action(t)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "2026-11-22"}})
	if err != nil {
		t.Fatal(err)
	}
	w.put(t, "models-backup", "lstm/2026-11-22/model.pt", "weights-v3-tampered")
	a.Parallel = 1
	j := actiontest.NewJournal()
	err = a.Execute(ctx(t), plan, j)
	var r *actions.Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Msg, "changed since the plan") {
		t.Fatalf("Execute = %v, want a refusal", err)
	}
	// Real S3 refuses the copy itself (x-amz-copy-source-if-match); moto ignores
	// that header, so here the action catches the change by the copy's ETag.
	if len(j.Ran()) != 1 {
		t.Fatalf("ran %v: the restart must not run after a failed copy", j.Ran())
	}
}

func TestRestoreModelsPlanRefusals(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	cases := []struct {
		name string
		a    *models.Action
		p    actions.Params
		want string
	}{
		{"unknown service", w.action(t), actions.Params{Service: "nope"}, "unknown service"},
		{"no models", w.action(t), actions.Params{Service: "bare"}, "no models configured"},
		{"empty backup", w.action(t), actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "1999-01-01"}}, "no objects under s3://models-backup/lstm/1999-01-01/"},
		{"escaping backup", w.action(t), actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "../other"}}, "not allowed"},
		{"url backup", w.action(t), actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "s3://x/y"}}, "prefix under the backups location"},
		{"no kube", models.New(w.config(t), w.load, nil), actions.Params{Service: "lstm-pfd"}, "no Kubernetes access"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.a.Plan(ctx(t), tc.p)
			var r *actions.Refusal
			if !errors.As(err, &r) || !strings.Contains(r.Msg, tc.want) {
				t.Fatalf("Plan = %v, want a refusal containing %q", err, tc.want)
			}
		})
	}
}

func TestRestoreModelsManyObjectsInParallel(t *testing.T) {
	w := newWorld(t)
	for i := range 40 {
		w.put(t, "models-backup", fmt.Sprintf("lstm/shard-%03d.bin", i), fmt.Sprintf("shard %d", i))
	}
	a := w.action(t)
	a.Parallel = 8
	cfg := w.config(t)
	cfg.Services[0].Models.Restart = nil
	a = models.New(cfg, w.load, nil)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "lstm-pfd"})
	if err != nil {
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if n := w.counter.copies.Load(); n != 40 {
		t.Fatalf("%d copies, want 40", n)
	}
	reports := j.ProgressReports()
	if len(reports) != 41 || reports[len(reports)-1].Done != 40 {
		t.Fatalf("%d progress reports, last %+v", len(reports), reports[len(reports)-1])
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() || len(rep.Checks) != 1 {
		t.Fatalf("verify %+v, %v", rep, err)
	}
}

func TestRestoreModelsCopiesLargeObjectsInParts(t *testing.T) {
	w := newWorld(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), (12<<20)/16) // 12 MiB
	if _, err := w.s3.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("models-backup"), Key: aws.String("lstm/big/model.pt"),
		Body: bytes.NewReader(big), ContentType: aws.String("application/x-pytorch"), Metadata: map[string]string{"epoch": "42"}}); err != nil {
		t.Fatal(err)
	}
	w.put(t, "models-backup", "lstm/big/small.json", "{}")
	cfg := w.config(t)
	cfg.Services[0].Models.Restart = nil
	a := models.New(cfg, w.load, nil)
	a.MultipartThreshold, a.PartSize = 8<<20, 5<<20
	p := actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "big"}}
	plan, err := a.Plan(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	// Three part copies for the large object, one copy for the small one.
	if n := w.counter.copies.Load(); n != 4 {
		t.Fatalf("%d copy requests, want 4", n)
	}
	if got := w.get(t, "models", "current/model.pt"); got != string(big) {
		t.Fatalf("large object differs after the copy (%d bytes)", len(got))
	}
	head, err := w.s3.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String("models"), Key: aws.String("current/model.pt")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(head.ContentType) != "application/x-pytorch" || head.Metadata["epoch"] != "42" {
		t.Fatalf("metadata not kept: %q %v", aws.ToString(head.ContentType), head.Metadata)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() {
		t.Fatalf("verify %+v, %v", rep, err)
	}
	// The multipart copy's ETag differs from the source's; a re-plan still
	// sees it as in place (same size, newer), like aws s3 sync.
	again, err := a.Plan(ctx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(again.Summary, "copy 0 of 2 objects") {
		t.Fatalf("re-plan %q", again.Summary)
	}
}

func TestRestoreModelsPicksTheNewestDatedSnapshot(t *testing.T) {
	w := newWorld(t)
	w.seed(t) // lstm/2026-11-22/…, written first
	w.put(t, "models-backup", "lstm/2026-11-20/model.pt", "weights-v1")
	w.put(t, "models-backup", "lstm/2026-11-20/old-only.txt", "old")
	w.put(t, "models-backup", "lstm/README.md", "not a snapshot")
	cfg := w.config(t)
	sp, err := runbook.ParseSnapshotPattern("*/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Services[0].Models.Snapshots = &sp
	a := models.New(cfg, w.load, w.kube)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "lstm-pfd"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fact(plan, "Snapshot"); got != "2026-11-22 (the newest of 2 snapshots by the date in its name)" {
		t.Fatalf("snapshot %q", got)
	}
	if !strings.Contains(fact(plan, "Backup"), "s3://models-backup/lstm/2026-11-22/ (5 objects)") {
		t.Fatalf("backup fact %q", fact(plan, "Backup"))
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	if got := w.get(t, "models", "current/model.pt"); got != "weights-v2" {
		t.Fatalf("model.pt = %q", got)
	}

	// Without snapshots the same location is a mirror, copied whole.
	a = w.action(t)
	plan, err = a.Plan(ctx(t), actions.Params{Service: "lstm-pfd"})
	if err != nil {
		t.Fatal(err)
	}
	if fact(plan, "Snapshot") != "" || !strings.Contains(fact(plan, "Backup"), "s3://models-backup/lstm/ (8 objects)") {
		t.Fatalf("mirror plan facts %+v", plan.Facts)
	}
}

func fact(p actions.Plan, label string) string {
	for _, f := range p.Facts {
		if f.Label == label {
			return f.Value
		}
	}
	return ""
}
