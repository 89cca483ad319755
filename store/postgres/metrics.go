package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/drbot-dev/drbot/store"
)

// metricsTimeout bounds the queries of one scrape.
const metricsTimeout = 3 * time.Second

var (
	storeUpDesc = prometheus.NewDesc("drbot_store_up",
		"1 when drbot's store (PostgreSQL) answered this scrape's queries, 0 when it did not.", nil, nil)
	jobsDesc = prometheus.NewDesc("drbot_jobs",
		"Durable jobs (timers, posts, recovery steps) waiting for a retry after an error (state retryable) or given up on (state discarded, kept by River for 7 days), by job kind.",
		[]string{"kind", "state"}, nil)
	auditOKDesc = prometheus.NewDesc("drbot_audit_chain_ok",
		"1 when the newest audit.verify job found the audit chain intact, 0 when it found a broken row.", nil, nil)
	auditAtDesc = prometheus.NewDesc("drbot_audit_chain_verified_timestamp_seconds",
		"When the newest audit.verify job finished (Unix time).", nil, nil)
)

// Collector returns the store's Prometheus collector. Each scrape reads the
// state every replica shares from the database: failing and discarded jobs,
// and the outcome of the newest audit chain verification. When the store
// does not answer, drbot_store_up is 0 and the other series are absent.
func (db *DB) Collector() prometheus.Collector { return storeCollector{db} }

type storeCollector struct{ db *DB }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{storeUpDesc, jobsDesc, auditOKDesc, auditAtDesc} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), metricsTimeout)
	defer cancel()
	if err := c.collect(ctx, ch); err != nil {
		c.db.log.WarnContext(ctx, "metrics: the store did not answer", "err", err)
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 1)
}

func (c storeCollector) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.db.pool.Query(ctx, `SELECT kind, state::text, count(*) FROM river_job
		WHERE state IN ('retryable', 'discarded') GROUP BY kind, state`)
	if err != nil {
		return err
	}
	type jobCount struct {
		kind, state string
		n           int64
	}
	var counts []jobCount
	for rows.Next() {
		var jc jobCount
		if err := rows.Scan(&jc.kind, &jc.state, &jc.n); err != nil {
			rows.Close()
			return err
		}
		counts = append(counts, jc)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	var (
		output     []byte
		finalized  time.Time
		haveAudit  = true
		report     store.ChainReport
		auditKnown bool
	)
	err = c.db.pool.QueryRow(ctx, `SELECT coalesce(metadata->'output', 'null'::jsonb), finalized_at FROM river_job
		WHERE kind = $1 AND state = 'completed' ORDER BY finalized_at DESC LIMIT 1`, AuditVerifyKind).Scan(&output, &finalized)
	switch {
	case err == nil:
	case errors.Is(err, pgx.ErrNoRows):
		haveAudit = false
	default:
		return err
	}
	if haveAudit && json.Unmarshal(output, &report) == nil && string(output) != "null" {
		auditKnown = true
	}

	for _, jc := range counts {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(jc.n), jc.kind, jc.state)
	}
	if auditKnown {
		ok := 0.0
		if report.OK() {
			ok = 1
		}
		ch <- prometheus.MustNewConstMetric(auditOKDesc, prometheus.GaugeValue, ok)
		ch <- prometheus.MustNewConstMetric(auditAtDesc, prometheus.GaugeValue, float64(finalized.Unix()))
	}
	return nil
}
