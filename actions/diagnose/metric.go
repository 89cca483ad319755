package diagnose

import (
	"context"
	"strings"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/runbook"
)

// metric reads one of the service's metric health checks (curl …/metrics |
// grep lstm_pfd_model_loaded) and compares it with its expectation; a
// failure carries "Model Won't Load".
func metric(ctx context.Context, deps Deps, svc runbook.Service, h runbook.HealthCheck) actions.Finding {
	r := verify.Metric(ctx, verify.Deps{HTTP: deps.httpClient(), Timeout: deps.checkTimeout()}, h.Name, *h.Metric)
	f := actions.Finding{Area: "model", Name: "metric " + h.Name, Latency: r.Latency}
	f.Detail = h.Metric.Name + " = " + orDash(r.Observed) + ", expected " + r.Expected
	if r.Error != "" {
		f.Detail += " (" + r.Error + ")"
	}
	if r.OK {
		f.Status = actions.StatusOK
		return f
	}
	f.Status = actions.StatusFail
	f.Remedy = modelWontLoad(svc, strings.TrimSuffix(r.Target, " "+h.Metric.Name)) // the URL without credentials
	return f
}
