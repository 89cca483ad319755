package freshness

import (
	"testing"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// Checks run every min(every/4, 5m) over the checked locations.
func TestInterval(t *testing.T) {
	cfg := func(dbEvery, modelsEvery string) *runbook.Config {
		t.Helper()
		c, err := runbook.Parse("f.yaml", []byte(`
services:
  - name: svc
    pagerduty:
      service_ids: [PSVC]
    databases:
      - name: db
        url_env: DB_URL
        backups:
          location: file:///backups/db/
          every: `+dbEvery+`
    models:
      backups: file:///backups/models/
      every: `+modelsEvery+`
      target: file:///models/
`))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		db, models string
		want       time.Duration
	}{
		{"24h", "24h", 5 * time.Minute},
		{"24h", "8m", 2 * time.Minute},
		{"12m", "24h", 3 * time.Minute},
	} {
		c := cfg(tc.db, tc.models)
		if got := Interval(c); got != tc.want {
			t.Errorf("Interval(db every %s, models every %s) = %s, want %s", tc.db, tc.models, got, tc.want)
		}
		if n := len(Locations(c)); n != 2 {
			t.Errorf("Locations = %d, want 2", n)
		}
	}
	if got := Interval(&runbook.Config{}); got != MaxInterval {
		t.Errorf("Interval(nothing checked) = %s, want %s", got, MaxInterval)
	}
	if got := StaleAfter(24 * time.Hour); got != 24*time.Hour+144*time.Minute {
		t.Errorf("StaleAfter(24h) = %s", got)
	}
}

// Only objects inside a snapshot folder's inside path date a snapshot.
func TestInSnapshot(t *testing.T) {
	sp, err := runbook.ParseSnapshotPattern("models-*/checkpoints/")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"models-20261201-020000/checkpoints/lstm.pt": true,
		"models-20261201-020000/logs/run.log":        false,
		"README.txt":                                 false,
		"other-20261201/checkpoints/lstm.pt":         false,
	} {
		if got := inSnapshot(sp, name); got != want {
			t.Errorf("inSnapshot(%q) = %v, want %v", name, got, want)
		}
	}
}
