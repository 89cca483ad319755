package incident

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of incident events, as metric labels (with duplicate, unchanged,
// stale and ignored).
const (
	outcomeOK     = "ok"
	outcomeFailed = "failed"
)

// metrics are the incident lifecycle's Prometheus collectors.
type metrics struct {
	incidentEvents  *prometheus.CounterVec
	incidentsIgnore prometheus.Counter
	incidentsOpened *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		incidentEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drbot_incident_events_total",
			Help: "Incident events handled, by kind and outcome (ok, duplicate, unchanged, stale, ignored, failed).",
		}, []string{"kind", "outcome"}),
		incidentsIgnore: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "drbot_incidents_ignored_total",
			Help: "Incident events ignored because their PagerDuty service is not in the runbook config.",
		}),
		incidentsOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drbot_incidents_opened_total",
			Help: "Incidents opened, by runbook service.",
		}, []string{"service"}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.incidentEvents, m.incidentsIgnore, m.incidentsOpened} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("register incident metrics: %w", err)
		}
	}
	return nil
}
