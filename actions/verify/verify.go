// Package verify runs a service's configured checks and reports what it
// observed: HTTP health (status and latency), Prometheus metric expectations,
// SQL checks against the service's databases, and pod readiness by the
// service's Kubernetes selector. It is the "verify" action and the last step
// of every other action (Service, SQL, HTTP, Metric and Pods are plain
// functions they reuse).
package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/runbook"
)

// Check kinds, as CheckResult.Kind.
const (
	KindHTTP   = "http"
	KindMetric = "metric"
	KindSQL    = "sql"
	KindPods   = "pods"
)

// DefaultTimeout bounds one check.
const DefaultTimeout = 10 * time.Second

// maxBody bounds what is read of a health or metrics answer.
const maxBody = 16 << 20

// Deps is what the checks need.
type Deps struct {
	// HTTP is the client for health and metric checks (a client with
	// DefaultTimeout when nil).
	HTTP *http.Client
	// Kube counts pods for the pod readiness check; nil when the bot has no
	// Kubernetes access (a configured selector is then reported as not run).
	Kube *kube.Client
	// DatabaseURL returns the URL of a database (Database.URL, which reads the
	// env var the config names, when nil).
	DatabaseURL func(runbook.Database) (string, error)
	// Timeout bounds each check (DefaultTimeout when 0).
	Timeout time.Duration
}

func (d Deps) httpClient() *http.Client {
	if d.HTTP != nil {
		return d.HTTP
	}
	return &http.Client{Timeout: d.timeout()}
}

func (d Deps) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return DefaultTimeout
}

// Count returns how many checks Service would run for svc.
func Count(svc runbook.Service) int {
	n := len(svc.Health)
	for _, db := range svc.Databases {
		n += len(db.Checks)
	}
	if svc.Kubernetes != nil && svc.Kubernetes.Selector != "" {
		n++
	}
	return n
}

// Service runs every configured check of svc: its health checks (HTTP and
// metric), its databases' SQL checks, and pod readiness by its selector. A
// check that cannot run is a failed CheckResult with a user-safe Error; the
// error return is reserved for a service with no checks at all.
func Service(ctx context.Context, deps Deps, svc runbook.Service) (actions.Report, error) {
	if Count(svc) == 0 {
		return actions.Report{}, actions.Refusef("service %s has no checks configured (health, database checks or a kubernetes selector)", svc.Name)
	}
	var r actions.Report
	r.Checks = append(r.Checks, Health(ctx, deps, svc.Health...)...)
	for _, db := range svc.Databases {
		if len(db.Checks) == 0 {
			continue
		}
		lookup := deps.DatabaseURL
		if lookup == nil {
			lookup = runbook.Database.URL
		}
		u, err := lookup(db)
		if err != nil {
			// The message names the env var and the config key, never a value.
			for _, c := range db.Checks {
				r.Checks = append(r.Checks, actions.CheckResult{Name: c.Name, Kind: KindSQL, Target: db.Name, Expected: c.Expect.String(), Error: err.Error()})
			}
			continue
		}
		res := SQLWithTimeout(ctx, u, db.Checks, deps.timeout())
		for i := range res {
			res[i].Target = db.Name
		}
		r.Checks = append(r.Checks, res...)
	}
	if svc.Kubernetes != nil && svc.Kubernetes.Selector != "" {
		r.Checks = append(r.Checks, Pods(ctx, deps, svc.Name+" pods", svc.Namespace(), svc.Kubernetes.Selector))
	}
	return r, nil
}

// Health runs health checks (HTTP or metric), in order.
func Health(ctx context.Context, deps Deps, checks ...runbook.HealthCheck) []actions.CheckResult {
	var out []actions.CheckResult
	for _, h := range checks {
		switch {
		case h.HTTP != "":
			out = append(out, HTTPCheck(ctx, deps, h))
		case h.Metric != nil:
			out = append(out, Metric(ctx, deps, h.Name, *h.Metric))
		}
	}
	return out
}

// HTTP checks that rawURL answers a GET with a 2xx status.
func HTTP(ctx context.Context, deps Deps, name, rawURL string) actions.CheckResult {
	return HTTPCheck(ctx, deps, runbook.HealthCheck{Name: name, HTTP: rawURL})
}

// HTTPCheck sends h's request (its method, GET by default, and body) to
// h.HTTP and checks the answer's status: h.ExpectStatus, or any 2xx.
func HTTPCheck(ctx context.Context, deps Deps, h runbook.HealthCheck) actions.CheckResult {
	method := h.HTTPMethod()
	expected := "2xx"
	if h.ExpectStatus != 0 {
		expected = strconv.Itoa(h.ExpectStatus)
	}
	target := redact(h.HTTP)
	if method != http.MethodGet {
		target = method + " " + target
	}
	res := actions.CheckResult{Name: h.Name, Kind: KindHTTP, Target: target, Expected: expected}
	ctx, cancel := context.WithTimeout(ctx, deps.timeout())
	defer cancel()
	var body io.Reader
	if h.Body != "" {
		body = strings.NewReader(h.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.HTTP, body)
	if err != nil {
		res.Error = "not a valid URL"
		return res
	}
	if h.Body != "" {
		ct := "text/plain; charset=utf-8"
		if json.Valid([]byte(h.Body)) {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	began := time.Now()
	resp, err := deps.httpClient().Do(req)
	if err != nil {
		res.Latency = time.Since(began)
		res.Error = requestError(err)
		res.Observed = "no answer"
		return res
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	res.Latency = time.Since(began)
	res.Observed = fmt.Sprintf("%d in %s", resp.StatusCode, roundLatency(res.Latency))
	if h.ExpectStatus != 0 {
		res.OK = resp.StatusCode == h.ExpectStatus
	} else {
		res.OK = resp.StatusCode >= 200 && resp.StatusCode < 300
	}
	return res
}

func roundLatency(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// redact drops credentials and the query string from a URL shown to users.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}

// requestError turns a client error into a user-safe reason (no URL, which
// may carry credentials).
func requestError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return err.Error()
}

// Metric fetches mc.URL in the Prometheus text format, finds the metric
// mc.Name and compares its value with mc.Expect. Several series of the
// metric are summed; NAME_count and NAME_sum read a histogram's or
// summary's count and sum.
func Metric(ctx context.Context, deps Deps, name string, mc runbook.MetricCheck) actions.CheckResult {
	res := actions.CheckResult{Name: name, Kind: KindMetric, Target: redact(mc.URL) + " " + mc.Name, Expected: mc.Expect.String()}
	ctx, cancel := context.WithTimeout(ctx, deps.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mc.URL, nil)
	if err != nil {
		res.Error = "not a valid URL"
		return res
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	began := time.Now()
	resp, err := deps.httpClient().Do(req)
	if err != nil {
		res.Error = requestError(err)
		return res
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		res.Error = fmt.Sprintf("metrics endpoint answered %d", resp.StatusCode)
		return res
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, maxBody))
	res.Latency = time.Since(began)
	if err != nil {
		res.Error = "cannot parse the metrics: " + err.Error()
		return res
	}
	v, n, ok := MetricValue(families, mc.Name)
	if !ok {
		res.Observed = "absent"
		res.Error = fmt.Sprintf("metric %s not found", mc.Name)
		return res
	}
	res.Observed = formatFloat(v)
	if n > 1 {
		res.Observed += fmt.Sprintf(" (sum of %d series)", n)
	}
	res.OK = mc.Expect.Check(v)
	return res
}

// MetricValue returns the value of metric name in families (summed over its
// series) and the number of series; ok is false when it is absent.
func MetricValue(families map[string]*dto.MetricFamily, name string) (v float64, series int, ok bool) {
	if mf, found := families[name]; found {
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v += m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				v += float64(m.GetHistogram().GetSampleCount())
			case dto.MetricType_SUMMARY:
				v += float64(m.GetSummary().GetSampleCount())
			default:
				v += m.GetUntyped().GetValue()
			}
			series++
		}
		return v, series, series > 0
	}
	for _, suffix := range []string{"_count", "_sum"} {
		base, cut := strings.CutSuffix(name, suffix)
		if !cut {
			continue
		}
		mf, found := families[base]
		if !found {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Histogram != nil && suffix == "_count":
				v += float64(m.GetHistogram().GetSampleCount())
			case m.Histogram != nil:
				v += m.GetHistogram().GetSampleSum()
			case m.Summary != nil && suffix == "_count":
				v += float64(m.GetSummary().GetSampleCount())
			case m.Summary != nil:
				v += m.GetSummary().GetSampleSum()
			default:
				continue
			}
			series++
		}
		return v, series, series > 0
	}
	return 0, 0, false
}

func formatFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// SQL runs checks against the database at dbURL, each in its own read-only
// transaction, with DefaultTimeout each. Each query must return a single
// value (one row, one column) that Expect is checked against; NULL, text
// that is not a number, or more rows fail the check. Results never carry the
// URL or the SQL; their Target is empty (callers set the database name).
func SQL(ctx context.Context, dbURL string, checks []runbook.Check) []actions.CheckResult {
	return SQLWithTimeout(ctx, dbURL, checks, DefaultTimeout)
}

// SQLWithTimeout is SQL with a per-check timeout.
func SQLWithTimeout(ctx context.Context, dbURL string, checks []runbook.Check, timeout time.Duration) []actions.CheckResult {
	out := make([]actions.CheckResult, len(checks))
	for i, c := range checks {
		out[i] = actions.CheckResult{Name: c.Name, Kind: KindSQL, Expected: c.Expect.String()}
	}
	if len(checks) == 0 {
		return out
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	conn, err := pgx.Connect(cctx, dbURL)
	cancel()
	if err != nil {
		slog.WarnContext(ctx, "verify: cannot connect to a database", "err", connectError(err))
		for i := range out {
			out[i].Error = "cannot connect to the database"
		}
		return out
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	for i, c := range checks {
		out[i] = SQLOnConn(ctx, conn, c, timeout)
	}
	return out
}

// SQLOnConn runs one check on an open connection (restore-db checks its side
// database this way, on the connection it already holds). Target is left empty.
func SQLOnConn(ctx context.Context, conn *pgx.Conn, c runbook.Check, timeout time.Duration) actions.CheckResult {
	res := actions.CheckResult{Name: c.Name, Kind: KindSQL, Expected: c.Expect.String()}
	began := time.Now()
	v, err := queryValue(ctx, conn, c.SQL, timeout)
	res.Latency = time.Since(began)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Observed = formatFloat(v)
	res.OK = c.Expect.Check(v)
	return res
}

// connectError is the part of a connection error fit for the log: pgconn
// errors name host, user and database but never the password.
func connectError(err error) string {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return ce.Error()
	}
	if strings.Contains(err.Error(), "://") {
		return "invalid database URL"
	}
	return err.Error()
}

// queryValue runs sql in a read-only transaction and returns its single
// value as a number. Errors are user-safe (no SQL, no URL).
func queryValue(ctx context.Context, conn *pgx.Conn, sql string, timeout time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, queryError(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// The server stops the query too, not only this client.
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", timeout.Milliseconds())); err != nil {
		return 0, queryError(err)
	}
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return 0, queryError(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, queryError(err)
		}
		return 0, errors.New("the query returned no rows")
	}
	vals, err := rows.Values()
	if err != nil {
		return 0, queryError(err)
	}
	if len(vals) != 1 {
		return 0, fmt.Errorf("the query returned %d columns, want 1", len(vals))
	}
	if rows.Next() {
		return 0, errors.New("the query returned more than one row")
	}
	if err := rows.Err(); err != nil {
		return 0, queryError(err)
	}
	return toFloat(vals[0])
}

func queryError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Errorf("query failed: %s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("query timed out")
	}
	return errors.New("query failed")
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case nil:
		return 0, errors.New("the query returned NULL")
	case int64:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int16:
		return float64(x), nil
	case int8:
		return float64(x), nil
	case int:
		return float64(x), nil
	case uint32:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case pgtype.Numeric:
		if !x.Valid {
			return 0, errors.New("the query returned NULL")
		}
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return 0, errors.New("the query returned a number out of range")
		}
		return f.Float64, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, errors.New("the query returned text that is not a number")
		}
		return f, nil
	case time.Duration:
		return x.Seconds(), nil
	}
	return 0, fmt.Errorf("the query returned a %T, want a number", v)
}

// Pods checks that every pod matching selector in namespace is ready (and
// that there is at least one).
func Pods(ctx context.Context, deps Deps, name, namespace, selector string) actions.CheckResult {
	res := actions.CheckResult{Name: name, Kind: KindPods, Target: namespace + "/" + selector, Expected: "all ready"}
	if deps.Kube == nil {
		res.Error = "no Kubernetes access is configured for this bot"
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, deps.timeout())
	defer cancel()
	began := time.Now()
	ready, total, err := deps.Kube.PodsReady(ctx, namespace, selector)
	res.Latency = time.Since(began)
	if err != nil {
		slog.WarnContext(ctx, "verify: list pods", "namespace", namespace, "selector", selector, "err", err)
		res.Error = "cannot list pods"
		return res
	}
	res.Observed = fmt.Sprintf("%d/%d ready", ready, total)
	if total == 0 {
		res.Error = "no pods match the selector"
		return res
	}
	res.OK = ready == total
	return res
}
