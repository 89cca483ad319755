package runbook

import (
	"strings"
	"testing"
	"time"
)

// modelsBlock is the LSTM-PFD models block of examples/runbook-v2.yaml.
const modelsBlock = `services:
  - name: lstm-pfd
    models:
      backups: s3://lstm-pfd-backups/models/
      snapshots: models-*/checkpoints/
      every: 24h
      target: s3://lstm-pfd-models/checkpoints/
      restart: [deployment/lstm-pfd-dashboard]
      verify: [model loaded]
    health:
      - name: dashboard
        http: http://lstm-pfd-dashboard:8050/health
      - name: model loaded
        metric:
          url: http://lstm-pfd-dashboard:8050/metrics
          name: lstm_pfd_model_loaded
          expect: "== 1"
`

func TestModelsSnapshotsEveryVerifyLoad(t *testing.T) {
	cfg, err := Parse("drbot.yaml", []byte(modelsBlock))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Services[0].Models
	if m.Snapshots == nil || *m.Snapshots != (SnapshotPattern{Before: "models-", Inside: "checkpoints/"}) {
		t.Fatalf("snapshots = %+v", m.Snapshots)
	}
	if m.Snapshots.String() != "models-*/checkpoints/" {
		t.Errorf("String() = %q", m.Snapshots.String())
	}
	if m.Every.Duration != 24*time.Hour {
		t.Errorf("every = %v", m.Every)
	}
	if len(m.Verify) != 1 || m.Verify[0] != "model loaded" {
		t.Errorf("verify = %q", m.Verify)
	}
	if star, ok := m.Snapshots.Match("models-20260115-020000"); !ok || star != "20260115-020000" {
		t.Errorf("Match = %q, %v", star, ok)
	}
	for _, f := range []string{"other-20260115", "models-", "models-x/y"} {
		if _, ok := m.Snapshots.Match(f); ok {
			t.Errorf("Match(%q) matched", f)
		}
	}

	// Without snapshots the location is a mirror (inflow's case).
	mirror := strings.Replace(modelsBlock, "      snapshots: models-*/checkpoints/\n", "", 1)
	cfg, err = Parse("drbot.yaml", []byte(mirror))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Services[0].Models.Snapshots != nil {
		t.Fatal("no snapshots key, yet a snapshot pattern")
	}
}

func TestModelsSnapshotsValidation(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"snapshots: models-*/checkpoints/", "snapshots: models/checkpoints/",
			`drbot.yaml:5: services[0].models.snapshots: "models/checkpoints/" must hold exactly one *`},
		{"snapshots: models-*/checkpoints/", "snapshots: models-*/*/",
			`drbot.yaml:5: services[0].models.snapshots: "models-*/*/" must hold exactly one *`},
		{"snapshots: models-*/checkpoints/", "snapshots: models-*/checkpoints",
			`drbot.yaml:5: services[0].models.snapshots: "models-*/checkpoints" must end with /`},
		{"snapshots: models-*/checkpoints/", "snapshots: models-*",
			`drbot.yaml:5: services[0].models.snapshots: "models-*" must end with /`},
		{"snapshots: models-*/checkpoints/", "snapshots: models-*/../checkpoints/",
			`drbot.yaml:5: services[0].models.snapshots: "models-*/../checkpoints/": . and .. are not allowed`},
		{"snapshots: models-*/checkpoints/", "snapshots: /models-*/",
			`drbot.yaml:5: services[0].models.snapshots: "/models-*/" must be relative to the backups location`},
		{"snapshots: models-*/checkpoints/", "snapshots: models-*//checkpoints/",
			`drbot.yaml:5: services[0].models.snapshots: "models-*//checkpoints/" has an empty path segment (//)`},
		{"every: 24h", "every: daily",
			`drbot.yaml:6: services[0].models.every: "daily" is not a duration (want e.g. 15m)`},
		{"verify: [model loaded]", "verify: [model loadded]",
			`drbot.yaml:9: services[0].models.verify[0]: "model loadded" is not a health check of this service (its health: names are "dashboard", "model loaded")`},
		{"verify: [model loaded]", "verify: model loaded",
			`drbot.yaml:9: services[0].models.verify: want a list, got the single value "model loaded"`},
		{"verify: [model loaded]", "verfy: [model loaded]",
			`drbot.yaml:9: services[0].models.verfy: unknown key "verfy" (did you mean "verify"?)`},
	} {
		t.Run(tc.to, func(t *testing.T) {
			_, err := Parse("drbot.yaml", []byte(strings.Replace(modelsBlock, tc.from, tc.to, 1)))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Count(err.Error(), "\n") != 0 {
				t.Fatalf("error = %v\nwant one problem starting %s", err, tc.want)
			}
		})
	}
	sp, err := ParseSnapshotPattern("nightly/run-*.d/")
	if err != nil || sp != (SnapshotPattern{Dir: "nightly/", Before: "run-", After: ".d"}) || sp.ListPrefix() != "nightly/run-" || sp.Path("run-1.d") != "nightly/run-1.d/" {
		t.Fatalf("nightly/run-*.d/ = %+v, %v", sp, err)
	}
}
