package runbook

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		str  string
	}{
		{"90s", 90 * time.Second, "1m30s"},
		{"15m", 15 * time.Minute, "15m"},
		{"1h", time.Hour, "1h"},
		{"2160h", 2160 * time.Hour, "2160h"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"1h0m5s", time.Hour + 5*time.Second, "1h0m5s"},
		{"500ms", 500 * time.Millisecond, "500ms"},
	} {
		d, err := ParseDuration(tc.in)
		if err != nil || d.Duration != tc.want || d.String() != tc.str {
			t.Errorf("ParseDuration(%q) = %v (%s), %v; want %v (%s)", tc.in, d.Duration, d, err, tc.want, tc.str)
		}
	}
	for _, bad := range []string{"15", "", "daily", "1 hour", "1d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
	b, err := json.Marshal(struct{ D Duration }{dur("15m")})
	if err != nil || string(b) != `{"D":"15m"}` {
		t.Errorf("json = %s, %v", b, err)
	}
	var back struct{ D Duration }
	if err := json.Unmarshal(b, &back); err != nil || back.D.Duration != 15*time.Minute {
		t.Errorf("json round trip = %v, %v", back.D, err)
	}
}

func TestLocation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Location
		str  string
	}{
		{"s3://lstm-pfd-backups/db/", Location{Scheme: SchemeS3, Bucket: "lstm-pfd-backups", Prefix: "db/"}, ""},
		{"s3://inflow-models-backup/", Location{Scheme: SchemeS3, Bucket: "inflow-models-backup"}, ""},
		{"s3://inflow-models", Location{Scheme: SchemeS3, Bucket: "inflow-models"}, "s3://inflow-models/"},
		{"s3://b.example.com/a/b/c", Location{Scheme: SchemeS3, Bucket: "b.example.com", Prefix: "a/b/c"}, ""},
		{"file:///var/backups/db/", Location{Scheme: SchemeFile, Path: "/var/backups/db/"}, ""},
		{"file:///tmp/with%20space/", Location{Scheme: SchemeFile, Path: "/tmp/with space/"}, ""},
	} {
		l, err := ParseLocation(tc.in)
		if err != nil || l != tc.want {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", tc.in, l, err, tc.want)
			continue
		}
		str := tc.str
		if str == "" {
			str = tc.in
		}
		if l.String() != str {
			t.Errorf("%q.String() = %q, want %q", tc.in, l.String(), str)
		}
		if again, err := ParseLocation(l.String()); err != nil || again != l {
			t.Errorf("round trip of %q = %+v, %v", tc.in, again, err)
		}
	}
	for _, bad := range []string{"", "s3://", "s3:///db/", "S3://UPPER/x", "s3://b//x", "s3://ab/", "gs://b/x", "file://host/x", "file:relative", "/abs/path", "bucket/prefix"} {
		if l, err := ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q) accepted: %+v", bad, l)
		}
	}
	if !(Location{}).IsZero() || (Location{Scheme: SchemeS3, Bucket: "b"}).IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestExpect(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Expect
		str     string
		yes, no []float64
	}{
		{"> 0", Expect{">", 0}, "> 0", []float64{1, 0.5}, []float64{0, -1}},
		{"== 1", Expect{"==", 1}, "== 1", []float64{1}, []float64{0, 2}},
		{">= 10", Expect{">=", 10}, ">= 10", []float64{10, 11}, []float64{9.99}},
		{"< 5", Expect{"<", 5}, "< 5", []float64{4, -3}, []float64{5}},
		{"<= 5", Expect{"<=", 5}, "<= 5", []float64{5}, []float64{6}},
		{"!= 0", Expect{"!=", 0}, "!= 0", []float64{2}, []float64{0}},
		{"  >=0.25 ", Expect{">=", 0.25}, ">= 0.25", []float64{0.25}, []float64{0.2}},
		{"== -1e3", Expect{"==", -1000}, "== -1000", []float64{-1000}, []float64{1000}},
	} {
		e, err := ParseExpect(tc.in)
		if err != nil || e != tc.want || e.String() != tc.str {
			t.Errorf("ParseExpect(%q) = %+v (%s), %v; want %+v (%s)", tc.in, e, e, err, tc.want, tc.str)
			continue
		}
		for _, v := range tc.yes {
			if !e.Check(v) {
				t.Errorf("%s: Check(%v) = false", tc.in, v)
			}
		}
		for _, v := range tc.no {
			if e.Check(v) {
				t.Errorf("%s: Check(%v) = true", tc.in, v)
			}
		}
	}
	for _, bad := range []string{"", "0", "> ", "=> 0", "= 1", "> NaN", "> Inf", "> 1 2", "~ 3", "> 0x"} {
		if e, err := ParseExpect(bad); err == nil {
			t.Errorf("ParseExpect(%q) accepted: %+v", bad, e)
		}
	}
	if (Expect{Op: "?", Value: 1}).Check(1) {
		t.Error("unknown operator matched")
	}
}

func TestWorkloadRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want WorkloadRef
	}{
		{"deployment/lstm-pfd-dashboard", WorkloadRef{KindDeployment, "lstm-pfd-dashboard"}},
		{"statefulset/postgresql", WorkloadRef{KindStatefulSet, "postgresql"}},
		{"deployment/api.v2", WorkloadRef{KindDeployment, "api.v2"}},
	} {
		w, err := ParseWorkloadRef(tc.in)
		if err != nil || w != tc.want || w.String() != tc.in {
			t.Errorf("ParseWorkloadRef(%q) = %+v, %v", tc.in, w, err)
		}
	}
	for _, bad := range []string{"", "lstm-pfd-dashboard", "pod/x", "Deployment/x", "deployment/", "deployment/X", "deployment/a/b", "daemonset/x"} {
		if w, err := ParseWorkloadRef(bad); err == nil {
			t.Errorf("ParseWorkloadRef(%q) accepted: %+v", bad, w)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"zone_id", "record", "type", "value", "ttl"}
	for in, want := range map[string]string{
		"recod":  "record",
		"Record": "record",
		"zoneid": "zone_id",
		"tll":    "ttl",
		"colour": "",
		"x":      "",
	} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
