package runbook

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func dur(s string) Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return Duration{d}
}

// referenceConfig is what runbook-v2.yaml (and deploy/examples/drbot.yaml,
// its byte-identical copy) must decode to.
func referenceConfig() *Config {
	snapshots, err := ParseSnapshotPattern("models-*/checkpoints/")
	if err != nil {
		panic(err)
	}
	dashboard := WorkloadRef{Kind: KindDeployment, Name: "lstm-pfd-dashboard"}
	return &Config{
		Slack: Slack{
			ChannelPrefix:   "incident",
			AnnounceChannel: "C0INCIDENTS",
			Approvers:       []string{"U0PLATFORM1", "U0PLATFORM2", "dba@example.com"},
		},
		Approvals: Approvals{Required: 1, ExpiresAfter: dur("15m")},
		Services: []Service{
			{
				Name:       "lstm-pfd",
				PagerDuty:  PagerDuty{ServiceIDs: []string{"PLSTMPF"}, EscalationPolicyID: "PESCLST"},
				Objectives: Objectives{RTO: dur("1h"), RPO: dur("4h")},
				Escalation: []Escalation{
					{After: dur("15m"), Role: "Platform Lead", Notify: []string{"platform-lead@example.com"}},
					{After: dur("30m"), Role: "Database Admin", Notify: []string{"dba@example.com"}},
					{On: EventSecurity, Role: "Security", Notify: []string{"security@example.com"}},
				},
				Databases: []Database{{
					Name:    "lstm_pfd",
					URLEnv:  "LSTM_PFD_DATABASE_URL",
					Backups: &Backups{Location: Location{Scheme: SchemeS3, Bucket: "lstm-pfd-backups", Prefix: "db/"}, Every: dur("24h")},
					Writers: []WorkloadRef{dashboard},
					WaitFor: "app=postgresql",
					Checks:  []Check{{Name: "experiments present", SQL: "SELECT COUNT(*) FROM experiments", Expect: Expect{Op: ">", Value: 0}}},
					path:    "services[0].databases[0]",
				}},
				Models: &Models{
					Backups:   Location{Scheme: SchemeS3, Bucket: "lstm-pfd-backups", Prefix: "models/"},
					Target:    Location{Scheme: SchemeS3, Bucket: "lstm-pfd-models", Prefix: "checkpoints/"},
					Restart:   []WorkloadRef{dashboard},
					Snapshots: &snapshots,
					Every:     dur("24h"),
					Verify:    []string{"model loaded"},
				},
				Kubernetes: &Kubernetes{Namespace: "default", Selector: "app=lstm-pfd"},
				Health: []HealthCheck{
					{Name: "dashboard", HTTP: "http://lstm-pfd-dashboard:8050/health"},
					{Name: "model loaded", Metric: &MetricCheck{URL: "http://lstm-pfd-dashboard:8050/metrics", Name: "lstm_pfd_model_loaded", Expect: Expect{Op: "==", Value: 1}}},
					{Name: "smoke predict", HTTP: "http://lstm-pfd-dashboard:8050/predict", Method: "POST", Body: `{"signal": [0.1, 0.2, 0.3]}`, ExpectStatus: 200},
				},
				Playbooks: []Playbook{{
					Name:        "cluster-recovery",
					Description: "Complete cluster recovery (runbook section 3, 45-60 min)",
					Steps: []PlaybookStep{
						{Name: "provision infrastructure", Run: []string{"terraform", "-chdir=infrastructure", "apply", "-auto-approve", "-input=false"}, Timeout: dur("20m")},
						{Name: "install cert-manager", Run: []string{"kubectl", "apply", "-f", "https://github.com/cert-manager/cert-manager/releases/download/v1.13.0/cert-manager.yaml"}},
						{Name: "install ingress-nginx", Run: []string{"helm", "upgrade", "--install", "nginx", "ingress-nginx/ingress-nginx"}},
						{Name: "deploy lstm-pfd", Run: []string{"helm", "upgrade", "--install", "lstm-pfd", "./deploy/helm/lstm-pfd", "-f", "./deploy/helm/lstm-pfd/values-prod.yaml"}, EnvFrom: []string{"JWT_SECRET", "DB_PASSWORD"}},
						{Name: "restore-db", Action: "restore-db"},
						{Name: "restore-models", Action: "restore-models"},
						{Name: "verify", Action: "verify"},
					},
					line: 74,
					path: "services[0].playbooks[0]",
				}},
				Scenarios: []Scenario{
					{Name: "Database corruption", Match: []string{"database", "corrupt"}, Estimate: dur("30m"), Playbook: "restore-db"},
					{Name: "Model checkpoint loss", Match: []string{"model", "checkpoint"}, Estimate: dur("20m"), Playbook: "restore-models"},
					{Name: "Complete cluster failure", Match: []string{"cluster"}, Estimate: dur("1h"), Playbook: "cluster-recovery"},
					{Name: "Single pod failure", Match: []string{"pod"}, Estimate: dur("5m")},
				},
				Drills: Drills{Every: dur("2160h"), Plan: []DrillQuarter{
					{Quarter: 1, Procedure: "cluster-recovery"},
					{Quarter: 2, Procedure: "restore-db"},
					{Quarter: 3, Procedure: "restore-models"},
					{Quarter: 4, Procedure: "cluster-recovery"},
				}},
			},
			{
				Name:       "inflow",
				PagerDuty:  PagerDuty{ServiceIDs: []string{"PINFLOW"}},
				Objectives: Objectives{RTO: dur("4h"), RPO: dur("1h")},
				Escalation: []Escalation{{After: dur("15m"), Role: "Platform", Notify: []string{"U0PLATFORM1"}}},
				Databases: []Database{{
					Name:    "inflow",
					URLEnv:  "INFLOW_DATABASE_URL",
					Backups: &Backups{Location: Location{Scheme: SchemeS3, Bucket: "inflow-backups", Prefix: "postgres/"}, Every: dur("1h")},
					path:    "services[1].databases[0]",
				}},
				Models: &Models{
					Backups: Location{Scheme: SchemeS3, Bucket: "inflow-models-backup"},
					Target:  Location{Scheme: SchemeS3, Bucket: "inflow-models"},
				},
				Kubernetes: &Kubernetes{Namespace: "inflow-prod", Source: &GitSource{
					Repo:     "https://github.com/example/inflow-infra.git",
					Ref:      "main",
					Path:     "infra/kubernetes/environments/prod",
					TokenEnv: "INFLOW_GIT_TOKEN",
				}},
				Vault: &Vault{
					AddressEnv: "VAULT_ADDR",
					TokenEnv:   "VAULT_TOKEN",
					Snapshots:  Location{Scheme: SchemeS3, Bucket: "inflow-vault-backups", Prefix: "raft/"},
					Every:      dur("24h"),
					Verify:     []string{"secret/prod"},
				},
				Failover: &Failover{
					RDS:    &FailoverRDS{Replica: "inflow-secondary", Region: "us-west-2"},
					DNS:    &FailoverDNS{ZoneID: "Z0INFLOWAI", Record: "api.inflow.ai", Type: "CNAME", Value: "api.us-west-2.inflow.ai", TTL: 60},
					Health: "https://api.inflow.ai/health",
				},
				Health: []HealthCheck{{Name: "api", HTTP: "https://api.inflow.ai/health"}},
				Scenarios: []Scenario{
					{Name: "Single pod crash", Severity: SeverityLow, Match: []string{"pod", "crash"}, Estimate: dur("2m")},
					{Name: "Full service outage", Severity: SeverityMedium, Match: []string{"outage"}, Estimate: dur("30m"), Playbook: "redeploy"},
					{Name: "Database corruption", Severity: SeverityHigh, Match: []string{"database", "corrupt"}, Estimate: dur("2h"), Playbook: "restore-db"},
					{Name: "Region failure", Severity: SeverityCritical, Match: []string{"region"}, Estimate: dur("4h"), Playbook: "failover"},
					{Name: "Data breach", Severity: SeverityCritical, Match: []string{"breach"}, Security: true},
				},
				Drills: Drills{Every: dur("2160h")},
			},
		},
	}
}

func assertEqualConfig(t *testing.T, got, want *Config) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	t.Fatalf("config mismatch\n--- got:\n%s\n--- want:\n%s", g, w)
}

func TestLoadReference(t *testing.T) {
	for _, tc := range []struct{ name, path string }{
		// The canonical reference, from the shared/ checkout beside the repository.
		{"shared", "../../shared/examples/runbook-v2.yaml"},
		// The copy shipped with the deploy files.
		{"deploy", "../deploy/examples/drbot.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(tc.path); err != nil {
				if tc.name == "shared" && os.IsNotExist(err) {
					// A checkout without shared/ beside it (a CI clone): the
					// deploy copy below is checked against the same expected
					// config, and TestDeployCopyIsTheReference pins the bytes.
					t.Skipf("reference runbook %s is not checked out beside the repository", tc.path)
				}
				t.Fatalf("reference runbook %s is missing (%v)", tc.path, err)
			}
			cfg, err := Load(tc.path)
			if err != nil {
				t.Fatalf("Load(%q): %v", tc.path, err)
			}
			assertEqualConfig(t, cfg, referenceConfig())

			// Spot checks through the helpers the rest of the bot uses.
			if got := cfg.ServiceNames(); !reflect.DeepEqual(got, []string{"lstm-pfd", "inflow"}) {
				t.Errorf("ServiceNames() = %v", got)
			}
			svc, ok := cfg.ServiceByPagerDutyID("PINFLOW")
			if !ok || svc.Name != "inflow" {
				t.Fatalf("ServiceByPagerDutyID(PINFLOW) = %v, %v", svc, ok)
			}
			if svc.Failover.DNS.TTL != 60 || svc.Failover.RDS.Replica != "inflow-secondary" {
				t.Errorf("inflow failover = %+v %+v", svc.Failover.RDS, svc.Failover.DNS)
			}
			if svc.Objectives.RTO.Duration != 4*time.Hour {
				t.Errorf("inflow RTO = %v", svc.Objectives.RTO)
			}
			lstm, ok := cfg.Service("lstm-pfd")
			if !ok {
				t.Fatal("Service(lstm-pfd) not found")
			}
			db, ok := lstm.Database("lstm_pfd")
			if !ok || db.Backups.Location.String() != "s3://lstm-pfd-backups/db/" || db.Backups.Every.Duration != 24*time.Hour {
				t.Errorf("lstm_pfd database = %+v", db)
			}
			if !db.Checks[0].Expect.Check(3) || db.Checks[0].Expect.Check(0) {
				t.Errorf("check %q: Expect %v misbehaves", db.Checks[0].Name, db.Checks[0].Expect)
			}
			if lstm.Escalation[2].On != EventSecurity || lstm.Escalation[2].After.Duration != 0 {
				t.Errorf("security escalation = %+v", lstm.Escalation[2])
			}
			if h, ok := lstm.HealthCheck("model loaded"); !ok || h.Metric.Expect.String() != "== 1" {
				t.Errorf("model loaded health check = %+v", h)
			}
			if lstm.Drills.Every.String() != "2160h" {
				t.Errorf("drills.every = %s", lstm.Drills.Every)
			}
			if req, exp := cfg.ApprovalsFor("restore-db"); req != 1 || exp != 15*time.Minute {
				t.Errorf("ApprovalsFor(restore-db) = %d, %v", req, exp)
			}
			if req, _ := cfg.ApprovalsFor("failover"); req != 2 {
				t.Errorf("ApprovalsFor(failover) = %d, want 2", req)
			}
		})
	}
}

func TestLookups(t *testing.T) {
	cfg := referenceConfig()
	if _, ok := cfg.Service("nope"); ok {
		t.Error("Service(nope) found")
	}
	if _, ok := cfg.ServiceByPagerDutyID("PNOPE"); ok {
		t.Error("ServiceByPagerDutyID(PNOPE) found")
	}
	if _, ok := cfg.ServiceByPagerDutyID(""); ok {
		t.Error("ServiceByPagerDutyID(\"\") found")
	}
	s, _ := cfg.ServiceByPagerDutyID("PLSTMPF")
	s.Objectives.RTO = dur("2h") // the helpers return pointers into the config
	if cfg.Services[0].Objectives.RTO.Duration != 2*time.Hour {
		t.Error("ServiceByPagerDutyID did not return a pointer into Services")
	}
	if _, ok := cfg.Services[1].Database("lstm_pfd"); ok {
		t.Error("inflow.Database(lstm_pfd) found")
	}
	if got := cfg.Services[1].Namespace(); got != "inflow-prod" {
		t.Errorf("Namespace() = %q", got)
	}
	if got := (Service{}).Namespace(); got != DefaultNamespace {
		t.Errorf("Namespace() without kubernetes = %q", got)
	}
	var nilCfg *Config
	if _, ok := nilCfg.Service("x"); ok || nilCfg.ServiceNames() != nil {
		t.Error("nil Config lookups should find nothing")
	}
}

func TestApprovalsFor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		yaml     string
		command  string
		wantReq  int
		wantExpy time.Duration
	}{
		{"defaults", "services: [{name: a}]", "restore-db", 1, 15 * time.Minute},
		{"failover defaults to two", "services: [{name: a}]", "failover", 2, 15 * time.Minute},
		{"global required above two applies to failover", "approvals: {required: 3}\nservices: [{name: a}]", "failover", 3, 15 * time.Minute},
		{"global expiry", "approvals: {expires_after: 1h}\nservices: [{name: a}]", "restore-db", 1, time.Hour},
		{"override required", "approvals:\n  commands:\n    failover: {required: 1}\nservices: [{name: a}]", "failover", 1, 15 * time.Minute},
		{"override expiry only keeps failover at two", "approvals:\n  commands:\n    failover: {expires_after: 5m}\nservices: [{name: a}]", "failover", 2, 5 * time.Minute},
		{"override for another command", "approvals:\n  required: 2\n  commands:\n    restore-models: {required: 1}\nservices: [{name: a}]", "restore-models", 1, 15 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			req, exp := cfg.ApprovalsFor(tc.command)
			if req != tc.wantReq || exp != tc.wantExpy {
				t.Errorf("ApprovalsFor(%q) = %d, %v; want %d, %v", tc.command, req, exp, tc.wantReq, tc.wantExpy)
			}
		})
	}
	var zero Config // built by hand, no defaults applied
	if req, exp := zero.ApprovalsFor("failover"); req != 2 || exp != DefaultApprovalExpiry {
		t.Errorf("zero Config ApprovalsFor(failover) = %d, %v", req, exp)
	}
	var nilCfg *Config
	if req, _ := nilCfg.ApprovalsFor("restore-db"); req != 1 {
		t.Errorf("nil Config ApprovalsFor = %d", req)
	}
}

func TestDatabaseURL(t *testing.T) {
	cfg, err := Load("../deploy/examples/drbot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	db, _ := cfg.Services[0].Database("lstm_pfd")

	t.Setenv("LSTM_PFD_DATABASE_URL", "")
	os.Unsetenv("LSTM_PFD_DATABASE_URL") // t.Setenv restores the original afterwards
	_, err = db.URL()
	if err == nil || err.Error() != "LSTM_PFD_DATABASE_URL is not set (services[0].databases[0].url_env)" {
		t.Errorf("unset: err = %v", err)
	}

	t.Setenv("LSTM_PFD_DATABASE_URL", "")
	_, err = db.URL()
	if err == nil || err.Error() != "LSTM_PFD_DATABASE_URL is empty (services[0].databases[0].url_env)" {
		t.Errorf("empty: err = %v", err)
	}

	const secret = "postgres://drbot:s3cret@db.internal:5432/lstm_pfd"
	t.Setenv("LSTM_PFD_DATABASE_URL", secret)
	got, err := db.URL()
	if err != nil || got != secret {
		t.Errorf("set: URL() = %q, %v", got, err)
	}

	// Parsing never reads the environment: a config loads with its
	// variables unset.
	os.Unsetenv("LSTM_PFD_DATABASE_URL")
	if _, err := Load("../deploy/examples/drbot.yaml"); err != nil {
		t.Errorf("load with env unset: %v", err)
	}
}

func TestMinimalFileBackedService(t *testing.T) {
	cfg, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Slack:     Slack{ChannelPrefix: "incident"},
		Approvals: Approvals{Required: 1, ExpiresAfter: dur("15m")},
		Services: []Service{{
			Name: "demo",
			Databases: []Database{{
				Name:    "shop",
				URLEnv:  "DEMO_SHOP_DATABASE_URL",
				Backups: &Backups{Location: Location{Scheme: SchemeFile, Path: "/var/lib/drbot/backups/shop/"}},
				Checks:  []Check{{Name: "orders present", SQL: "SELECT count(*) FROM orders", Expect: Expect{Op: ">=", Value: 1}}},
				path:    "services[0].databases[0]",
			}},
			Health: []HealthCheck{{Name: "web", HTTP: "http://127.0.0.1:8081/healthz"}},
		}},
	}
	assertEqualConfig(t, cfg, want)
	if got := cfg.Services[0].Databases[0].Backups.Location.String(); got != "file:///var/lib/drbot/backups/shop/" {
		t.Errorf("Location.String() = %q", got)
	}
	if _, ok := cfg.ServiceByPagerDutyID("PANY"); ok {
		t.Error("a service without PagerDuty ids matched a PagerDuty id")
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	cfg, err := Load("testdata/anchors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ServiceNames(); !reflect.DeepEqual(got, []string{"alpha", "beta"}) {
		t.Fatalf("ServiceNames() = %v", got)
	}
	beta := cfg.Services[1]
	if len(beta.Escalation) != 1 || beta.Escalation[0].Notify[0] != "S0PLATFORM" || beta.Namespace() != "shop" {
		t.Errorf("beta did not inherit from alpha through <<: %+v", beta)
	}
	if beta.PagerDuty.ServiceIDs[0] != "PBETA01" {
		t.Errorf("beta pagerduty = %+v", beta.PagerDuty)
	}
	if req, exp := cfg.ApprovalsFor("failover"); req != 3 || exp != 5*time.Minute {
		t.Errorf("ApprovalsFor(failover) = %d, %v", req, exp)
	}
	if req, exp := cfg.ApprovalsFor("restore-db"); req != 2 || exp != time.Hour {
		t.Errorf("ApprovalsFor(restore-db) = %d, %v", req, exp)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	var verr *ValidationError
	if err == nil || errors.As(err, &verr) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v; want a plain wrapped not-exist error", err)
	}
	if !strings.Contains(err.Error(), "testdata/does-not-exist.yaml") {
		t.Errorf("error does not name the file: %v", err)
	}
}

// TestDeployCopyIsTheReference keeps deploy/examples/drbot.yaml byte-identical
// to the shared reference whenever the shared checkout is there.
func TestDeployCopyIsTheReference(t *testing.T) {
	shared, err := os.ReadFile("../../shared/examples/runbook-v2.yaml")
	if os.IsNotExist(err) {
		t.Skip("shared/ is not checked out beside the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	deploy, err := os.ReadFile("../deploy/examples/drbot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(shared) != string(deploy) {
		t.Fatal("deploy/examples/drbot.yaml differs from ../shared/examples/runbook-v2.yaml: copy the reference again")
	}
}
