package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/runbook"
)

// Action kinds.
const (
	KindRolloutRestart = "rollout-restart"
	KindScale          = "scale"
)

// Step names.
const (
	StepRestart = "restart"
	StepScale   = "scale"
	StepWait    = "wait-rollout"
)

// DefaultRolloutTimeout bounds the wait for a rollout.
const DefaultRolloutTimeout = 10 * time.Minute

// Argument names the actions read from actions.Params.Args (the command
// parser's positional names). "workload" is accepted as a synonym of
// "deployment", and "n" of "replicas".
const (
	ArgDeployment = "deployment"
	ArgReplicas   = "replicas"
)

// WorkloadSpec is the pinned execution input of rollout-restart and scale.
type WorkloadSpec struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"` // deployment or statefulset
	Name      string `json:"name"`
	Replicas  int32  `json:"replicas"`     // replicas when planned
	To        *int32 `json:"to,omitempty"` // scale only: the new count
}

// Ref returns the workload reference.
func (s WorkloadSpec) Ref() runbook.WorkloadRef {
	return runbook.WorkloadRef{Kind: s.Kind, Name: s.Name}
}

// Target returns the plan target of a workload.
func Target(namespace string, ref runbook.WorkloadRef) string {
	return "k8s:" + namespace + "/" + ref.Kind + "/" + ref.Name
}

// RolloutAction is the "rollout-restart" action.
type RolloutAction struct {
	cfg  *runbook.Config
	kube *Client
	// Timeout bounds the wait for the rollout (DefaultRolloutTimeout when 0).
	Timeout time.Duration
}

// NewRolloutRestart returns the rollout-restart action over cfg's services.
func NewRolloutRestart(cfg *runbook.Config, c *Client) *RolloutAction {
	return &RolloutAction{cfg: cfg, kube: c, Timeout: DefaultRolloutTimeout}
}

// ScaleAction is the "scale" action.
type ScaleAction struct {
	cfg  *runbook.Config
	kube *Client
	// Timeout bounds the wait for the rollout (DefaultRolloutTimeout when 0).
	Timeout time.Duration
}

// NewScale returns the scale action over cfg's services.
func NewScale(cfg *runbook.Config, c *Client) *ScaleAction {
	return &ScaleAction{cfg: cfg, kube: c, Timeout: DefaultRolloutTimeout}
}

var (
	_ actions.Action = (*RolloutAction)(nil)
	_ actions.Action = (*ScaleAction)(nil)
)

// Kind implements actions.Action.
func (a *RolloutAction) Kind() string { return KindRolloutRestart }

// Kind implements actions.Action.
func (a *ScaleAction) Kind() string { return KindScale }

func arg(p actions.Params, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(p.Args[n]); v != "" {
			return v
		}
	}
	return ""
}

// ParseWorkload reads a workload argument: NAME (a deployment),
// deployment/NAME or statefulset/NAME.
func ParseWorkload(s string) (runbook.WorkloadRef, error) {
	if s == "" {
		return runbook.WorkloadRef{}, actions.Refusef("name a deployment, e.g. web or deployment/web")
	}
	if !strings.Contains(s, "/") {
		s = runbook.KindDeployment + "/" + s
	}
	ref, err := runbook.ParseWorkloadRef(s)
	if err != nil {
		return ref, actions.Refusef("%s", err.Error())
	}
	return ref, nil
}

// plan resolves the service and the workload and reads it.
func plan(ctx context.Context, cfg *runbook.Config, c *Client, p actions.Params) (*runbook.Service, Workload, error) {
	svc, err := p.ServiceIn(cfg)
	if err != nil {
		return nil, Workload{}, err
	}
	if c == nil {
		return nil, Workload{}, actions.Refusef("no Kubernetes access is configured for this bot")
	}
	ref, err := ParseWorkload(arg(p, argDeployment.Name, "workload"))
	if err != nil {
		return nil, Workload{}, err
	}
	w, err := c.Get(ctx, svc.Namespace(), ref)
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return nil, Workload{}, actions.Refusef("%s", nf.Error())
		}
		return nil, Workload{}, err
	}
	return svc, w, nil
}

func decodeSpec(plan actions.Plan) (WorkloadSpec, error) {
	var s WorkloadSpec
	if err := json.Unmarshal(plan.Spec, &s); err != nil {
		return s, fmt.Errorf("decode %s plan: %w", plan.Kind, err)
	}
	if s.Namespace == "" || s.Name == "" || s.Kind == "" {
		return s, fmt.Errorf("decode %s plan: no workload", plan.Kind)
	}
	return s, nil
}

// Plan implements actions.Action: it pins the namespace, the workload and
// its current replicas.
func (a *RolloutAction) Plan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	svc, w, err := plan(ctx, a.cfg, a.kube, p)
	if err != nil {
		return actions.Plan{}, err
	}
	spec := WorkloadSpec{Namespace: w.Namespace, Kind: w.Ref.Kind, Name: w.Ref.Name, Replicas: w.Replicas}
	raw, err := json.Marshal(spec)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("encode plan: %w", err)
	}
	pl := actions.Plan{
		Kind:    KindRolloutRestart,
		Service: svc.Name,
		Target:  Target(w.Namespace, w.Ref),
		Summary: fmt.Sprintf("Restart %s in %s (%d replicas)", w.Ref, w.Namespace, w.Replicas),
		Steps: []actions.Step{
			{Name: StepRestart, Description: fmt.Sprintf("set %s on %s's pod template (kubectl rollout restart)", RestartedAtAnnotation, w.Ref)},
			{Name: StepWait, Description: fmt.Sprintf("wait for the rollout to complete (up to %s)", a.timeout())},
		},
		Facts: []actions.Fact{
			{Label: "Namespace", Value: w.Namespace},
			{Label: "Workload", Value: w.Ref.String()},
			{Label: "Replicas", Value: strconv.Itoa(int(w.Replicas))},
		},
		Spec: raw,
	}
	if w.Replicas == 0 {
		pl.Warnings = append(pl.Warnings, fmt.Sprintf("%s is scaled to 0: a restart starts no pods", w.Ref))
	}
	return pl, nil
}

func (a *RolloutAction) timeout() time.Duration {
	if a.Timeout > 0 {
		return a.Timeout
	}
	return DefaultRolloutTimeout
}

// Execute implements actions.Action: restart, then wait for the rollout with
// progress in replicas ready.
func (a *RolloutAction) Execute(ctx context.Context, plan actions.Plan, j actions.Journal) error {
	s, err := decodeSpec(plan)
	if err != nil {
		return err
	}
	if _, err := actions.RunStep(ctx, j, StepRestart, func(ctx context.Context, resumed bool) (string, error) {
		if resumed {
			j.Note(ctx, fmt.Sprintf("resuming: restarting %s again (a second restart is harmless)", s.Ref()))
		}
		return a.kube.RolloutRestart(ctx, s.Namespace, s.Ref())
	}); err != nil {
		return err
	}
	return WaitStep(ctx, a.kube, j, StepWait, s.Namespace, s.Ref(), a.timeout())
}

// WaitStep runs a wait for ref's rollout as step name, reporting replicas
// ready through j. Other actions (restore-models) use it after a restart.
func WaitStep(ctx context.Context, c *Client, j actions.Journal, name, namespace string, ref runbook.WorkloadRef, timeout time.Duration) error {
	_, err := actions.RunStep(ctx, j, name, func(ctx context.Context, _ bool) (string, error) {
		st, err := c.WaitRollout(ctx, namespace, ref, WaitOptions{
			Timeout: timeout,
			OnProgress: func(ready, total int32, _ string) {
				j.Progress(ctx, actions.Progress{Step: name, Done: int64(ready), Total: int64(total), Unit: "replicas"})
			},
		})
		if err != nil {
			return "", err
		}
		return st.Message, nil
	})
	return err
}

// Verify implements actions.Action: the rollout is complete and the
// workload's pods are ready.
func (a *RolloutAction) Verify(ctx context.Context, plan actions.Plan) (actions.Report, error) {
	s, err := decodeSpec(plan)
	if err != nil {
		return actions.Report{}, err
	}
	return VerifyWorkload(ctx, a.kube, s.Namespace, s.Ref()), nil
}

// VerifyWorkload checks that ref's rollout is complete and its pods are
// ready: two CheckResults, kinds "rollout" and "pods".
func VerifyWorkload(ctx context.Context, c *Client, namespace string, ref runbook.WorkloadRef) actions.Report {
	var r actions.Report
	target := namespace + "/" + ref.String()
	rc := actions.CheckResult{Name: ref.String() + " rollout", Kind: "rollout", Target: target, Expected: "complete"}
	st, err := c.RolloutStatus(ctx, namespace, ref)
	switch {
	case err != nil:
		rc.Observed = st.Message
		rc.Error = userError(err)
	default:
		rc.Observed = st.Message
		rc.OK = st.Done
	}
	r.Checks = append(r.Checks, rc)

	pc := actions.CheckResult{Name: ref.String() + " pods", Kind: "pods", Target: target}
	w, err := c.Get(ctx, namespace, ref)
	if err != nil {
		pc.Error = userError(err)
		r.Checks = append(r.Checks, pc)
		return r
	}
	pc.Expected = fmt.Sprintf("%d/%d ready", w.Replicas, w.Replicas)
	if w.Selector == "" {
		pc.Error = "the workload has no pod selector"
		r.Checks = append(r.Checks, pc)
		return r
	}
	pc.Target = namespace + "/" + w.Selector
	ready, total, err := c.PodsReady(ctx, namespace, w.Selector)
	if err != nil {
		pc.Error = userError(err)
	} else {
		pc.Observed = fmt.Sprintf("%d/%d ready", ready, total)
		pc.OK = ready == total && int64(ready) == int64(w.Replicas)
	}
	r.Checks = append(r.Checks, pc)
	return r
}

// userError returns a user-safe text for err: its refusal's message when it
// is one, else a generic reason (the detail goes to the log).
func userError(err error) string {
	if u, ok := usererr.As(err); ok {
		return u.Msg
	}
	return "could not read the workload from Kubernetes"
}

// Plan implements actions.Action: it pins the namespace, the workload, its
// current replicas and the new count.
func (a *ScaleAction) Plan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	n := arg(p, argReplicas.Name, "n", "count")
	to, err := strconv.ParseInt(n, 10, 32)
	if n == "" || err != nil || to < 0 {
		return actions.Plan{}, actions.Refusef("the replica count must be a whole number ≥ 0, e.g. `/dr scale %s %s 3`", p.Service, arg(p, argDeployment.Name, "workload"))
	}
	svc, w, err := plan(ctx, a.cfg, a.kube, p)
	if err != nil {
		return actions.Plan{}, err
	}
	to32 := int32(to)
	spec := WorkloadSpec{Namespace: w.Namespace, Kind: w.Ref.Kind, Name: w.Ref.Name, Replicas: w.Replicas, To: &to32}
	raw, err := json.Marshal(spec)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("encode plan: %w", err)
	}
	pl := actions.Plan{
		Kind:    KindScale,
		Service: svc.Name,
		Target:  Target(w.Namespace, w.Ref),
		Summary: fmt.Sprintf("Scale %s in %s from %d to %d replicas", w.Ref, w.Namespace, w.Replicas, to32),
		Steps: []actions.Step{
			{Name: StepScale, Description: fmt.Sprintf("set %s's replicas from %d to %d (refused if they changed since this plan)", w.Ref, w.Replicas, to32)},
			{Name: StepWait, Description: fmt.Sprintf("wait for the rollout to complete (up to %s)", a.timeout())},
		},
		Facts: []actions.Fact{
			{Label: "Namespace", Value: w.Namespace},
			{Label: "Workload", Value: w.Ref.String()},
			{Label: "Replicas", Value: fmt.Sprintf("%d → %d", w.Replicas, to32)},
		},
		Spec: raw,
	}
	if to32 == 0 {
		pl.Warnings = append(pl.Warnings, fmt.Sprintf("scaling %s to 0 stops all its pods", w.Ref))
	}
	if to32 == w.Replicas {
		pl.Warnings = append(pl.Warnings, fmt.Sprintf("%s already has %d replicas: nothing changes", w.Ref, to32))
	}
	return pl, nil
}

func (a *ScaleAction) timeout() time.Duration {
	if a.Timeout > 0 {
		return a.Timeout
	}
	return DefaultRolloutTimeout
}

// Execute implements actions.Action: scale (only from the pinned count),
// then wait for the rollout with progress in replicas ready.
func (a *ScaleAction) Execute(ctx context.Context, plan actions.Plan, j actions.Journal) error {
	s, err := decodeSpec(plan)
	if err != nil {
		return err
	}
	if s.To == nil {
		return fmt.Errorf("decode scale plan: no replica count")
	}
	if _, err := actions.RunStep(ctx, j, StepScale, func(ctx context.Context, _ bool) (int32, error) {
		if err := a.kube.ScaleFrom(ctx, s.Namespace, s.Ref(), s.Replicas, *s.To); err != nil {
			return 0, err
		}
		return *s.To, nil
	}); err != nil {
		return err
	}
	return WaitStep(ctx, a.kube, j, StepWait, s.Namespace, s.Ref(), a.timeout())
}

// Verify implements actions.Action: the rollout is complete, the workload
// has the planned replica count and that many ready pods.
func (a *ScaleAction) Verify(ctx context.Context, plan actions.Plan) (actions.Report, error) {
	s, err := decodeSpec(plan)
	if err != nil {
		return actions.Report{}, err
	}
	r := VerifyWorkload(ctx, a.kube, s.Namespace, s.Ref())
	if s.To != nil {
		c := actions.CheckResult{Name: s.Ref().String() + " replicas", Kind: "replicas", Target: s.Namespace + "/" + s.Ref().String(), Expected: strconv.Itoa(int(*s.To))}
		w, err := a.kube.Get(ctx, s.Namespace, s.Ref())
		if err != nil {
			c.Error = userError(err)
		} else {
			c.Observed = strconv.Itoa(int(w.Replicas))
			c.OK = w.Replicas == *s.To
		}
		r.Checks = append(r.Checks, c)
	}
	return r, nil
}
