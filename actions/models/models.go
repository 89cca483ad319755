// Package models is the "restore-models" action: copy a service's model
// backup onto its target prefix with S3 server-side copies (bounded
// parallelism; only objects whose size or ETag differ, like `aws s3 sync`),
// then rollout-restart the configured workloads so they reload the models,
// and wait for the rollouts.
//
// With models.snapshots (models-*/checkpoints/) the backups location holds
// one folder per backup run: exactly one snapshot is restored — the one
// --backup names, else the newest by the timestamp in its name (else by its
// newest object) — and what is under its inside path (checkpoints/) lands
// directly under the target. Without it the location is a mirror of the
// target, synced whole (--backup may name a sub-prefix).
package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/runbook"
)

// Kind is the action kind.
const Kind = "restore-models"

// FlagBackup is the flag naming the snapshot to restore (--backup
// models-20260114-020000) or, for a mirror, a prefix under the configured
// backups location (--backup 2026-11-20/).
const FlagBackup = "backup"

// Step names; per-workload steps are StepRestart+"deployment/NAME" and
// StepWait+"deployment/NAME".
const (
	StepCopy    = "copy-objects"
	StepRestart = "restart:"
	StepWait    = "wait:"
)

// DefaultParallel is how many copies run at once.
const DefaultParallel = 8

// Multipart copy: objects larger than one CopyObject can copy (5 GiB) are
// copied in parts with UploadPartCopy.
const (
	DefaultMultipartThreshold = 5 << 30
	DefaultPartSize           = 512 << 20
	maxParts                  = 10000
)

// LoadAWS returns the AWS configuration for a region ("" = the configured
// one). Production passes awsconf.Load; tests add awsconf.Static(moto, …).
type LoadAWS func(ctx context.Context, region string) (aws.Config, error)

// Action is the restore-models action.
type Action struct {
	cfg  *runbook.Config
	load LoadAWS
	kube *kube.Client
	// Parallel bounds concurrent copies (DefaultParallel when 0).
	Parallel int
	// RolloutTimeout bounds each rollout wait (kube.DefaultRolloutTimeout when 0).
	RolloutTimeout time.Duration
	// MultipartThreshold is the size above which an object is copied in
	// parts of PartSize (defaults: 5 GiB and 512 MiB; S3 needs parts of at
	// least 5 MiB except the last).
	MultipartThreshold int64
	PartSize           int64
	log                *slog.Logger
}

var _ actions.Action = (*Action)(nil)

// New returns the restore-models action; kc may be nil when no service
// restarts workloads after a restore.
func New(cfg *runbook.Config, load LoadAWS, kc *kube.Client) *Action {
	return &Action{cfg: cfg, load: load, kube: kc, Parallel: DefaultParallel, log: slog.Default()}
}

// Kind implements actions.Action.
func (a *Action) Kind() string { return Kind }

// Object is one object to copy, pinned by the plan.
type Object struct {
	Key  string `json:"key"` // relative to the source and target prefixes
	Size int64  `json:"size"`
	ETag string `json:"etag"`
}

// Spec is the pinned execution input.
type Spec struct {
	SourceBucket string   `json:"source_bucket"`
	SourcePrefix string   `json:"source_prefix"`
	Snapshot     string   `json:"snapshot,omitempty"` // the one snapshot folder restored (models.snapshots)
	TargetBucket string   `json:"target_bucket"`
	TargetPrefix string   `json:"target_prefix"`
	Objects      []Object `json:"objects"`   // the objects that differ: copied
	Unchanged    int      `json:"unchanged"` // source objects already in place
	Namespace    string   `json:"namespace,omitempty"`
	Restart      []string `json:"restart,omitempty"` // kind/name
	// Verify names the service's health checks that must pass after the
	// restart (models.verify), e.g. a metric lstm_pfd_model_loaded == 1.
	Verify []string `json:"verify,omitempty"`
}

// CopyResult is the copy step's recorded outcome.
type CopyResult struct {
	Copied  int   `json:"copied"`
	Skipped int   `json:"skipped"` // already in place when the step ran (a resumed step)
	Bytes   int64 `json:"bytes"`
}

type listed struct {
	Size     int64
	ETag     string
	Modified time.Time
}

func (a *Action) client(ctx context.Context) (*s3.Client, error) {
	cfg, err := a.load(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return awsconf.S3(cfg), nil
}

// Plan implements actions.Action: it lists the backup and the target and
// pins the objects that differ.
func (a *Action) Plan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	svc, err := p.ServiceIn(a.cfg)
	if err != nil {
		return actions.Plan{}, err
	}
	m := svc.Models
	if m == nil {
		return actions.Plan{}, actions.Refusef("service %s has no models configured", svc.Name)
	}
	if m.Backups.Scheme != runbook.SchemeS3 || m.Target.Scheme != runbook.SchemeS3 {
		return actions.Plan{}, actions.Refusef("restore-models copies between s3:// locations only (service %s has %s → %s)", svc.Name, m.Backups, m.Target)
	}
	if len(m.Restart) > 0 && a.kube == nil {
		return actions.Plan{}, actions.Refusef("service %s restarts %s after a restore, but no Kubernetes access is configured for this bot", svc.Name, m.Restart[0])
	}
	var srcPrefix, snap, chosen string
	var client *s3.Client
	if m.Snapshots == nil {
		// A mirror of the target: --backup may name a sub-prefix, else the
		// whole location is synced.
		if srcPrefix, err = sourcePrefix(m.Backups.Prefix, flagBackup.String(p)); err != nil {
			return actions.Plan{}, err
		}
	}
	client, err = a.client(ctx)
	if err != nil {
		return actions.Plan{}, err
	}
	if m.Snapshots != nil {
		// One folder per backup run: exactly one snapshot is restored, and
		// what is inside its pattern path lands directly under the target.
		if snap, chosen, err = chooseSnapshot(ctx, client, m, flagBackup.String(p)); err != nil {
			return actions.Plan{}, err
		}
		srcPrefix = dirPrefix(m.Backups.Prefix) + m.Snapshots.Path(snap)
	}
	tgtPrefix := dirPrefix(m.Target.Prefix)
	if m.Backups.Bucket == m.Target.Bucket && (strings.HasPrefix(srcPrefix, tgtPrefix) || strings.HasPrefix(tgtPrefix, srcPrefix)) {
		return actions.Plan{}, actions.Refusef("the backup s3://%s/%s and the target s3://%s/%s overlap", m.Backups.Bucket, srcPrefix, m.Target.Bucket, tgtPrefix)
	}
	src, err := list(ctx, client, m.Backups.Bucket, srcPrefix)
	if err != nil {
		return actions.Plan{}, err
	}
	if len(src) == 0 {
		return actions.Plan{}, actions.Refusef("no objects under s3://%s/%s", m.Backups.Bucket, srcPrefix)
	}
	dst, err := list(ctx, client, m.Target.Bucket, tgtPrefix)
	if err != nil {
		return actions.Plan{}, err
	}
	spec := Spec{SourceBucket: m.Backups.Bucket, SourcePrefix: srcPrefix, Snapshot: snap, TargetBucket: m.Target.Bucket, TargetPrefix: tgtPrefix, Namespace: svc.Namespace()}
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var bytes int64
	for _, k := range keys {
		s := src[k]
		if d, ok := dst[k]; ok && !differ(s, d) {
			spec.Unchanged++
			continue
		}
		if s.Size > a.partSize()*maxParts {
			return actions.Plan{}, actions.Refusef("s3://%s/%s%s is too large to copy (%s)", spec.SourceBucket, srcPrefix, k, actions.HumanSize(s.Size))
		}
		spec.Objects = append(spec.Objects, Object{Key: k, Size: s.Size, ETag: s.ETag})
		bytes += s.Size
	}
	steps := []actions.Step{{Name: StepCopy, Description: fmt.Sprintf("server-side copy %d objects (%s), %d at a time, from s3://%s/%s to s3://%s/%s",
		len(spec.Objects), actions.HumanSize(bytes), a.parallel(), spec.SourceBucket, srcPrefix, spec.TargetBucket, tgtPrefix)}}
	var facts []actions.Fact
	if snap != "" {
		facts = append(facts, actions.Fact{Label: "Snapshot", Value: fmt.Sprintf("%s (%s)", snap, chosen)})
	}
	facts = append(facts, actions.Fact{Label: "Backup", Value: fmt.Sprintf("s3://%s/%s (%d objects)", spec.SourceBucket, srcPrefix, len(src))})
	facts = append(facts, []actions.Fact{
		{Label: "Target", Value: fmt.Sprintf("s3://%s/%s", spec.TargetBucket, tgtPrefix)},
		{Label: "To copy", Value: fmt.Sprintf("%d objects, %s (%d already in place)", len(spec.Objects), actions.HumanSize(bytes), spec.Unchanged)},
	}...)
	var warnings []string
	if len(spec.Objects) == 0 {
		warnings = append(warnings, "the target already matches the backup: nothing to copy")
	}
	var restarts []string
	for _, ref := range m.Restart {
		w, err := a.kube.Get(ctx, spec.Namespace, ref)
		if err != nil {
			var nf *kube.NotFoundError
			if errors.As(err, &nf) {
				return actions.Plan{}, actions.Refusef("%s", nf.Error())
			}
			return actions.Plan{}, err
		}
		spec.Restart = append(spec.Restart, ref.String())
		restarts = append(restarts, fmt.Sprintf("%s (%d replicas)", ref, w.Replicas))
	}
	for _, r := range spec.Restart {
		steps = append(steps, actions.Step{Name: StepRestart + r, Description: fmt.Sprintf("rollout-restart %s in %s", r, spec.Namespace)})
	}
	for _, r := range spec.Restart {
		steps = append(steps, actions.Step{Name: StepWait + r, Description: fmt.Sprintf("wait for %s's rollout (up to %s)", r, a.rolloutTimeout())})
	}
	if len(restarts) > 0 {
		facts = append(facts, actions.Fact{Label: "Restart", Value: spec.Namespace + ": " + strings.Join(restarts, ", ")})
	}
	if len(m.Verify) > 0 {
		spec.Verify = m.Verify
		facts = append(facts, actions.Fact{Label: "Verified by", Value: strings.Join(m.Verify, ", ")})
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("encode plan: %w", err)
	}
	summary := fmt.Sprintf("Restore %s's models: copy %d of %d objects (%s) from s3://%s/%s", svc.Name, len(spec.Objects), len(src), actions.HumanSize(bytes), spec.SourceBucket, srcPrefix)
	if snap != "" {
		summary = fmt.Sprintf("Restore %s's models from snapshot %s: copy %d of %d objects (%s) from s3://%s/%s", svc.Name, snap, len(spec.Objects), len(src), actions.HumanSize(bytes), spec.SourceBucket, srcPrefix)
	}
	if len(spec.Restart) > 0 {
		summary += ", then restart " + strings.Join(spec.Restart, ", ")
	}
	return actions.Plan{
		Kind:     Kind,
		Service:  svc.Name,
		Target:   fmt.Sprintf("s3:%s/%s", spec.TargetBucket, tgtPrefix),
		Summary:  summary,
		Steps:    steps,
		Facts:    facts,
		Warnings: warnings,
		Spec:     raw,
	}, nil
}

func (a *Action) parallel() int {
	if a.Parallel > 0 {
		return a.Parallel
	}
	return DefaultParallel
}

func (a *Action) threshold() int64 {
	if a.MultipartThreshold > 0 {
		return a.MultipartThreshold
	}
	return DefaultMultipartThreshold
}

func (a *Action) partSize() int64 {
	if a.PartSize > 0 {
		return a.PartSize
	}
	return DefaultPartSize
}

func (a *Action) rolloutTimeout() time.Duration {
	if a.RolloutTimeout > 0 {
		return a.RolloutTimeout
	}
	return kube.DefaultRolloutTimeout
}

// sourcePrefix joins the configured backups prefix and the --backup flag.
func sourcePrefix(base, flag string) (string, error) {
	base = dirPrefix(base)
	flag = strings.TrimSpace(flag)
	if flag == "" {
		return base, nil
	}
	if strings.Contains(flag, "://") || strings.HasPrefix(flag, "/") || strings.Contains(flag, "//") {
		return "", actions.Refusef("--backup takes a prefix under the backups location, e.g. 2026-11-20/ (got %q)", flag)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(flag, "/"), "/") {
		if seg == "." || seg == ".." {
			return "", actions.Refusef("--backup %q: . and .. are not allowed", flag)
		}
	}
	return base + dirPrefix(flag), nil
}

// dirPrefix returns p with a trailing slash ("" stays "": the whole bucket).
func dirPrefix(p string) string {
	if p == "" || strings.HasSuffix(p, "/") {
		return p
	}
	return p + "/"
}

// multipart reports an ETag of a multipart upload ("…-N"), which is not an
// MD5 of the content and so cannot be compared with a copy's ETag.
func multipart(etag string) bool { return strings.Contains(etag, "-") }

// differ reports whether the target object d must be replaced by s: the
// sizes differ, or the ETags differ where they are comparable, or (an ETag
// of a multipart upload) the target is older than the backup, as `aws s3
// sync` judges by time.
func differ(s, d listed) bool {
	if s.Size != d.Size {
		return true
	}
	if !multipart(s.ETag) && !multipart(d.ETag) {
		return s.ETag != d.ETag
	}
	if s.ETag == d.ETag {
		return false
	}
	return d.Modified.Before(s.Modified)
}

// list returns the objects under prefix keyed by their key relative to it.
func list(ctx context.Context, client *s3.Client, bucket, prefix string) (map[string]listed, error) {
	out := map[string]listed{}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			var ae smithy.APIError
			if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket" {
				return nil, actions.Refusef("S3 bucket %s does not exist", bucket)
			}
			return nil, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			rel := strings.TrimPrefix(key, prefix)
			if rel == "" || strings.HasSuffix(key, "/") && aws.ToInt64(o.Size) == 0 {
				continue // the prefix itself, or a "folder" marker
			}
			out[rel] = listed{Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag), Modified: aws.ToTime(o.LastModified)}
		}
	}
	return out, nil
}

// copySource encodes bucket/key for the x-amz-copy-source header.
func copySource(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(s), "+", "%2B")
	}
	return bucket + "/" + strings.Join(segs, "/")
}

func decodeSpec(plan actions.Plan) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(plan.Spec, &s); err != nil {
		return s, fmt.Errorf("decode restore-models plan: %w", err)
	}
	if s.SourceBucket == "" || s.TargetBucket == "" {
		return s, errors.New("decode restore-models plan: no buckets")
	}
	return s, nil
}

func restartRefs(s Spec) ([]runbook.WorkloadRef, error) {
	var out []runbook.WorkloadRef
	for _, r := range s.Restart {
		ref, err := runbook.ParseWorkloadRef(r)
		if err != nil {
			return nil, fmt.Errorf("decode restore-models plan: %w", err)
		}
		out = append(out, ref)
	}
	return out, nil
}

// Execute implements actions.Action: copy the pinned objects (skipping any
// already in place, so a resumed step copies only what is left), then
// restart the workloads and wait for their rollouts.
func (a *Action) Execute(ctx context.Context, plan actions.Plan, j actions.Journal) error {
	if ds, drill, err := decodeDrill(plan); drill || err != nil {
		if err != nil {
			return err
		}
		return a.executeDrill(ctx, ds, j)
	}
	s, err := decodeSpec(plan)
	if err != nil {
		return err
	}
	refs, err := restartRefs(s)
	if err != nil {
		return err
	}
	if len(refs) > 0 && a.kube == nil {
		return actions.Refusef("no Kubernetes access is configured for this bot")
	}
	client, err := a.client(ctx)
	if err != nil {
		return err
	}
	res, err := actions.RunStep(ctx, j, StepCopy, func(ctx context.Context, resumed bool) (CopyResult, error) {
		if resumed {
			j.Note(ctx, "resuming the copy: objects already in place are skipped")
		}
		return a.copyAll(ctx, client, s, j)
	})
	if err != nil {
		return err
	}
	j.Note(ctx, fmt.Sprintf("copied %d objects (%s); %d were already in place", res.Copied, actions.HumanSize(res.Bytes), res.Skipped+s.Unchanged))
	for _, ref := range refs {
		if _, err := actions.RunStep(ctx, j, StepRestart+ref.String(), func(ctx context.Context, _ bool) (string, error) {
			return a.kube.RolloutRestart(ctx, s.Namespace, ref)
		}); err != nil {
			return err
		}
	}
	for _, ref := range refs {
		if err := kube.WaitStep(ctx, a.kube, j, StepWait+ref.String(), s.Namespace, ref, a.rolloutTimeout()); err != nil {
			return err
		}
	}
	return nil
}

func (a *Action) copyAll(ctx context.Context, client *s3.Client, s Spec, j actions.Journal) (CopyResult, error) {
	var res CopyResult
	total := int64(len(s.Objects))
	if total == 0 {
		return res, nil
	}
	dst, err := list(ctx, client, s.TargetBucket, s.TargetPrefix)
	if err != nil {
		return res, err
	}
	var pending []Object
	for _, o := range s.Objects {
		if d, ok := dst[o.Key]; ok && !differ(listed{Size: o.Size, ETag: o.ETag}, d) {
			res.Skipped++
			continue
		}
		pending = append(pending, o)
	}
	var done atomic.Int64
	done.Store(int64(res.Skipped))
	j.Progress(ctx, actions.Progress{Step: StepCopy, Done: done.Load(), Total: total, Unit: "objects"})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan Object)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		copied   int
		bytes    int64
	)
	for range min(a.parallel(), len(pending)) {
		wg.Go(func() {
			for o := range jobs {
				if err := a.copyOne(ctx, client, s, o); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
					continue
				}
				mu.Lock()
				copied++
				bytes += o.Size
				mu.Unlock()
				j.Progress(ctx, actions.Progress{Step: StepCopy, Done: done.Add(1), Total: total, Unit: "objects"})
			}
		})
	}
feed:
	for _, o := range pending {
		select {
		case jobs <- o:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	res.Copied, res.Bytes = copied, bytes
	if firstErr != nil {
		return res, firstErr
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	a.log.InfoContext(ctx, "restored models", "source", "s3://"+s.SourceBucket+"/"+s.SourcePrefix, "target", "s3://"+s.TargetBucket+"/"+s.TargetPrefix, "copied", copied, "skipped", res.Skipped)
	return res, nil
}

// copyOne copies one pinned object, only if the backup still has the pinned
// ETag.
func (a *Action) copyOne(ctx context.Context, client *s3.Client, s Spec, o Object) error {
	if o.Size > a.threshold() {
		return copyError(s, o, a.copyMultipart(ctx, client, s, o))
	}
	out, err := client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:            aws.String(s.TargetBucket),
		Key:               aws.String(s.TargetPrefix + o.Key),
		CopySource:        aws.String(copySource(s.SourceBucket, s.SourcePrefix+o.Key)),
		CopySourceIfMatch: aws.String(o.ETag),
	})
	if err == nil {
		// A copy of a single-part object has the source's ETag: a different one
		// means the source changed and the server ignored the precondition (as
		// some S3-compatible servers do).
		if out.CopyObjectResult != nil && !multipart(o.ETag) {
			if got := aws.ToString(out.CopyObjectResult.ETag); got != "" && got != o.ETag {
				return actions.Refusef("backup object %s changed since the plan was made (ETag %s, planned %s): plan again", s.SourcePrefix+o.Key, got, o.ETag)
			}
		}
		return nil
	}
	return copyError(s, o, err)
}

// copyError makes a copy's failure user-safe where it is the world's doing.
func copyError(s Spec, o Object, err error) error {
	if err == nil {
		return nil
	}
	var ref *actions.Refusal
	if errors.As(err, &ref) {
		return err
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed":
			return actions.Refusef("backup object %s changed since the plan was made: plan again", s.SourcePrefix+o.Key)
		case "NoSuchKey":
			return actions.Refusef("backup object %s is gone since the plan was made: plan again", s.SourcePrefix+o.Key)
		case "NoSuchBucket":
			return actions.Refusef("S3 bucket %s or %s does not exist", s.SourceBucket, s.TargetBucket)
		}
	}
	return fmt.Errorf("copy s3://%s/%s%s to s3://%s/%s%s: %w", s.SourceBucket, s.SourcePrefix, o.Key, s.TargetBucket, s.TargetPrefix, o.Key, err)
}

// copyMultipart copies a large object in parts (UploadPartCopy), each
// guarded by the pinned ETag; a failure aborts the upload. The copy keeps the
// source's content type and user metadata.
func (a *Action) copyMultipart(ctx context.Context, client *s3.Client, s Spec, o Object) error {
	src := copySource(s.SourceBucket, s.SourcePrefix+o.Key)
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.SourceBucket), Key: aws.String(s.SourcePrefix + o.Key), IfMatch: aws.String(o.ETag)})
	if err != nil {
		return err
	}
	if aws.ToString(head.ETag) != o.ETag {
		return actions.Refusef("backup object %s changed since the plan was made: plan again", s.SourcePrefix+o.Key)
	}
	key := aws.String(s.TargetPrefix + o.Key)
	up, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.TargetBucket), Key: key,
		ContentType: head.ContentType, Metadata: head.Metadata,
	})
	if err != nil {
		return err
	}
	abort := func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.TargetBucket), Key: key, UploadId: up.UploadId})
	}
	var parts []s3types.CompletedPart
	part := a.partSize()
	for n, off := int32(1), int64(0); off < o.Size; n, off = n+1, off+part {
		end := min(off+part, o.Size) - 1
		out, err := client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: aws.String(s.TargetBucket), Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(n),
			CopySource: aws.String(src), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
			CopySourceIfMatch: aws.String(o.ETag),
		})
		if err != nil {
			abort()
			return err
		}
		var etag *string
		if out.CopyPartResult != nil {
			etag = out.CopyPartResult.ETag
		}
		parts = append(parts, s3types.CompletedPart{ETag: etag, PartNumber: aws.Int32(n)})
	}
	if _, err := client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.TargetBucket), Key: key, UploadId: up.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		abort()
		return err
	}
	return nil
}

// Verify implements actions.Action: every pinned object is in the target with
// its size (and ETag where comparable), and every restarted workload's
// rollout is complete with its pods ready.
func (a *Action) Verify(ctx context.Context, plan actions.Plan) (actions.Report, error) {
	if ds, drill, err := decodeDrill(plan); drill || err != nil {
		if err != nil {
			return actions.Report{}, err
		}
		return a.verifyDrill(ctx, ds)
	}
	s, err := decodeSpec(plan)
	if err != nil {
		return actions.Report{}, err
	}
	refs, err := restartRefs(s)
	if err != nil {
		return actions.Report{}, err
	}
	var r actions.Report
	c := actions.CheckResult{Name: "models copied", Kind: "s3", Target: fmt.Sprintf("s3://%s/%s", s.TargetBucket, s.TargetPrefix),
		Expected: fmt.Sprintf("%d/%d objects match the backup", len(s.Objects), len(s.Objects))}
	began := time.Now()
	client, err := a.client(ctx)
	var dst map[string]listed
	if err == nil {
		dst, err = list(ctx, client, s.TargetBucket, s.TargetPrefix)
	}
	c.Latency = time.Since(began)
	if err != nil {
		var ref *actions.Refusal
		if errors.As(err, &ref) {
			c.Error = ref.Msg
		} else {
			a.log.WarnContext(ctx, "restore-models verify: list target", "err", err)
			c.Error = "could not list the target"
		}
	} else {
		match := 0
		var first string
		for _, o := range s.Objects {
			if d, ok := dst[o.Key]; ok && !differ(listed{Size: o.Size, ETag: o.ETag}, d) {
				match++
			} else if first == "" {
				first = o.Key
			}
		}
		c.Observed = fmt.Sprintf("%d/%d objects match the backup", match, len(s.Objects))
		if first != "" {
			c.Observed += " (first mismatch: " + first + ")"
		}
		c.OK = match == len(s.Objects)
	}
	r.Checks = append(r.Checks, c)
	for _, ref := range refs {
		if a.kube == nil {
			r.Checks = append(r.Checks, actions.CheckResult{Name: ref.String() + " rollout", Kind: "rollout", Error: "no Kubernetes access is configured for this bot"})
			continue
		}
		r.Checks = append(r.Checks, kube.VerifyWorkload(ctx, a.kube, s.Namespace, ref).Checks...)
	}
	r.Checks = append(r.Checks, a.verifyChecks(ctx, plan.Service, s.Verify)...)
	return r, nil
}

// verifyChecks runs the service's health checks named in models.verify
// (runbook 001 §2.3: lstm_pfd_model_loaded == 1 once the models reloaded).
// A name no longer among the service's health checks is a failed check.
func (a *Action) verifyChecks(ctx context.Context, service string, names []string) []actions.CheckResult {
	var out []actions.CheckResult
	svc, _ := a.cfg.Service(service)
	for _, name := range names {
		var h *runbook.HealthCheck
		if svc != nil {
			h, _ = svc.HealthCheck(name)
		}
		if h == nil {
			out = append(out, actions.CheckResult{Name: name, Error: "no longer a health check of " + service + " in the runbook config"})
			continue
		}
		out = append(out, verify.Health(ctx, verify.Deps{}, *h)...)
	}
	return out
}
