package verify

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/runbook"
)

// Kind is the action kind.
const Kind = "verify"

// Action is the read-only "verify" action: Plan lists the service's checks,
// Execute changes nothing, Verify runs them.
type Action struct {
	cfg  *runbook.Config
	deps Deps
}

var _ actions.Action = (*Action)(nil)

// New returns the verify action over cfg's services.
func New(cfg *runbook.Config, deps Deps) *Action {
	return &Action{cfg: cfg, deps: deps}
}

// Kind implements actions.Action.
func (a *Action) Kind() string { return Kind }

// Spec is the verify plan's execution input.
type Spec struct {
	Service string `json:"service"`
}

// Plan implements actions.Action: it lists the checks that will run (as
// Facts); it has no steps, since verifying changes nothing.
func (a *Action) Plan(_ context.Context, p actions.Params) (actions.Plan, error) {
	svc, err := p.ServiceIn(a.cfg)
	if err != nil {
		return actions.Plan{}, err
	}
	n := Count(*svc)
	if n == 0 {
		return actions.Plan{}, actions.Refusef("service %s has no checks configured (health, database checks or a kubernetes selector)", svc.Name)
	}
	raw, err := json.Marshal(Spec{Service: svc.Name})
	if err != nil {
		return actions.Plan{}, fmt.Errorf("encode plan: %w", err)
	}
	return actions.Plan{
		Kind:    Kind,
		Service: svc.Name,
		Target:  "verify:" + svc.Name,
		Summary: fmt.Sprintf("Run %d checks of %s (read-only)", n, svc.Name),
		Facts:   Checks(*svc),
		Spec:    raw,
	}, nil
}

// Checks describes the checks Service runs for svc, one Fact each (label:
// kind and name; value: what is checked, never credentials).
func Checks(svc runbook.Service) []actions.Fact {
	var out []actions.Fact
	for _, h := range svc.Health {
		switch {
		case h.HTTP != "":
			want := "2xx"
			if h.ExpectStatus != 0 {
				want = fmt.Sprint(h.ExpectStatus)
			}
			out = append(out, actions.Fact{Label: "http " + h.Name, Value: fmt.Sprintf("%s %s answers %s", h.HTTPMethod(), redact(h.HTTP), want)})
		case h.Metric != nil:
			out = append(out, actions.Fact{Label: "metric " + h.Name, Value: fmt.Sprintf("%s %s at %s", h.Metric.Name, h.Metric.Expect, redact(h.Metric.URL))})
		}
	}
	for _, db := range svc.Databases {
		for _, c := range db.Checks {
			out = append(out, actions.Fact{Label: "sql " + c.Name, Value: fmt.Sprintf("database %s: result %s", db.Name, c.Expect)})
		}
	}
	if svc.Kubernetes != nil && svc.Kubernetes.Selector != "" {
		out = append(out, actions.Fact{Label: "pods " + svc.Name, Value: fmt.Sprintf("every pod %s in %s ready", svc.Kubernetes.Selector, svc.Namespace())})
	}
	return out
}

// Execute implements actions.Action: verifying changes nothing, so there is
// no step to run; Verify does the work.
func (a *Action) Execute(_ context.Context, plan actions.Plan, _ actions.Journal) error {
	_, err := a.service(plan)
	return err
}

// Verify implements actions.Action: it runs every check of the service.
func (a *Action) Verify(ctx context.Context, plan actions.Plan) (actions.Report, error) {
	svc, err := a.service(plan)
	if err != nil {
		return actions.Report{}, err
	}
	return Service(ctx, a.deps, *svc)
}

func (a *Action) service(plan actions.Plan) (*runbook.Service, error) {
	var s Spec
	if err := json.Unmarshal(plan.Spec, &s); err != nil {
		return nil, fmt.Errorf("decode verify plan: %w", err)
	}
	svc, ok := a.cfg.Service(s.Service)
	if !ok {
		return nil, actions.Refusef("service %q is no longer in the runbook", s.Service)
	}
	return svc, nil
}
