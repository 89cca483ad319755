package runbook

import (
	"reflect"
	"strings"
	"testing"
)

// TestHealthRequestKeys: method, body and expect_status shape an http
// check (runbook 001 §3 step 5: smoke POST /predict), and databases[].wait_for
// names the pods that must be Ready before a restore (§3 step 4).
func TestHealthRequestKeys(t *testing.T) {
	cfg, err := Parse("drbot.yaml", []byte(`services:
  - name: lstm-pfd
    kubernetes: {namespace: ml, selector: app=lstm-pfd}
    databases:
      - name: lstm_pfd
        url_env: LSTM_PFD_DATABASE_URL
        wait_for: app=postgresql
    health:
      - name: smoke
        http: http://lstm-pfd:8050/predict
        method: POST
        body: '{"signal": [0.1]}'
        expect_status: 200
      - name: dashboard
        http: http://lstm-pfd:8050/
`))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[0]
	if s.Databases[0].WaitFor != "app=postgresql" {
		t.Errorf("wait_for = %q", s.Databases[0].WaitFor)
	}
	want := HealthCheck{Name: "smoke", HTTP: "http://lstm-pfd:8050/predict", Method: "POST", Body: `{"signal": [0.1]}`, ExpectStatus: 200}
	if !reflect.DeepEqual(s.Health[0], want) {
		t.Errorf("smoke = %+v, want %+v", s.Health[0], want)
	}
	if got := s.Health[1].HTTPMethod(); got != "GET" || s.Health[1].ExpectStatus != 0 {
		t.Errorf("dashboard method %q status %d, want GET and any 2xx", got, s.Health[1].ExpectStatus)
	}
}

func TestHealthRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{
			name: "bad method",
			yaml: "services:\n  - name: a\n    health:\n      - name: h\n        http: http://a/\n        method: post\n",
			want: []string{`drbot.yaml:6: services[0].health[0].method: "post" is not a supported HTTP method (want GET, HEAD, POST, PUT, PATCH or DELETE, in capitals)`},
		},
		{
			name: "body with GET",
			yaml: "services:\n  - name: a\n    health:\n      - name: h\n        http: http://a/\n        body: x\n",
			want: []string{`drbot.yaml:6: services[0].health[0].body: a body needs a method that sends one (POST, PUT, PATCH or DELETE), not GET`},
		},
		{
			name: "status out of range",
			yaml: "services:\n  - name: a\n    health:\n      - name: h\n        http: http://a/\n        expect_status: 99\n",
			want: []string{`drbot.yaml:6: services[0].health[0].expect_status: 99 is not an HTTP status (want 100–599, e.g. 200)`},
		},
		{
			name: "status not a number",
			yaml: "services:\n  - name: a\n    health:\n      - name: h\n        http: http://a/\n        expect_status: ok\n",
			want: []string{`drbot.yaml:6: services[0].health[0].expect_status: "ok" is not a whole number`},
		},
		{
			name: "method on a metric check",
			yaml: "services:\n  - name: a\n    health:\n      - name: h\n        method: POST\n        metric: {url: http://a/metrics, name: up, expect: '== 1'}\n",
			want: []string{`drbot.yaml:5: services[0].health[0].method: only applies to an http check (this check has no http URL)`},
		},
		{
			name: "empty wait_for",
			yaml: "services:\n  - name: a\n    databases:\n      - name: db\n        url_env: DB_URL\n        wait_for: ' '\n",
			want: []string{`drbot.yaml:6: services[0].databases[0].wait_for: must not be empty (a label selector such as app=lstm-pfd)`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("drbot.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Split(strings.TrimSpace(err.Error()), "\n")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
