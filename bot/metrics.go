package bot

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the bot core's Prometheus collectors.
type metrics struct {
	commands        *prometheus.CounterVec
	clicks          *prometheus.CounterVec
	incidentEvents  *prometheus.CounterVec
	incidentsIgnore prometheus.Counter
	incidentsOpened *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drbot_commands_total",
			Help: "/dr commands handled, by command name and outcome (ok, refused, failed).",
		}, []string{"command", "outcome"}),
		clicks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drbot_clicks_total",
			Help: "Button clicks handled, by action id and outcome (ok, refused, failed).",
		}, []string{"action", "outcome"}),
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
	for _, c := range []prometheus.Collector{m.commands, m.clicks, m.incidentEvents, m.incidentsIgnore, m.incidentsOpened} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("register bot metrics: %w", err)
		}
	}
	return nil
}
