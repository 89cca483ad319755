package bot

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the bot core's Prometheus collectors.
type metrics struct {
	commands *prometheus.CounterVec
	clicks   *prometheus.CounterVec
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
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.commands, m.clicks} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("register bot metrics: %w", err)
		}
	}
	return nil
}
