// Package redeploy is the "redeploy" action (runbook 000 "Kubernetes
// Recovery": git checkout main && kubectl apply -k
// infra/kubernetes/environments/prod): it fetches the service's
// kubernetes.source with go-git, builds the kustomization in process with
// kustomize's krusty, and server-side applies every object through
// client-go's dynamic client with field manager "drbot", then waits for the
// rollouts and checks the pods.
//
// The plan pins the commit and the rendered objects: Execute applies exactly
// the approved objects and never fetches again, except to check that the
// ref still points at the approved commit (a newer commit needs a new plan
// and a new approval).
package redeploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
)

// KindRedeploy is the action kind and command name.
const KindRedeploy = "redeploy"

// FieldManager is the server-side apply field manager of every object
// redeploy applies.
const FieldManager = "drbot"

// StepCheckRef is the first step (unless the ref is a commit SHA): the ref
// still points at the approved commit. One "apply <Kind>/<name>" step per
// object and one "rollout <Kind>/<name>" per Deployment or StatefulSet follow.
const StepCheckRef = "check-ref"

// Defaults.
const (
	DefaultRolloutTimeout = 10 * time.Minute
	DefaultPoll           = 2 * time.Second
	DefaultFetchTimeout   = 2 * time.Minute
)

var refusef = actions.Refusef

// Action is the redeploy action.
type Action struct {
	cfg *runbook.Config
	dyn dynamic.Interface
	// Timeout bounds the wait for each rollout (DefaultRolloutTimeout when 0).
	Timeout time.Duration
	// Poll is how often rollouts are read (DefaultPoll when 0).
	Poll time.Duration
	// FetchTimeout bounds fetching the repository (DefaultFetchTimeout when 0).
	FetchTimeout time.Duration
	// History, when set, reads earlier requests: the plan names the commit
	// of the last successful redeploy, which a failure suggests as the way
	// back (/dr redeploy <service> --ref <commit>).
	History History
}

// History reads earlier requests (the bot's store implements it).
type History interface {
	// RequestsOfKind returns up to limit requests of kind for service, newest first.
	RequestsOfKind(ctx context.Context, service, kind string, limit int) ([]store.ActionRequest, error)
}

// historyDepth is how many recent redeploy requests the plan looks through
// for the last successful one.
const historyDepth = 50

var _ actions.Action = (*Action)(nil)

// New returns the redeploy action over cfg's services, applying through dyn
// (a dynamic client of the cluster, or client-go's fake in tests).
func New(cfg *runbook.Config, dyn dynamic.Interface) *Action {
	return &Action{cfg: cfg, dyn: dyn}
}

// Kind implements actions.Action.
func (*Action) Kind() string { return KindRedeploy }

// Object is one rendered object, pinned in the plan.
type Object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Resource   string `json:"resource"` // from AllowedKinds
	// Manifest is the object exactly as it is applied (JSON).
	Manifest json.RawMessage `json:"manifest"`
}

// ID is Kind/name, the object's name in steps and on the card.
func (o Object) ID() string { return o.Kind + "/" + o.Name }

func (o Object) gvr() schema.GroupVersionResource {
	gv, _ := schema.ParseGroupVersion(o.APIVersion)
	return gv.WithResource(o.Resource)
}

func (o Object) workload() bool {
	gv, _ := schema.ParseGroupVersion(o.APIVersion)
	return gv.Group == "apps" && (o.Kind == "Deployment" || o.Kind == "StatefulSet")
}

// Spec is redeploy's pinned execution input.
type Spec struct {
	Repo     string `json:"repo"`
	Ref      string `json:"ref"`                 // as configured (main)
	FullRef  string `json:"full_ref"`            // what it resolved to (refs/heads/main), or the SHA itself
	RefHash  string `json:"ref_hash"`            // what the remote advertised for FullRef (a commit, or an annotated tag object)
	TokenEnv string `json:"token_env,omitempty"` // to check the ref again before applying
	Path     string `json:"path"`
	// Commit is the full SHA the objects were built from.
	Commit    string `json:"commit"`
	Namespace string `json:"namespace"`
	// Selector is kubernetes.selector: the service's pods, checked by Verify.
	Selector string   `json:"selector,omitempty"`
	Objects  []Object `json:"objects"`
	// Digest is the sha256 of the objects' manifests in order.
	Digest string `json:"digest"`
	// ConfigRef is kubernetes.source.ref when --ref overrode it ("" otherwise).
	ConfigRef string `json:"config_ref,omitempty"`
	// Previous is the commit of the last successful redeploy of another
	// commit (request PreviousRequest): the way back a failure suggests.
	Previous        string `json:"previous,omitempty"`
	PreviousRequest int64  `json:"previous_request,omitempty"`
}

func (s Spec) source() runbook.GitSource {
	return runbook.GitSource{Repo: s.Repo, Ref: s.Ref, Path: s.Path, TokenEnv: s.TokenEnv}
}

func digest(objs []Object) string {
	h := sha256.New()
	for _, o := range objs {
		h.Write(o.Manifest)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Change says what applying an object would do.
type Change struct {
	Object Object
	Action string // create, change or unchanged
	Field  string // change: the first differing field
}

func (a *Action) timeout() time.Duration {
	if a.Timeout > 0 {
		return a.Timeout
	}
	return DefaultRolloutTimeout
}

func (a *Action) poll() time.Duration {
	if a.Poll > 0 {
		return a.Poll
	}
	return DefaultPoll
}

func (a *Action) fetchTimeout() time.Duration {
	if a.FetchTimeout > 0 {
		return a.FetchTimeout
	}
	return DefaultFetchTimeout
}

// Plan implements actions.Action: fetch the ref, build the kustomization,
// check every object against the allow-list and the namespace, and compare
// each with the cluster. It changes nothing.
func (a *Action) Plan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	svc, err := p.ServiceIn(a.cfg)
	if err != nil {
		return actions.Plan{}, err
	}
	if svc.Kubernetes == nil || svc.Kubernetes.Source == nil {
		return actions.Plan{}, refusef("service %s has no kubernetes.source (repo, ref, path) to redeploy from", svc.Name)
	}
	if a.dyn == nil {
		return actions.Plan{}, refusef("no Kubernetes access is configured for this bot")
	}
	src := *svc.Kubernetes.Source
	if src.Ref == "" {
		src.Ref = "main"
	}
	configRef := ""
	if r := flagRef.String(p); r != "" {
		if err := validRef(r); err != nil {
			return actions.Plan{}, err
		}
		if r != src.Ref {
			configRef, src.Ref = src.Ref, r
		}
	}
	ns := svc.Namespace()
	fctx, cancel := context.WithTimeout(ctx, a.fetchTimeout())
	co, err := fetch(fctx, src)
	cancel()
	if err != nil {
		return actions.Plan{}, err
	}
	raw, err := render(co.Files, src.Path)
	if err != nil {
		return actions.Plan{}, err
	}
	objs, err := pin(raw, ns)
	if err != nil {
		return actions.Plan{}, err
	}
	changes, err := a.compare(ctx, ns, objs)
	if err != nil {
		return actions.Plan{}, err
	}
	spec := Spec{Repo: src.Repo, Ref: src.Ref, FullRef: co.Ref, RefHash: co.RefHash, TokenEnv: src.TokenEnv, Path: src.Path, Commit: co.Commit,
		Namespace: ns, Objects: objs, Digest: digest(objs)}
	spec.Selector = svc.Kubernetes.Selector
	spec.ConfigRef = configRef
	spec.Previous, spec.PreviousRequest = a.previous(ctx, svc.Name, co.Commit)
	rawSpec, err := json.Marshal(spec)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("encode plan: %w", err)
	}
	return a.plan(svc.Name, spec, changes, rawSpec), nil
}

func (a *Action) plan(service string, s Spec, changes []Change, raw json.RawMessage) actions.Plan {
	count := map[string][]string{}
	for _, c := range changes {
		txt := c.Object.ID()
		if c.Action == "change" && c.Field != "" {
			txt += " (" + firstLine(c.Field) + ")"
		}
		count[c.Action] = append(count[c.Action], txt)
	}
	pl := actions.Plan{
		Kind:    KindRedeploy,
		Service: service,
		Target:  "k8s:" + s.Namespace + "/redeploy",
		Summary: fmt.Sprintf("Redeploy %s from %s@%s into %s: %d to create, %d to change, %d unchanged", service, s.Ref, short(s.Commit), s.Namespace,
			len(count["create"]), len(count["change"]), len(count["unchanged"])),
		Facts: []actions.Fact{
			{Label: "Repository", Value: redactURL(s.Repo)},
			{Label: "Ref", Value: refFact(s)},
			{Label: "Commit", Value: s.Commit},
			{Label: "Path", Value: s.Path},
			{Label: "Namespace", Value: s.Namespace},
		},
		Spec: raw,
	}
	for _, act := range []string{"create", "change", "unchanged"} {
		if len(count[act]) > 0 {
			pl.Facts = append(pl.Facts, actions.Fact{Label: strings.ToUpper(act[:1]) + act[1:], Value: strings.Join(count[act], ", ")})
		}
	}
	pl.Facts = append(pl.Facts, actions.Fact{Label: "Objects digest", Value: s.Digest[:16]})
	if s.Previous != "" {
		pl.Facts = append(pl.Facts, actions.Fact{Label: "Last successful redeploy", Value: fmt.Sprintf("%s (request #%d): the way back if this one fails", s.Previous, s.PreviousRequest)})
	}
	if s.FullRef != s.Commit {
		pl.Steps = append(pl.Steps, actions.Step{Name: StepCheckRef, Description: fmt.Sprintf("check that %s still points at %s (a newer commit needs a new approval)", s.Ref, short(s.Commit))})
	}
	for _, c := range changes {
		pl.Steps = append(pl.Steps, actions.Step{Name: "apply " + c.Object.ID(), Description: fmt.Sprintf("server-side apply %s (%s, field manager %s)", c.Object.ID(), c.Action, FieldManager)})
	}
	for _, o := range s.Objects {
		if o.workload() {
			pl.Steps = append(pl.Steps, actions.Step{Name: "rollout " + o.ID(), Description: fmt.Sprintf("wait for %s to roll out (up to %s)", o.ID(), a.timeout())})
		}
	}
	if len(count["create"]) == 0 && len(count["change"]) == 0 {
		pl.Warnings = append(pl.Warnings, "every object is already as in this commit: applying changes nothing")
	}
	return pl
}

// pin checks the rendered objects and encodes them: each must be of an
// allowed kind, named, and in ns (an object without a namespace is put in
// ns, as kubectl apply -n does).
func pin(raw []map[string]any, ns string) ([]Object, error) {
	var out []Object
	var bad []string
	seen := map[string]bool{}
	for _, m := range raw {
		u := unstructured.Unstructured{Object: m}
		gvk := u.GroupVersionKind()
		id := gvk.Kind + "/" + u.GetName()
		k, ok := allowed(gvk)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s (%s is not a kind redeploy applies)", id, gvk.GroupKind()))
			continue
		}
		if u.GetName() == "" {
			bad = append(bad, gvk.Kind+" without a name")
			continue
		}
		if errs := validation.IsDNS1123Subdomain(u.GetName()); len(errs) > 0 {
			bad = append(bad, fmt.Sprintf("a %s whose name is not a valid Kubernetes name", gvk.Kind))
			continue
		}
		switch u.GetNamespace() {
		case "":
			u.SetNamespace(ns)
		case ns:
		default:
			bad = append(bad, fmt.Sprintf("%s (namespace %s, not the service's %s)", id, u.GetNamespace(), ns))
			continue
		}
		if seen[id] {
			bad = append(bad, id+" (twice)")
			continue
		}
		seen[id] = true
		delete(u.Object, "status")
		b, err := json.Marshal(u.Object) // map keys sorted: a stable encoding
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", id, err)
		}
		out = append(out, Object{APIVersion: u.GetAPIVersion(), Kind: gvk.Kind, Name: u.GetName(), Resource: k.Resource, Manifest: b})
	}
	if len(bad) > 0 {
		return nil, refusef("the kustomization renders objects redeploy will not apply: %s. It applies only these kinds, in the service's namespace: %s",
			strings.Join(bad, "; "), allowedText())
	}
	return out, nil
}

// compare reads each object from the cluster and says what applying it
// would do.
func (a *Action) compare(ctx context.Context, ns string, objs []Object) ([]Change, error) {
	var out []Change
	for _, o := range objs {
		var want map[string]any
		if err := json.Unmarshal(o.Manifest, &want); err != nil {
			return nil, fmt.Errorf("decode %s: %w", o.ID(), err)
		}
		live, err := a.dyn.Resource(o.gvr()).Namespace(ns).Get(ctx, o.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			out = append(out, Change{Object: o, Action: "create"})
		case err != nil:
			return nil, apiErr(err, "read "+o.ID()+" in "+ns)
		default:
			if f := firstDiff(want, live.Object); f != "" {
				out = append(out, Change{Object: o, Action: "change", Field: f})
			} else {
				out = append(out, Change{Object: o, Action: "unchanged"})
			}
		}
	}
	return out, nil
}

// apiErr makes an API error a refusal when it says something the user can
// act on (no rights, invalid object), else wraps it.
func apiErr(err error, what string) error {
	switch {
	case apierrors.IsForbidden(err):
		return refusef("%s: drbot's Kubernetes role does not allow it (see the Helm chart's rbac)", what)
	case apierrors.IsInvalid(err):
		return refusef("%s: the API server refused the object: %s", what, firstLine(err.Error()))
	}
	return fmt.Errorf("%s: %w", what, err)
}

func decodeSpec(plan actions.Plan) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(plan.Spec, &s); err != nil {
		return s, fmt.Errorf("decode redeploy plan: %w", err)
	}
	if s.Commit == "" || s.Namespace == "" || len(s.Objects) == 0 {
		return s, errors.New("decode redeploy plan: no commit, namespace or objects")
	}
	if digest(s.Objects) != s.Digest {
		return s, errors.New("decode redeploy plan: the objects do not match their digest")
	}
	return s, nil
}

// Execute implements actions.Action: check the ref, then apply each pinned
// object (one journaled step each) and wait for each workload's rollout.
func (a *Action) Execute(ctx context.Context, plan actions.Plan, j actions.Journal) error {
	s, err := decodeSpec(plan)
	if err != nil {
		return err
	}
	if a.dyn == nil {
		return refusef("no Kubernetes access is configured for this bot")
	}
	if s.FullRef != s.Commit {
		if _, err := actions.RunStep(ctx, j, StepCheckRef, func(ctx context.Context, _ bool) (string, error) {
			return a.checkRef(ctx, s, j)
		}); err != nil {
			return err
		}
	}
	// From the first apply on, the cluster may differ from before: every
	// failure says the way back.
	failed := func(err error) error {
		if ctx.Err() != nil {
			return err // interrupted (shutdown): resumed, not failed
		}
		hint := wayBack(plan.Service, s)
		j.Note(ctx, hint)
		return &wayBackError{err: err, hint: hint}
	}
	for i, o := range s.Objects {
		step := "apply " + o.ID()
		if _, err := actions.RunStep(ctx, j, step, func(ctx context.Context, _ bool) (string, error) {
			var u unstructured.Unstructured
			if err := json.Unmarshal(o.Manifest, &u.Object); err != nil {
				return "", fmt.Errorf("decode %s: %w", o.ID(), err)
			}
			got, err := a.dyn.Resource(o.gvr()).Namespace(s.Namespace).Apply(ctx, o.Name, &u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
			if err != nil {
				return "", apiErr(err, "apply "+o.ID()+" in "+s.Namespace)
			}
			j.Progress(ctx, actions.Progress{Step: step, Done: int64(i + 1), Total: int64(len(s.Objects)), Unit: "objects"})
			return got.GetResourceVersion(), nil
		}); err != nil {
			return failed(err)
		}
	}
	for _, o := range s.Objects {
		if !o.workload() {
			continue
		}
		step := "rollout " + o.ID()
		if _, err := actions.RunStep(ctx, j, step, func(ctx context.Context, _ bool) (string, error) {
			return a.waitRollout(ctx, s.Namespace, o, func(st kube.Status) {
				j.Progress(ctx, actions.Progress{Step: step, Done: int64(st.Ready), Total: int64(st.Total), Unit: "replicas"})
			})
		}); err != nil {
			return failed(err)
		}
	}
	return nil
}

// checkRef resolves the ref again: a ref that moved since the plan stops
// the request (the approvers saw another commit); an unreachable remote is
// noted and the approved commit applied (its objects are in the plan).
func (a *Action) checkRef(ctx context.Context, s Spec, j actions.Journal) (string, error) {
	fctx, cancel := context.WithTimeout(ctx, a.fetchTimeout())
	defer cancel()
	now, _, err := resolve(fctx, s.source())
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		msg := "the remote did not answer"
		if u, ok := usererr.As(err); ok {
			msg = u.Msg
		}
		j.Note(ctx, fmt.Sprintf("Could not check %s again (%s); applying the approved commit %s.", s.Ref, msg, short(s.Commit)))
		return s.Commit, nil
	}
	if now != s.RefHash {
		return "", &RefMovedError{Ref: s.Ref, Approved: s.RefHash, Now: now}
	}
	return now, nil
}

// RefMovedError stops a redeploy whose ref points at another commit than
// the approved plan's. It is user-safe.
type RefMovedError struct {
	Ref, Approved, Now string
}

func (e *RefMovedError) Error() string {
	return fmt.Sprintf("%s moved from %s (approved) to %s since the plan: nothing was applied. Request /dr redeploy again for a plan of the new commit and a new approval",
		e.Ref, short(e.Approved), short(e.Now))
}

// As makes the error a user-safe *usererr.Refusal to errors.As.
func (e *RefMovedError) As(target any) bool { return usererr.Into(target, e.Error()) }

// waitRollout polls a Deployment or StatefulSet until its rollout is
// complete, judged as kubectl rollout status does (actions/kube).
func (a *Action) waitRollout(ctx context.Context, ns string, o Object, progress func(kube.Status)) (string, error) {
	deadline := time.NewTimer(a.timeout())
	defer deadline.Stop()
	tick := time.NewTicker(a.poll())
	defer tick.Stop()
	var last kube.Status
	first := true
	for {
		st, err := a.rolloutStatus(ctx, ns, o)
		if err != nil {
			return "", err
		}
		if progress != nil && (first || st != last) {
			progress(st)
		}
		first, last = false, st
		if st.Done {
			return st.Message, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for rollout of %s in %s: %w", o.ID(), ns, ctx.Err())
		case <-deadline.C:
			return "", &kube.RolloutFailedError{Namespace: ns, Ref: ref(o), Reason: fmt.Sprintf("it did not finish in %s (last: %s)", a.timeout(), st.Message)}
		case <-tick.C:
		}
	}
}

func ref(o Object) runbook.WorkloadRef {
	return runbook.WorkloadRef{Kind: strings.ToLower(o.Kind), Name: o.Name}
}

// rolloutStatus reads a workload once.
func (a *Action) rolloutStatus(ctx context.Context, ns string, o Object) (kube.Status, error) {
	u, err := a.dyn.Resource(o.gvr()).Namespace(ns).Get(ctx, o.Name, metav1.GetOptions{})
	if err != nil {
		return kube.Status{}, apiErr(err, "read "+o.ID()+" in "+ns)
	}
	switch o.Kind {
	case "Deployment":
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
			return kube.Status{}, fmt.Errorf("decode %s: %w", o.ID(), err)
		}
		st, failed := kube.DeploymentStatus(&d)
		if failed {
			return st, &kube.RolloutFailedError{Namespace: ns, Ref: ref(o), Reason: "it exceeded its progress deadline (ProgressDeadlineExceeded)"}
		}
		return st, nil
	default:
		var s appsv1.StatefulSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
			return kube.Status{}, fmt.Errorf("decode %s: %w", o.ID(), err)
		}
		st, err := kube.StatefulSetStatus(&s)
		if err != nil {
			return st, &kube.RolloutFailedError{Namespace: ns, Ref: ref(o), Reason: err.Error()}
		}
		return st, nil
	}
}

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// podsReady counts the ready pods matching selector in ns (pods being
// deleted or finished are not counted).
func (a *Action) podsReady(ctx context.Context, ns, selector string) (ready, total int, err error) {
	if _, err := labels.Parse(selector); err != nil {
		return 0, 0, refusef("selector %q: %s", selector, err.Error())
	}
	l, err := a.dyn.Resource(podsGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return 0, 0, apiErr(err, "list pods "+selector+" in "+ns)
	}
	for _, it := range l.Items {
		var p corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(it.Object, &p); err != nil {
			return 0, 0, fmt.Errorf("decode pod %s: %w", it.GetName(), err)
		}
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		total++
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready, total, nil
}

// Verify implements actions.Action: every object is live as in the
// commit, every workload rolled out with its pods ready, and the service's
// pods (kubernetes.selector) are ready.
func (a *Action) Verify(ctx context.Context, plan actions.Plan) (actions.Report, error) {
	s, err := decodeSpec(plan)
	if err != nil {
		return actions.Report{}, err
	}
	var r actions.Report
	oc := actions.CheckResult{Name: "objects as in " + short(s.Commit), Kind: "objects", Target: s.Namespace, Expected: fmt.Sprintf("%d/%d", len(s.Objects), len(s.Objects))}
	changes, err := a.compare(ctx, s.Namespace, s.Objects)
	if err != nil {
		oc.Error = userError(err)
	} else {
		var off []string
		for _, c := range changes {
			if c.Action != "unchanged" {
				off = append(off, c.Object.ID())
			}
		}
		oc.Observed = fmt.Sprintf("%d/%d", len(s.Objects)-len(off), len(s.Objects))
		if len(off) > 0 {
			oc.Observed += " (differ: " + strings.Join(off, ", ") + ")"
		}
		oc.OK = len(off) == 0
	}
	r.Checks = append(r.Checks, oc)
	for _, o := range s.Objects {
		if !o.workload() {
			continue
		}
		target := s.Namespace + "/" + o.ID()
		rc := actions.CheckResult{Name: o.ID() + " rollout", Kind: "rollout", Target: target, Expected: "complete"}
		st, err := a.rolloutStatus(ctx, s.Namespace, o)
		rc.Observed = st.Message
		if err != nil {
			rc.Error = userError(err)
		} else {
			rc.OK = st.Done
		}
		r.Checks = append(r.Checks, rc)
		var spec struct {
			Spec struct {
				Selector *metav1.LabelSelector `json:"selector"`
			} `json:"spec"`
		}
		_ = json.Unmarshal(o.Manifest, &spec)
		if spec.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(spec.Spec.Selector)
		if err != nil {
			continue
		}
		r.Checks = append(r.Checks, a.podsCheck(ctx, o.ID()+" pods", s.Namespace, sel.String(), st.Total))
	}
	if s.Selector != "" {
		r.Checks = append(r.Checks, a.podsCheck(ctx, "service pods", s.Namespace, s.Selector, -1))
	}
	for i := range r.Checks {
		if !r.Checks[i].OK {
			r.Checks[i].Error = strings.TrimPrefix(strings.TrimRight(r.Checks[i].Error, ". ")+". ", ". ") + wayBack(plan.Service, s)
			break
		}
	}
	return r, nil
}

// podsCheck checks that every pod of selector is ready (and, when want ≥ 0,
// that there are want of them).
func (a *Action) podsCheck(ctx context.Context, name, ns, selector string, want int32) actions.CheckResult {
	c := actions.CheckResult{Name: name, Kind: "pods", Target: ns + "/" + selector, Expected: "all ready"}
	if want >= 0 {
		c.Expected = fmt.Sprintf("%d/%d ready", want, want)
	}
	ready, total, err := a.podsReady(ctx, ns, selector)
	if err != nil {
		c.Error = userError(err)
		return c
	}
	c.Observed = fmt.Sprintf("%d/%d ready", ready, total)
	c.OK = ready == total && total > 0 && (want < 0 || int64(total) == int64(want))
	return c
}

func userError(err error) string {
	if u, ok := usererr.As(err); ok {
		return u.Msg
	}
	return "could not read it from Kubernetes"
}

func refFact(s Spec) string {
	if s.ConfigRef != "" {
		return s.Ref + " (--ref; kubernetes.source.ref is " + s.ConfigRef + ")"
	}
	return s.Ref
}

// validRef refuses a --ref that is not a plain branch, tag or commit name:
// the rules of kubernetes.source.ref, and git's own (check-ref-format).
// A value is never taken as an option, a revision expression or a path.
func validRef(v string) error {
	bad := strings.TrimSpace(v) == "" || len(v) > 200 || strings.HasPrefix(v, "-") || strings.HasPrefix(v, "/") ||
		strings.HasSuffix(v, "/") || strings.HasSuffix(v, ".") || strings.HasSuffix(v, ".lock") ||
		strings.Contains(v, "..") || strings.Contains(v, "//") || strings.Contains(v, "@{") || v == "@" ||
		strings.ContainsAny(v, " \t~^:?*[\\")
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			bad = true
		}
	}
	for _, part := range strings.Split(v, "/") {
		if strings.HasPrefix(part, ".") {
			bad = true
		}
	}
	if bad {
		return refusef("%q is not a git branch, tag or commit (--ref takes a branch, a tag or a full 40-character commit SHA)", v)
	}
	return nil
}

// previous returns the commit of the newest successful redeploy of service
// whose commit is not commit, and its request ("", 0 when none or without
// a history).
func (a *Action) previous(ctx context.Context, service, commit string) (string, int64) {
	if a.History == nil {
		return "", 0
	}
	reqs, err := a.History.RequestsOfKind(ctx, service, KindRedeploy, historyDepth)
	if err != nil {
		return "", 0
	}
	// A playbook that succeeded redeployed too (its redeploy steps).
	pbs, err := a.History.RequestsOfKind(ctx, service, kindPlaybook, historyDepth)
	if err != nil {
		return "", 0
	}
	reqs = append(reqs, pbs...)
	sort.SliceStable(reqs, func(i, k int) bool { return reqs[i].ID > reqs[k].ID })
	for _, r := range reqs {
		if r.State != store.RequestSucceeded {
			continue
		}
		var p actions.Plan
		if json.Unmarshal(r.Plan, &p) != nil {
			continue
		}
		for _, raw := range redeploySpecs(r.Kind, p) {
			var s Spec
			if json.Unmarshal(raw, &s) != nil || !shaRe.MatchString(s.Commit) || s.Commit == commit {
				continue
			}
			return s.Commit, r.ID
		}
	}
	return "", 0
}

// kindPlaybook is the playbook action's kind (actions/playbook.Kind).
const kindPlaybook = "playbook"

// redeploySpecs are the redeploy specs a request's plan ran, the last
// first: its own, or a playbook's redeploy steps (not done in an earlier
// request, not skipped).
func redeploySpecs(kind string, p actions.Plan) []json.RawMessage {
	if kind == KindRedeploy {
		return []json.RawMessage{p.Spec}
	}
	var pb struct {
		Drill bool `json:"drill"`
		Steps []struct {
			Done   bool          `json:"done"`
			Skip   string        `json:"skip"`
			Action string        `json:"action"`
			Plan   *actions.Plan `json:"plan"`
		} `json:"steps"`
	}
	if json.Unmarshal(p.Spec, &pb) != nil || pb.Drill {
		return nil
	}
	var out []json.RawMessage
	for i := len(pb.Steps) - 1; i >= 0; i-- {
		st := pb.Steps[i]
		if st.Action == KindRedeploy && st.Plan != nil && !st.Done && st.Skip == "" {
			out = append(out, st.Plan.Spec)
		}
	}
	return out
}

// wayBack is what a failed redeploy suggests: the commit of the last
// successful redeploy, or any known-good commit.
func wayBack(service string, s Spec) string {
	if s.Previous != "" && s.Previous != s.Commit {
		return fmt.Sprintf("The way back: `/dr redeploy %s --ref %s` redeploys %s, the commit of the last successful redeploy (request #%d).",
			service, s.Previous, short(s.Previous), s.PreviousRequest)
	}
	return fmt.Sprintf("The way back: redeploy a commit you know was good with /dr redeploy %s --ref <commit SHA or tag>.", service)
}

// wayBackError is a failure after objects were applied, with the way back.
type wayBackError struct {
	err  error
	hint string
}

func (e *wayBackError) Error() string { return e.err.Error() + " " + e.hint }
func (e *wayBackError) Unwrap() error { return e.err }

// As makes the error, when its cause is user-safe, a refusal saying both.
func (e *wayBackError) As(target any) bool {
	if u, ok := usererr.As(e.err); ok {
		return usererr.Into(target, strings.TrimRight(u.Msg, ". ")+". "+e.hint)
	}
	return false
}
