package models_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
)

// listing is every object of bucket as key → ETag.
func (w *world) listing(t *testing.T, bucket string) map[string]string {
	t.Helper()
	out := map[string]string{}
	pages := s3.NewListObjectsV2Paginator(w.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = aws.ToString(o.ETag)
		}
	}
	return out
}

// TestRestoreModelsDrill: the drill copies the backup to drills/<ts>/ in
// the target bucket, compares it object by object, deletes it and reports
// both; the live target prefix and both buckets are exactly as before, and
// no workload is restarted.
func TestRestoreModelsDrill(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	a := w.action(t)
	before, backupBefore := w.listing(t, "models"), w.listing(t, "models-backup")
	plan, err := a.DrillPlan(ctx(t), actions.Params{Service: "lstm-pfd", Flags: map[string]string{"backup": "2026-11-22"}})
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, s := range plan.Steps {
		steps = append(steps, s.Name)
	}
	if want := []string{"copy-objects", "compare", "delete-scratch"}; !slices.Equal(steps, want) {
		t.Fatalf("steps %v, want %v", steps, want)
	}
	if !strings.HasPrefix(plan.Target, "drill:") || !strings.Contains(plan.Summary, "s3://models/drills/") {
		t.Fatalf("target %q summary %q", plan.Target, plan.Summary)
	}
	j := actiontest.NewJournal()
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if n := w.counter.copies.Load(); n != 5 {
		t.Errorf("%d server-side copies, want all 5 objects", n)
	}
	if raw, done, _, _ := j.Begin(ctx(t), "compare"); !done || !strings.Contains(string(raw), "5/5 objects match the backup") || !strings.Contains(string(raw), `"ok":true`) {
		t.Errorf("comparison recorded: %s (done %v); events %+v", raw, done, j.Events())
	}
	if after := w.listing(t, "models"); !mapsEqual(after, before) {
		t.Errorf("target bucket after the drill: %v, before: %v", after, before)
	}
	if after := w.listing(t, "models-backup"); !mapsEqual(after, backupBefore) {
		t.Errorf("backup bucket changed: %v", after)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil || !rep.OK() || len(rep.Checks) != 2 {
		t.Fatalf("verify %+v, %v", rep, err)
	}
	if pr, ok := j.LastProgress("wait:deployment/lstm-pfd-dashboard"); ok {
		t.Errorf("a drill waited for a rollout: %+v", pr)
	}
	// A change to the live target after the plan is reported.
	w.put(t, "models", "current/model.pt", "weights-v3")
	rep, err = a.Verify(ctx(t), plan)
	if err != nil || rep.OK() {
		t.Errorf("verify after the live target changed: %+v, %v", rep, err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
