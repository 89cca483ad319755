// Package kube is drbot's Kubernetes adapter (client-go): scale a workload,
// restart it the way `kubectl rollout restart` does, wait for a rollout the
// way `kubectl rollout status` does, and count ready pods. It also holds the
// "rollout-restart" and "scale" actions (actions.go).
//
// Workloads are deployments and statefulsets, named by runbook.WorkloadRef.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/runbook"
)

// RestartedAtAnnotation is the pod-template annotation `kubectl rollout
// restart` sets; changing it rolls every pod.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// DefaultPollInterval is how often WaitRollout reads the workload.
const DefaultPollInterval = 2 * time.Second

// Client talks to one cluster.
type Client struct {
	cs kubernetes.Interface
	// Poll is how often WaitRollout reads the workload's status.
	Poll time.Duration
	// Now is the clock for restart annotations (time.Now when nil).
	Now func() time.Time
	log *slog.Logger
}

// New returns a client over cs (a real clientset, or client-go's fake
// clientset in tests).
func New(cs kubernetes.Interface) *Client {
	return &Client{cs: cs, Poll: DefaultPollInterval, log: slog.Default()}
}

// NewFromEnv builds a client from $KUBECONFIG (or ~/.kube/config when it
// exists), or else from the in-cluster service account.
func NewFromEnv() (*Client, error) {
	cfg, err := RESTConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return New(cs), nil
}

// RESTConfig returns the cluster configuration NewFromEnv uses.
func RESTConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules() // honours KUBECONFIG (a path list)
	explicit := os.Getenv("KUBECONFIG") != ""
	if !explicit {
		if home, err := os.UserHomeDir(); err == nil {
			if _, err := os.Stat(filepath.Join(home, ".kube", "config")); err == nil {
				explicit = true
			}
		}
	}
	if explicit {
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig: %w", err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no KUBECONFIG and not running in a cluster: %w", err)
	}
	return cfg, nil
}

// Clientset returns the underlying clientset.
func (c *Client) Clientset() kubernetes.Interface { return c.cs }

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) poll() time.Duration {
	if c.Poll > 0 {
		return c.Poll
	}
	return DefaultPollInterval
}

// NotFoundError reports a workload that does not exist. It is user-safe.
type NotFoundError struct {
	Namespace string
	Ref       runbook.WorkloadRef
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s not found in namespace %s", e.Ref, e.Namespace)
}

// UserMessage marks the error as safe to show.
func (e *NotFoundError) UserMessage() string { return e.Error() }

// As makes the error a user-safe *usererr.Refusal to errors.As.
func (e *NotFoundError) As(target any) bool { return usererr.Into(target, e.Error()) }

// Workload is what drbot needs to know about a deployment or statefulset.
type Workload struct {
	Namespace  string
	Ref        runbook.WorkloadRef
	Replicas   int32             // spec.replicas (1 when unset, the API default)
	Generation int64             // metadata.generation
	Selector   string            // the workload's pod selector, as a label selector string
	Labels     map[string]string // metadata.labels
}

// Get returns the workload; a missing one is a *NotFoundError.
func (c *Client) Get(ctx context.Context, namespace string, ref runbook.WorkloadRef) (Workload, error) {
	w := Workload{Namespace: namespace, Ref: ref}
	var (
		replicas *int32
		sel      *metav1.LabelSelector
		meta     metav1.ObjectMeta
	)
	switch ref.Kind {
	case runbook.KindDeployment:
		d, err := c.cs.AppsV1().Deployments(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return w, c.getErr(namespace, ref, err)
		}
		replicas, sel, meta = d.Spec.Replicas, d.Spec.Selector, d.ObjectMeta
	case runbook.KindStatefulSet:
		s, err := c.cs.AppsV1().StatefulSets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return w, c.getErr(namespace, ref, err)
		}
		replicas, sel, meta = s.Spec.Replicas, s.Spec.Selector, s.ObjectMeta
	default:
		return w, fmt.Errorf("unsupported workload kind %q (want deployment or statefulset)", ref.Kind)
	}
	w.Replicas = 1
	if replicas != nil {
		w.Replicas = *replicas
	}
	w.Generation = meta.Generation
	w.Labels = meta.Labels
	if sel != nil {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return w, fmt.Errorf("%s: selector: %w", ref, err)
		}
		w.Selector = s.String()
	}
	return w, nil
}

func (c *Client) getErr(namespace string, ref runbook.WorkloadRef, err error) error {
	if apierrors.IsNotFound(err) {
		return &NotFoundError{Namespace: namespace, Ref: ref}
	}
	return fmt.Errorf("get %s in %s: %w", ref, namespace, err)
}

// Scale sets ref's replicas and returns the previous count. Setting the count
// it already has changes nothing. The change is a JSON patch guarded by a
// test of the previous value, so a concurrent change is never overwritten
// unseen (the read is retried).
func (c *Client) Scale(ctx context.Context, namespace string, ref runbook.WorkloadRef, replicas int32) (previous int32, err error) {
	if replicas < 0 {
		return 0, fmt.Errorf("scale %s: negative replicas %d", ref, replicas)
	}
	var lastErr error
	for range 5 {
		prev, set, err := c.specReplicas(ctx, namespace, ref)
		if err != nil {
			return 0, err
		}
		if prev == replicas {
			return prev, nil
		}
		err = c.patchReplicas(ctx, namespace, ref, prev, set, replicas)
		if err == nil {
			c.log.InfoContext(ctx, "scaled workload", "namespace", namespace, "workload", ref.String(), "from", prev, "to", replicas)
			return prev, nil
		}
		if !isPatchTestFailure(err) {
			return 0, fmt.Errorf("scale %s in %s: %w", ref, namespace, err)
		}
		lastErr = err
	}
	return 0, fmt.Errorf("scale %s in %s: replicas keep changing: %w", ref, namespace, lastErr)
}

// ScaleFrom sets ref's replicas to `to` only when they are `from` (what a plan
// pinned) or already `to` (a resumed step). Anything else is a *ReplicasChangedError.
func (c *Client) ScaleFrom(ctx context.Context, namespace string, ref runbook.WorkloadRef, from, to int32) error {
	prev, set, err := c.specReplicas(ctx, namespace, ref)
	if err != nil {
		return err
	}
	if prev == to {
		return nil
	}
	if prev != from {
		return &ReplicasChangedError{Ref: ref, Planned: from, Now: prev}
	}
	if err := c.patchReplicas(ctx, namespace, ref, prev, set, to); err != nil {
		if isPatchTestFailure(err) {
			now, _, gerr := c.specReplicas(ctx, namespace, ref)
			if gerr != nil {
				return gerr
			}
			if now == to {
				return nil
			}
			return &ReplicasChangedError{Ref: ref, Planned: from, Now: now}
		}
		return fmt.Errorf("scale %s in %s: %w", ref, namespace, err)
	}
	c.log.InfoContext(ctx, "scaled workload", "namespace", namespace, "workload", ref.String(), "from", from, "to", to)
	return nil
}

// ReplicasChangedError reports that a workload's replicas changed since the
// plan was made. It is user-safe.
type ReplicasChangedError struct {
	Ref     runbook.WorkloadRef
	Planned int32
	Now     int32
}

func (e *ReplicasChangedError) Error() string {
	return fmt.Sprintf("%s has %d replicas now, the plan was made at %d: plan again", e.Ref, e.Now, e.Planned)
}

// UserMessage marks the error as safe to show.
func (e *ReplicasChangedError) UserMessage() string { return e.Error() }

// As makes the error a user-safe *usererr.Refusal to errors.As.
func (e *ReplicasChangedError) As(target any) bool { return usererr.Into(target, e.Error()) }

// specReplicas returns spec.replicas and whether the field is set.
func (c *Client) specReplicas(ctx context.Context, namespace string, ref runbook.WorkloadRef) (int32, bool, error) {
	var r *int32
	switch ref.Kind {
	case runbook.KindDeployment:
		d, err := c.cs.AppsV1().Deployments(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return 0, false, c.getErr(namespace, ref, err)
		}
		r = d.Spec.Replicas
	case runbook.KindStatefulSet:
		s, err := c.cs.AppsV1().StatefulSets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return 0, false, c.getErr(namespace, ref, err)
		}
		r = s.Spec.Replicas
	default:
		return 0, false, fmt.Errorf("unsupported workload kind %q (want deployment or statefulset)", ref.Kind)
	}
	if r == nil {
		return 1, false, nil
	}
	return *r, true, nil
}

type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

func (c *Client) patchReplicas(ctx context.Context, namespace string, ref runbook.WorkloadRef, prev int32, set bool, to int32) error {
	var ops []jsonPatchOp
	if set {
		ops = append(ops, jsonPatchOp{Op: "test", Path: "/spec/replicas", Value: prev})
		ops = append(ops, jsonPatchOp{Op: "replace", Path: "/spec/replicas", Value: to})
	} else {
		ops = append(ops, jsonPatchOp{Op: "add", Path: "/spec/replicas", Value: to})
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	return c.patch(ctx, namespace, ref, types.JSONPatchType, body)
}

func (c *Client) patch(ctx context.Context, namespace string, ref runbook.WorkloadRef, pt types.PatchType, body []byte) error {
	var err error
	switch ref.Kind {
	case runbook.KindDeployment:
		_, err = c.cs.AppsV1().Deployments(namespace).Patch(ctx, ref.Name, pt, body, metav1.PatchOptions{FieldManager: "drbot"})
	case runbook.KindStatefulSet:
		_, err = c.cs.AppsV1().StatefulSets(namespace).Patch(ctx, ref.Name, pt, body, metav1.PatchOptions{FieldManager: "drbot"})
	default:
		return fmt.Errorf("unsupported workload kind %q (want deployment or statefulset)", ref.Kind)
	}
	if apierrors.IsNotFound(err) {
		return &NotFoundError{Namespace: namespace, Ref: ref}
	}
	return err
}

// isPatchTestFailure reports a JSON patch whose "test" op failed: the API
// server answers 422 Invalid (the fake clientset returns the json-patch error).
func isPatchTestFailure(err error) bool {
	if apierrors.IsInvalid(err) || apierrors.IsConflict(err) {
		return true
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return false
	}
	// github.com/evanphx/json-patch's message for a failed test op.
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "testing value") || strings.Contains(msg, "test operation") || strings.Contains(msg, "test failed")
}

// RolloutRestart restarts ref's pods the way `kubectl rollout restart` does:
// a strategic-merge patch of the pod template's restartedAt annotation. It
// returns the annotation value it set.
func (c *Client) RolloutRestart(ctx context.Context, namespace string, ref runbook.WorkloadRef) (string, error) {
	at := c.now().UTC().Format(time.RFC3339)
	body, err := json.Marshal(map[string]any{
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{RestartedAtAnnotation: at},
		}}},
	})
	if err != nil {
		return "", err
	}
	if err := c.patch(ctx, namespace, ref, types.StrategicMergePatchType, body); err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return "", err
		}
		return "", fmt.Errorf("restart %s in %s: %w", ref, namespace, err)
	}
	c.log.InfoContext(ctx, "restarted workload", "namespace", namespace, "workload", ref.String(), "restartedAt", at)
	return at, nil
}

// Status is one reading of a rollout.
type Status struct {
	Done    bool
	Message string // kubectl's wording, e.g. "2 of 3 updated replicas are available"
	Ready   int32  // updated replicas that are available (ready for statefulsets)
	Total   int32  // desired replicas
}

// RolloutFailedError is a rollout that cannot complete (its progress deadline
// passed), or that did not complete in time. It is user-safe.
type RolloutFailedError struct {
	Namespace string
	Ref       runbook.WorkloadRef
	Reason    string
	cause     error // ErrProgressDeadline, ErrRolloutTimeout or nil
}

func (e *RolloutFailedError) Error() string {
	return fmt.Sprintf("rollout of %s in %s failed: %s", e.Ref, e.Namespace, e.Reason)
}

// UserMessage marks the error as safe to show.
func (e *RolloutFailedError) UserMessage() string { return e.Error() }

// As makes the error a user-safe *usererr.Refusal to errors.As.
func (e *RolloutFailedError) As(target any) bool { return usererr.Into(target, e.Error()) }

// ErrProgressDeadline is wrapped by the error of a rollout whose Progressing
// condition says ProgressDeadlineExceeded.
var ErrProgressDeadline = errors.New("progress deadline exceeded")

// ErrRolloutTimeout is wrapped by the error of a rollout that did not finish
// within WaitRollout's timeout.
var ErrRolloutTimeout = errors.New("rollout did not finish in time")

// Unwrap returns ErrProgressDeadline or ErrRolloutTimeout when one applies.
func (e *RolloutFailedError) Unwrap() error { return e.cause }

const (
	reasonDeadline = "it exceeded its progress deadline (ProgressDeadlineExceeded)"
	reasonTimeout  = "it did not finish in time"
)

// timedOutReason is the Progressing condition reason of a deployment whose
// progress deadline passed (deploymentutil.TimedOutReason).
const timedOutReason = "ProgressDeadlineExceeded"

// RolloutStatus reads ref once and judges its rollout exactly as `kubectl
// rollout status` does. A rollout that cannot complete is a *RolloutFailedError.
func (c *Client) RolloutStatus(ctx context.Context, namespace string, ref runbook.WorkloadRef) (Status, error) {
	switch ref.Kind {
	case runbook.KindDeployment:
		d, err := c.cs.AppsV1().Deployments(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return Status{}, c.getErr(namespace, ref, err)
		}
		st, failed := DeploymentStatus(d)
		if failed {
			return st, &RolloutFailedError{Namespace: namespace, Ref: ref, Reason: reasonDeadline, cause: ErrProgressDeadline}
		}
		return st, nil
	case runbook.KindStatefulSet:
		s, err := c.cs.AppsV1().StatefulSets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return Status{}, c.getErr(namespace, ref, err)
		}
		st, err := StatefulSetStatus(s)
		if err != nil {
			return st, &RolloutFailedError{Namespace: namespace, Ref: ref, Reason: err.Error()}
		}
		return st, nil
	}
	return Status{}, fmt.Errorf("unsupported workload kind %q (want deployment or statefulset)", ref.Kind)
}

// DeploymentStatus is kubectl's DeploymentStatusViewer: failed reports a
// Progressing condition with reason ProgressDeadlineExceeded.
func DeploymentStatus(d *appsv1.Deployment) (st Status, failed bool) {
	st.Total = 1
	if d.Spec.Replicas != nil {
		st.Total = *d.Spec.Replicas
	}
	s := d.Status
	st.Ready = min(s.UpdatedReplicas, s.AvailableReplicas)
	if d.Generation > s.ObservedGeneration {
		st.Ready = 0
		st.Message = "waiting for the deployment spec update to be observed"
		return st, false
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == timedOutReason {
			st.Message = fmt.Sprintf("deployment %q exceeded its progress deadline", d.Name)
			return st, true
		}
	}
	switch {
	case s.UpdatedReplicas < st.Total:
		st.Message = fmt.Sprintf("%d of %d new replicas updated", s.UpdatedReplicas, st.Total)
	case s.Replicas > s.UpdatedReplicas:
		st.Message = fmt.Sprintf("%d old replicas pending termination", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		st.Message = fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas)
	default:
		st.Done = true
		st.Ready = st.Total
		st.Message = "successfully rolled out"
	}
	return st, false
}

// StatefulSetStatus is kubectl's StatefulSetStatusViewer. A statefulset whose
// update strategy is not RollingUpdate has no rollout status (an error).
func StatefulSetStatus(s *appsv1.StatefulSet) (Status, error) {
	st := Status{Total: 1}
	if s.Spec.Replicas != nil {
		st.Total = *s.Spec.Replicas
	}
	if t := s.Spec.UpdateStrategy.Type; t != "" && t != appsv1.RollingUpdateStatefulSetStrategyType {
		return st, fmt.Errorf("rollout status is only available for the %s strategy (this statefulset uses %s)", appsv1.RollingUpdateStatefulSetStrategyType, t)
	}
	ss := s.Status
	if ss.ObservedGeneration == 0 || s.Generation > ss.ObservedGeneration {
		st.Message = "waiting for the statefulset spec update to be observed"
		return st, nil
	}
	st.Ready = min(ss.ReadyReplicas, ss.UpdatedReplicas)
	if ss.ReadyReplicas < st.Total {
		st.Message = fmt.Sprintf("waiting for %d pods to be ready", st.Total-ss.ReadyReplicas)
		return st, nil
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		if ss.UpdatedReplicas < st.Total-*ru.Partition {
			st.Message = fmt.Sprintf("waiting for partitioned roll out to finish: %d of %d new pods updated", ss.UpdatedReplicas, st.Total-*ru.Partition)
			return st, nil
		}
		st.Done, st.Ready = true, st.Total
		st.Message = fmt.Sprintf("partitioned roll out complete: %d new pods updated", ss.UpdatedReplicas)
		return st, nil
	}
	if ss.UpdateRevision != ss.CurrentRevision {
		st.Message = fmt.Sprintf("waiting for the rolling update to complete: %d pods at revision %s", ss.UpdatedReplicas, ss.UpdateRevision)
		return st, nil
	}
	st.Done, st.Ready = true, st.Total
	st.Message = fmt.Sprintf("rolling update complete: %d pods at revision %s", ss.CurrentReplicas, ss.CurrentRevision)
	return st, nil
}

// WaitOptions tune WaitRollout.
type WaitOptions struct {
	// Timeout bounds the wait (0: only ctx bounds it).
	Timeout time.Duration
	// OnProgress is called with each reading whose ready count or message changed.
	OnProgress func(ready, total int32, message string)
}

// WaitRollout polls ref until its rollout is complete, as `kubectl rollout
// status` does. A progress deadline or the timeout is a *RolloutFailedError.
func (c *Client) WaitRollout(ctx context.Context, namespace string, ref runbook.WorkloadRef, opts WaitOptions) (Status, error) {
	var deadline <-chan time.Time
	if opts.Timeout > 0 {
		t := time.NewTimer(opts.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(c.poll())
	defer tick.Stop()
	var last Status
	first := true
	for {
		st, err := c.RolloutStatus(ctx, namespace, ref)
		if err != nil {
			return st, err
		}
		if opts.OnProgress != nil && (first || st.Ready != last.Ready || st.Total != last.Total || st.Message != last.Message) {
			opts.OnProgress(st.Ready, st.Total, st.Message)
		}
		first, last = false, st
		if st.Done {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("wait for rollout of %s in %s: %w", ref, namespace, ctx.Err())
		case <-deadline:
			return st, &RolloutFailedError{Namespace: namespace, Ref: ref, Reason: fmt.Sprintf("%s (%s; last: %s)", reasonTimeout, opts.Timeout, st.Message), cause: ErrRolloutTimeout}
		case <-tick.C:
		}
	}
}

// PodsReady counts the pods matching selector in namespace that are ready.
// Pods being deleted and pods that finished (Succeeded, Failed) are not counted.
func (c *Client) PodsReady(ctx context.Context, namespace, selector string) (ready, total int, err error) {
	notReady, total, err := c.NotReadyPods(ctx, namespace, selector)
	return total - len(notReady), total, err
}

// NotReadyPods returns the names of the pods matching selector in namespace
// that are not ready, sorted, and how many pods match. Pods being deleted
// and pods that finished (Succeeded, Failed) are not counted.
func (c *Client) NotReadyPods(ctx context.Context, namespace, selector string) (notReady []string, total int, err error) {
	if _, err := labels.Parse(selector); err != nil {
		return nil, 0, fmt.Errorf("selector %q: %w", selector, err)
	}
	pods, err := c.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, 0, fmt.Errorf("list pods %s in %s: %w", selector, namespace, err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		total++
		if !podReady(&p) {
			notReady = append(notReady, p.Name)
		}
	}
	slices.Sort(notReady)
	return notReady, total, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
