package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/drbot-dev/drbot/actions"
)

// The drill form of restore-models (issue 11): the chosen snapshot (or the
// mirror) copied with the same server-side copies to a scratch prefix
// drills/<yyyymmddhhmmss>/ in the target bucket, compared with the backup
// object by object (size and ETag), then deleted. The live target prefix is
// never written and no workload is restarted.

// Drill steps (the copy step is restore-models' own).
const (
	StepCompare       = "compare"
	StepDeleteScratch = "delete-scratch"
)

// ScratchRoot is where drills copy to in the target bucket.
const ScratchRoot = "drills/"

var _ actions.Drillable = (*Action)(nil)

// DrillSpec is a drill's pinned execution input: Spec with the copy aimed
// at Scratch, and the live target's digest (Verify finds it unchanged).
type DrillSpec struct {
	Spec
	Drill   bool   `json:"drill"`
	Scratch string `json:"scratch"` // drills/<stamp>/ in TargetBucket
	Stamp   string `json:"stamp"`
	// LiveTarget and LiveDigest pin the live target prefix's objects
	// (keys, sizes, ETags) as planned.
	LiveTarget string `json:"live_target"`
	LiveDigest string `json:"live_digest"`
}

// DrillPlan implements actions.Drillable.
func (a *Action) DrillPlan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	svc, err := p.ServiceIn(a.cfg)
	if err != nil {
		return actions.Plan{}, err
	}
	m := svc.Models
	if m == nil {
		return actions.Plan{}, actions.Refusef("service %s has no models configured", svc.Name)
	}
	if m.Backups.Scheme != "s3" || m.Target.Scheme != "s3" {
		return actions.Plan{}, actions.Refusef("restore-models drills copy between s3:// locations only (service %s has %s → %s)", svc.Name, m.Backups, m.Target)
	}
	client, err := a.client(ctx)
	if err != nil {
		return actions.Plan{}, err
	}
	var srcPrefix, snap, chosen string
	if m.Snapshots == nil {
		if srcPrefix, err = sourcePrefix(m.Backups.Prefix, flagBackup.String(p)); err != nil {
			return actions.Plan{}, err
		}
	} else {
		if snap, chosen, err = chooseSnapshot(ctx, client, m, flagBackup.String(p)); err != nil {
			return actions.Plan{}, err
		}
		srcPrefix = dirPrefix(m.Backups.Prefix) + m.Snapshots.Path(snap)
	}
	stamp := time.Now().UTC().Format("20060102150405")
	scratch := ScratchRoot + stamp + "/"
	if m.Backups.Bucket == m.Target.Bucket && (strings.HasPrefix(srcPrefix, ScratchRoot) || strings.HasPrefix(ScratchRoot, srcPrefix)) {
		return actions.Plan{}, actions.Refusef("the backup s3://%s/%s overlaps the drills' scratch prefix s3://%s/%s", m.Backups.Bucket, srcPrefix, m.Target.Bucket, ScratchRoot)
	}
	tgtPrefix := dirPrefix(m.Target.Prefix)
	if strings.HasPrefix(tgtPrefix, ScratchRoot) {
		return actions.Plan{}, actions.Refusef("the target s3://%s/%s is under the drills' scratch prefix %s", m.Target.Bucket, tgtPrefix, ScratchRoot)
	}
	src, err := list(ctx, client, m.Backups.Bucket, srcPrefix)
	if err != nil {
		return actions.Plan{}, err
	}
	if len(src) == 0 {
		return actions.Plan{}, actions.Refusef("no objects under s3://%s/%s", m.Backups.Bucket, srcPrefix)
	}
	live, err := list(ctx, client, m.Target.Bucket, tgtPrefix)
	if err != nil {
		return actions.Plan{}, err
	}
	s := DrillSpec{
		Spec:  Spec{SourceBucket: m.Backups.Bucket, SourcePrefix: srcPrefix, Snapshot: snap, TargetBucket: m.Target.Bucket, TargetPrefix: scratch},
		Drill: true, Scratch: scratch, Stamp: stamp,
		LiveTarget: tgtPrefix, LiveDigest: digest(live, ScratchRoot, tgtPrefix),
	}
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var bytes int64
	for _, k := range keys {
		o := src[k]
		if o.Size > a.partSize()*maxParts {
			return actions.Plan{}, actions.Refusef("s3://%s/%s%s is too large to copy (%s)", s.SourceBucket, srcPrefix, k, actions.HumanSize(o.Size))
		}
		s.Objects = append(s.Objects, Object{Key: k, Size: o.Size, ETag: o.ETag})
		bytes += o.Size
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("encode drill plan: %w", err)
	}
	from := fmt.Sprintf("s3://%s/%s", s.SourceBucket, srcPrefix)
	facts := []actions.Fact{}
	if snap != "" {
		facts = append(facts, actions.Fact{Label: "Snapshot", Value: fmt.Sprintf("%s (%s)", snap, chosen)})
	}
	facts = append(facts,
		actions.Fact{Label: "Backup", Value: fmt.Sprintf("%s (%d objects, %s)", from, len(s.Objects), actions.HumanSize(bytes))},
		actions.Fact{Label: "Scratch copy", Value: fmt.Sprintf("s3://%s/%s, deleted after the comparison", s.TargetBucket, scratch)},
		actions.Fact{Label: "Live target (not touched)", Value: fmt.Sprintf("s3://%s/%s", s.TargetBucket, tgtPrefix)},
	)
	return actions.Plan{
		Kind: Kind, Service: svc.Name,
		Target:  fmt.Sprintf("drill:s3:%s/%s", s.TargetBucket, ScratchRoot),
		Summary: fmt.Sprintf("Drill: copy %s's models (%d objects, %s) from %s to s3://%s/%s, compare and delete them", svc.Name, len(s.Objects), actions.HumanSize(bytes), from, s.TargetBucket, scratch),
		Facts:   facts,
		Steps: []actions.Step{
			{Name: StepCopy, Description: fmt.Sprintf("server-side copy %d objects (%s), %d at a time, to s3://%s/%s", len(s.Objects), actions.HumanSize(bytes), a.parallel(), s.TargetBucket, scratch)},
			{Name: StepCompare, Description: "compare every copied object with the backup (size and ETag)"},
			{Name: StepDeleteScratch, Description: fmt.Sprintf("delete s3://%s/%s", s.TargetBucket, scratch)},
		},
		Spec: raw,
	}, nil
}

// digest is a stable hash of a listing's keys, sizes and ETags, leaving out
// keys under skip (relative to the listed prefix base) so drills' own
// scratch copies do not change it.
func digest(objs map[string]listed, skip, base string) string {
	keys := make([]string, 0, len(objs))
	for k := range objs {
		if strings.HasPrefix(base+k, skip) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		_, _ = fmt.Fprintf(h, "%s\x00%d\x00%s\n", k, objs[k].Size, objs[k].ETag)
	}
	return fmt.Sprintf("%d:%s", len(keys), hex.EncodeToString(h.Sum(nil))[:16])
}

func decodeDrill(plan actions.Plan) (DrillSpec, bool, error) {
	var s DrillSpec
	if err := json.Unmarshal(plan.Spec, &s); err != nil {
		return s, false, fmt.Errorf("decode restore-models plan: %w", err)
	}
	if !s.Drill {
		return s, false, nil
	}
	if !validScratch(s.Scratch) || s.TargetPrefix != s.Scratch {
		return s, true, fmt.Errorf("restore-models drill: %q is not a drill scratch prefix", s.Scratch)
	}
	return s, true, nil
}

// validScratch reports whether p is drills/<14 digits>/.
func validScratch(p string) bool {
	stamp, ok := strings.CutPrefix(p, ScratchRoot)
	if !ok || !strings.HasSuffix(stamp, "/") {
		return false
	}
	_, err := time.Parse("20060102150405", strings.TrimSuffix(stamp, "/"))
	return err == nil && len(stamp) == 15
}

// executeDrill copies to the scratch prefix, compares and deletes; a failed
// copy or comparison deletes the scratch copy too.
func (a *Action) executeDrill(ctx context.Context, s DrillSpec, j actions.Journal) error {
	client, err := a.client(ctx)
	if err != nil {
		return err
	}
	cleanup := func(why string) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		n, err := deletePrefix(dctx, client, s.TargetBucket, s.Scratch)
		if err != nil {
			a.log.ErrorContext(dctx, "delete drill scratch", "prefix", s.Scratch, "err", err)
			j.Note(ctx, fmt.Sprintf("%s; WARNING: the scratch copy s3://%s/%s could not be deleted", why, s.TargetBucket, s.Scratch))
			return
		}
		j.Note(ctx, fmt.Sprintf("%s; the scratch copy s3://%s/%s was deleted (%d objects); the live target is untouched", why, s.TargetBucket, s.Scratch, n))
	}
	if _, err := actions.RunStep(ctx, j, StepCopy, func(ctx context.Context, resumed bool) (CopyResult, error) {
		if resumed {
			j.Note(ctx, "resuming the drill copy: objects already in place are skipped")
		}
		return a.copyAll(ctx, client, s.Spec, j)
	}); err != nil {
		if ctx.Err() == nil {
			cleanup("the drill copy failed")
		}
		return err
	}
	rep, err := actions.RunStep(ctx, j, StepCompare, func(ctx context.Context, _ bool) (actions.Report, error) {
		return compare(ctx, client, s)
	})
	if err != nil {
		if ctx.Err() == nil {
			cleanup("the comparison could not run")
		}
		return err
	}
	if _, err := actions.RunStep(ctx, j, StepDeleteScratch, func(ctx context.Context, _ bool) (int, error) {
		return deletePrefix(ctx, client, s.TargetBucket, s.Scratch)
	}); err != nil {
		return err
	}
	if !rep.OK() {
		return actions.Refusef("the drill copied the backup but %s: this backup would not restore cleanly; the live target is untouched", rep.Checks[0].Observed)
	}
	return nil
}

// compare lists the scratch copy and compares it with the pinned objects.
func compare(ctx context.Context, client *s3.Client, s DrillSpec) (actions.Report, error) {
	got, err := list(ctx, client, s.TargetBucket, s.Scratch)
	if err != nil {
		return actions.Report{}, err
	}
	c := actions.CheckResult{Name: "snapshot copied intact", Kind: "s3", Target: fmt.Sprintf("s3://%s/%s", s.TargetBucket, s.Scratch),
		Expected: fmt.Sprintf("%d/%d objects match the backup (size, ETag)", len(s.Objects), len(s.Objects))}
	match := 0
	var bad []string
	for _, o := range s.Objects {
		if d, ok := got[o.Key]; ok && !differ(listed{Size: o.Size, ETag: o.ETag}, d) {
			match++
		} else if len(bad) < 3 {
			bad = append(bad, o.Key)
		}
	}
	c.Observed = fmt.Sprintf("%d/%d objects match the backup", match, len(s.Objects))
	if len(bad) > 0 {
		c.Observed += " (mismatch: " + strings.Join(bad, ", ") + ")"
	}
	if extra := len(got) - match; extra > 0 && len(bad) == 0 {
		c.Observed += fmt.Sprintf(" (%d unexpected objects)", extra)
	}
	c.OK = match == len(s.Objects) && len(got) == len(s.Objects)
	return actions.Report{Checks: []actions.CheckResult{c}}, nil
}

// deletePrefix deletes every object under prefix (a drill's scratch prefix
// only) and returns how many.
func deletePrefix(ctx context.Context, client *s3.Client, bucket, prefix string) (int, error) {
	if !validScratch(prefix) {
		return 0, fmt.Errorf("delete s3://%s/%s: not a drill scratch prefix", bucket, prefix)
	}
	n := 0
	for {
		out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
		if err != nil {
			return n, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		if len(out.Contents) == 0 {
			return n, nil
		}
		var ids []s3types.ObjectIdentifier
		for _, o := range out.Contents {
			if !strings.HasPrefix(aws.ToString(o.Key), prefix) {
				return n, fmt.Errorf("s3://%s/%s listed outside %s", bucket, aws.ToString(o.Key), prefix)
			}
			ids = append(ids, s3types.ObjectIdentifier{Key: o.Key})
		}
		res, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return n, fmt.Errorf("delete under s3://%s/%s: %w", bucket, prefix, err)
		}
		if len(res.Errors) > 0 {
			return n, fmt.Errorf("delete s3://%s/%s: %s", bucket, aws.ToString(res.Errors[0].Key), aws.ToString(res.Errors[0].Message))
		}
		n += len(ids)
	}
}

// verifyDrill reports the scratch copy gone and the live target as planned.
func (a *Action) verifyDrill(ctx context.Context, s DrillSpec) (actions.Report, error) {
	client, err := a.client(ctx)
	if err != nil {
		return actions.Report{}, err
	}
	left, err := list(ctx, client, s.TargetBucket, s.Scratch)
	if err != nil {
		return actions.Report{}, err
	}
	live, err := list(ctx, client, s.TargetBucket, s.LiveTarget)
	if err != nil {
		return actions.Report{}, err
	}
	gone := actions.CheckResult{Name: "scratch copy deleted", Kind: "s3", Target: fmt.Sprintf("s3://%s/%s", s.TargetBucket, s.Scratch),
		Expected: "0 objects", Observed: fmt.Sprintf("%d objects", len(left)), OK: len(left) == 0}
	d := digest(live, ScratchRoot, s.LiveTarget)
	same := actions.CheckResult{Name: "live target untouched", Kind: "s3", Target: fmt.Sprintf("s3://%s/%s", s.TargetBucket, s.LiveTarget),
		Expected: "the objects as planned", Observed: "the objects as planned", OK: d == s.LiveDigest}
	if !same.OK {
		same.Observed = "changed since the plan (" + d + ", planned " + s.LiveDigest + ")"
	}
	return actions.Report{Checks: []actions.CheckResult{gone, same}}, nil
}
