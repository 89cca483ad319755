package verify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/kube/kubetest"
	"github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func expect(t *testing.T, s string) runbook.Expect {
	t.Helper()
	e, err := runbook.ParseExpect(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const metricsText = `# HELP lstm_pfd_model_loaded Whether the model is loaded.
# TYPE lstm_pfd_model_loaded gauge
lstm_pfd_model_loaded 1
# TYPE http_requests_total counter
http_requests_total{code="200"} 1500
http_requests_total{code="500"} 23
# TYPE request_seconds histogram
request_seconds_bucket{le="0.1"} 7
request_seconds_bucket{le="+Inf"} 9
request_seconds_sum 1.5
request_seconds_count 9
`

func servers(t *testing.T) (health, sick, metrics *httptest.Server) {
	health = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	sick = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down", http.StatusServiceUnavailable)
	}))
	metrics = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(metricsText))
	}))
	t.Cleanup(health.Close)
	t.Cleanup(sick.Close)
	t.Cleanup(metrics.Close)
	return health, sick, metrics
}

func TestHTTPCheck(t *testing.T) {
	health, sick, _ := servers(t)
	ok := verify.HTTP(ctx(t), verify.Deps{}, "api", health.URL+"/health")
	if !ok.OK || !strings.HasPrefix(ok.Observed, "200 in ") || ok.Kind != "http" {
		t.Fatalf("healthy check %+v", ok)
	}
	bad := verify.HTTP(ctx(t), verify.Deps{}, "api", sick.URL)
	if bad.OK || !strings.HasPrefix(bad.Observed, "503 in ") {
		t.Fatalf("unhealthy check %+v", bad)
	}
	// Credentials in the URL are never shown.
	u := strings.Replace(health.URL, "http://", "http://admin:hunter2@", 1) + "/health?token=abc"
	c := verify.HTTP(ctx(t), verify.Deps{}, "api", u)
	if !c.OK || strings.Contains(c.Target, "hunter2") || strings.Contains(c.Target, "token") {
		t.Fatalf("check with credentials %+v", c)
	}
	// Nothing listening.
	sick.Close()
	down := verify.HTTP(ctx(t), verify.Deps{}, "api", sick.URL)
	if down.OK || down.Error == "" || down.Observed != "no answer" {
		t.Fatalf("check of a closed server %+v", down)
	}
}

func TestMetricCheck(t *testing.T) {
	_, _, metrics := servers(t)
	cases := []struct {
		name, metric, expect, observed string
		ok                             bool
	}{
		{"gauge", "lstm_pfd_model_loaded", "== 1", "1", true},
		{"gauge fails", "lstm_pfd_model_loaded", "> 1", "1", false},
		{"counter summed", "http_requests_total", "> 1000", "1523 (sum of 2 series)", true},
		{"histogram count", "request_seconds_count", ">= 9", "9", true},
		{"histogram sum", "request_seconds_sum", "< 2", "1.5", true},
		{"absent", "nope_total", "> 0", "absent", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := verify.Metric(ctx(t), verify.Deps{}, "m", runbook.MetricCheck{URL: metrics.URL + "/metrics", Name: tc.metric, Expect: expect(t, tc.expect)})
			if r.OK != tc.ok || r.Observed != tc.observed || r.Expected != tc.expect {
				t.Fatalf("got %+v; want ok=%v observed %q", r, tc.ok, tc.observed)
			}
		})
	}
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("this is { not metrics\n"))
	}))
	defer garbage.Close()
	r := verify.Metric(ctx(t), verify.Deps{}, "m", runbook.MetricCheck{URL: garbage.URL, Name: "x", Expect: expect(t, "> 0")})
	if r.OK || !strings.Contains(r.Error, "cannot parse") {
		t.Fatalf("garbage metrics: %+v", r)
	}
}

func seedDB(t *testing.T) string {
	t.Helper()
	url := testenv.PostgresURL(t)
	conn, err := pgx.Connect(ctx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx(t))
	_, err = conn.Exec(ctx(t), `CREATE TABLE readings (id serial PRIMARY KEY, v numeric NOT NULL);
		INSERT INTO readings (v) SELECT g * 1.5 FROM generate_series(1, 10) g;`)
	if err != nil {
		t.Fatal(err)
	}
	return url
}

func TestSQLChecks(t *testing.T) {
	url := seedDB(t)
	checks := []runbook.Check{
		{Name: "rows", SQL: "SELECT count(*) FROM readings", Expect: expect(t, "== 10")},
		{Name: "numeric", SQL: "SELECT max(v) FROM readings", Expect: expect(t, "> 14")},
		{Name: "bool", SQL: "SELECT EXISTS (SELECT 1 FROM readings)", Expect: expect(t, "== 1")},
		{Name: "too few", SQL: "SELECT count(*) FROM readings", Expect: expect(t, "> 100")},
		{Name: "missing table", SQL: "SELECT count(*) FROM nope", Expect: expect(t, "> 0")},
		{Name: "many rows", SQL: "SELECT id FROM readings", Expect: expect(t, "> 0")},
		{Name: "null", SQL: "SELECT NULL::int", Expect: expect(t, "> 0")},
		{Name: "no write", SQL: "INSERT INTO readings (v) VALUES (1) RETURNING id", Expect: expect(t, "> 0")},
	}
	res := verify.SQL(ctx(t), url, checks)
	want := []struct {
		ok       bool
		observed string
		err      string
	}{
		{true, "10", ""},
		{true, "15", ""},
		{true, "1", ""},
		{false, "10", ""},
		{false, "", "does not exist"},
		{false, "", "more than one row"},
		{false, "", "NULL"},
		{false, "", "read-only transaction"},
	}
	for i, w := range want {
		r := res[i]
		if r.OK != w.ok || r.Observed != w.observed || !strings.Contains(r.Error, w.err) || r.Kind != "sql" {
			t.Errorf("%s: %+v; want ok=%v observed %q error ~%q", checks[i].Name, r, w.ok, w.observed, w.err)
		}
		if strings.Contains(r.Error, checks[i].SQL) || strings.Contains(r.Error, "FROM") {
			t.Errorf("%s: the error shows SQL: %q", checks[i].Name, r.Error)
		}
	}
	// The read-only check did not write.
	if again := verify.SQL(ctx(t), url, checks[:1]); !again[0].OK {
		t.Fatalf("rows changed: %+v", again[0])
	}
}

func TestSQLUnreachableDatabaseHidesCredentials(t *testing.T) {
	url := "postgres://admin:s3cret@127.0.0.1:1/db?connect_timeout=2"
	res := verify.SQL(ctx(t), url, []runbook.Check{{Name: "rows", SQL: "SELECT 1", Expect: expect(t, "== 1")}})
	if res[0].OK || res[0].Error != "cannot connect to the database" {
		t.Fatalf("%+v", res[0])
	}
	if strings.Contains(fmt.Sprint(res[0]), "s3cret") {
		t.Fatal("the result shows the password")
	}
}

func service(t *testing.T, health, metrics string) runbook.Service {
	return runbook.Service{
		Name: "lstm-pfd",
		Health: []runbook.HealthCheck{
			{Name: "dashboard", HTTP: health},
			{Name: "model loaded", Metric: &runbook.MetricCheck{URL: metrics, Name: "lstm_pfd_model_loaded", Expect: expect(t, "== 1")}},
		},
		Databases: []runbook.Database{{
			Name: "lstm_pfd", URLEnv: "VERIFY_TEST_DB_URL",
			Checks: []runbook.Check{{Name: "readings present", SQL: "SELECT count(*) FROM readings", Expect: expect(t, "> 0")}},
		}},
		Kubernetes: &runbook.Kubernetes{Namespace: "ml", Selector: "app=lstm-pfd"},
	}
}

func TestServiceRunsEveryCheck(t *testing.T) {
	health, _, metrics := servers(t)
	url := seedDB(t)
	t.Setenv("VERIFY_TEST_DB_URL", url)
	cl := kubetest.New(t, 2*time.Millisecond, kubetest.Deployment("ml", "lstm-pfd", 2))
	k := kube.New(cl)
	k.Poll = 2 * time.Millisecond
	if _, err := k.WaitRollout(ctx(t), "ml", runbook.WorkloadRef{Kind: "deployment", Name: "lstm-pfd"}, kube.WaitOptions{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	for { // the simulated controller creates the pods on its first pass
		if r, n, _ := k.PodsReady(ctx(t), "ml", "app=lstm-pfd"); r == 2 && n == 2 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	svc := service(t, health.URL, metrics.URL)
	rep, err := verify.Service(ctx(t), verify.Deps{Kube: k}, svc)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Checks) != 4 || !rep.OK() {
		t.Fatalf("report %+v", rep)
	}
	kinds := []string{}
	for _, c := range rep.Checks {
		kinds = append(kinds, c.Kind)
	}
	if got := strings.Join(kinds, ","); got != "http,metric,sql,pods" {
		t.Fatalf("kinds %s", got)
	}
	if rep.Checks[2].Target != "lstm_pfd" || strings.Contains(rep.Checks[2].Target, "postgres") {
		t.Fatalf("sql target %q", rep.Checks[2].Target)
	}
	if rep.Checks[3].Observed != "2/2 ready" {
		t.Fatalf("pods observed %q", rep.Checks[3].Observed)
	}

	// The action: plan lists the checks, Execute changes nothing, Verify runs them.
	cfg := &runbook.Config{Services: []runbook.Service{svc}}
	a := verify.New(cfg, verify.Deps{Kube: k})
	plan, err := a.Plan(ctx(t), actions.Params{Service: "lstm-pfd"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Facts) != 4 || len(plan.Steps) != 0 || plan.Kind != "verify" {
		t.Fatalf("plan %+v", plan)
	}
	j := actiontest.NewJournal()
	if err := a.Execute(ctx(t), plan, j); err != nil {
		t.Fatal(err)
	}
	if len(j.Events()) != 0 {
		t.Fatalf("verify's Execute recorded steps: %+v", j.Events())
	}
	rep2, err := a.Verify(ctx(t), plan)
	if err != nil || !rep2.OK() {
		t.Fatalf("Verify = %+v, %v", rep2, err)
	}
}

func TestServiceReportsWhatCannotRun(t *testing.T) {
	_, sick, metrics := servers(t)
	svc := service(t, sick.URL, metrics.URL)
	svc.Databases[0].URLEnv = "VERIFY_TEST_UNSET_URL"
	rep, err := verify.Service(ctx(t), verify.Deps{}, svc)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Failed()) != 3 {
		t.Fatalf("report %+v: want http, sql and pods failed", rep)
	}
	if !strings.Contains(rep.Checks[2].Error, "VERIFY_TEST_UNSET_URL is not set") {
		t.Fatalf("sql error %q", rep.Checks[2].Error)
	}
	if !strings.Contains(rep.Checks[3].Error, "no Kubernetes access") {
		t.Fatalf("pods error %q", rep.Checks[3].Error)
	}
}

func TestPlanRefusesServiceWithoutChecks(t *testing.T) {
	cfg := &runbook.Config{Services: []runbook.Service{{Name: "bare"}}}
	a := verify.New(cfg, verify.Deps{})
	for _, name := range []string{"bare", "nope"} {
		_, err := a.Plan(ctx(t), actions.Params{Service: name})
		var r *actions.Refusal
		if !errors.As(err, &r) {
			t.Fatalf("Plan(%s) = %v, want a refusal", name, err)
		}
	}
}
