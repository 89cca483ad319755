package diagnose_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/diagnose"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/commands"
	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/runbook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Secrets the tests hand the bot; none may appear in a report.
const (
	awsSecret  = "aws-secret-never-in-reports"
	awsKeyID   = "AKIADIAGNOSETESTKEY"
	dbPassword = "db-password-never-in-reports"
	vaultToken = "hvs.vault-token-never-in-reports"
)

func loc(t *testing.T, s string) runbook.Location {
	t.Helper()
	l, err := runbook.ParseLocation(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func expect(t *testing.T, s string) runbook.Expect {
	t.Helper()
	e, err := runbook.ParseExpect(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func every(d time.Duration) runbook.Duration { return runbook.Duration{Duration: d} }

// moto returns an AWS loader pointed at moto_server with the test's
// credentials, and an S3 client on it.
func moto(t *testing.T) (func(context.Context, string) (aws.Config, error), *s3.Client) {
	t.Helper()
	endpoint := testenv.Moto(t)
	load := func(ctx context.Context, region string) (aws.Config, error) {
		return awsconf.Load(ctx, "us-east-1", awsconf.Static(endpoint, awsKeyID, awsSecret))
	}
	cfg, err := load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return load, awsconf.S3(cfg)
}

func put(t *testing.T, c *s3.Client, bucket, key string) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("backup bytes")}); err != nil {
		t.Fatal(err)
	}
}

func bucket(t *testing.T, c *s3.Client, name string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

// cluster is a fake cluster where PostgreSQL will not start: its pod waits
// for a claim that is not bound, and the service's pod is in CrashLoopBackOff.
func cluster() *fake.Clientset {
	ns := "default"
	standard := "standard"
	ready := []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	objs := []runtime.Object{
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "lstm-pfd-dashboard-7d9-a", Namespace: ns, Labels: map[string]string{"app": "lstm-pfd"}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: ready,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "dashboard", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
		},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "lstm-pfd-dashboard-7d9-b", Namespace: ns, Labels: map[string]string{"app": "lstm-pfd"}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
				Name: "dashboard", RestartCount: 7,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}},
			}}},
		},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "postgresql-0", Namespace: ns, Labels: map[string]string{"app": "postgresql"}},
			Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-postgresql-0"}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
				Message: `0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.`}}},
		},
		&corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "data-postgresql-0", Namespace: ns},
			Spec:       corev1.PersistentVolumeClaimSpec{StorageClassName: &standard},
			Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
		},
		&corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "checkpoints", Namespace: ns},
			Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
		},
	}
	return fake.NewClientset(objs...)
}

// metricsServer answers /metrics with the model not loaded.
func metricsServer(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE lstm_pfd_model_loaded gauge\nlstm_pfd_model_loaded 0\n")
	}))
	t.Cleanup(s.Close)
	return s
}

// fakeVault answers sys/health with status (and Vault's JSON) and
// lookup-self for the right token only.
func fakeVault(t *testing.T, status int) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/sys/health":
			h := map[string]any{"initialized": status != 501, "sealed": status == 503, "standby": status == 429,
				"performance_standby": false, "version": "1.15.4", "cluster_name": "vault-cluster-inflow"}
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(h)
		case "/v1/auth/token/lookup-self":
			if r.Header.Get("X-Vault-Token") != vaultToken {
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"errors":["permission denied"]}`)
				return
			}
			fmt.Fprint(w, `{"data":{"ttl":7200,"policies":["default","snapshots"]}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// blackhole is a database address that accepts connections and never
// answers (a dropped route to a hung server).
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never read or written
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func find(t *testing.T, d actions.Diagnosis, name string) actions.Finding {
	t.Helper()
	for _, f := range d.Findings {
		if f.Name == name {
			return f
		}
	}
	var names []string
	for _, f := range d.Findings {
		names = append(names, f.Name)
	}
	t.Fatalf("no finding %q in %q", name, names)
	return actions.Finding{}
}

func rendered(m chat.Message) string {
	var b strings.Builder
	b.WriteString(m.Text + "\n")
	for _, bl := range m.Blocks {
		switch x := bl.(type) {
		case chat.Header:
			b.WriteString(x.Text + "\n")
		case chat.Text:
			b.WriteString(x.Text + "\n")
		case chat.Context:
			b.WriteString(x.Text + "\n")
		}
	}
	return b.String()
}

// noSecrets fails when a secret shows in the report or its rendering.
func noSecrets(t *testing.T, d actions.Diagnosis, extra ...string) {
	t.Helper()
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw) + rendered(commands.DiagnosisMessage(d))
	for _, s := range append([]string{awsSecret, awsKeyID, dbPassword, vaultToken}, extra...) {
		if strings.Contains(text, s) {
			t.Errorf("the report shows a secret %q:\n%s", s, text)
		}
	}
}

func remedySource(f actions.Finding) string {
	if f.Remedy == nil {
		return ""
	}
	return f.Remedy.Source
}

// TestDiagnoseLSTMPFD runs every check against real parts: moto's STS and
// S3 (database backups present, the models bucket missing), a real
// PostgreSQL, a fake cluster where the dashboard is in CrashLoopBackOff and
// PostgreSQL waits for an unbound claim, a metrics endpoint saying the model
// is not loaded, and a Vault answering 200.
func TestDiagnoseLSTMPFD(t *testing.T) {
	ctx := context.Background()
	load, s3c := moto(t)
	bucket(t, s3c, "lstm-pfd-backups")
	put(t, s3c, "lstm-pfd-backups", "db/backup-2026-11-30.dump")
	put(t, s3c, "lstm-pfd-backups", "db/backup-2026-12-01.dump")
	pg := testenv.PostgresURL(t)
	pgWithPassword := strings.Replace(pg, "postgres://postgres@", "postgres://postgres:"+dbPassword+"@", 1)
	if pgWithPassword == pg {
		t.Fatalf("cannot put a password into %s", pg)
	}
	metrics := metricsServer(t)
	vault := fakeVault(t, http.StatusOK)

	svc := runbook.Service{
		Name:       "lstm-pfd",
		Objectives: runbook.Objectives{RPO: every(4 * time.Hour)},
		Databases: []runbook.Database{{Name: "lstm_pfd", URLEnv: "LSTM_PFD_DATABASE_URL", WaitFor: "app=postgresql",
			Backups: &runbook.Backups{Location: loc(t, "s3://lstm-pfd-backups/db/"), Every: every(24 * time.Hour)}}},
		Models: &runbook.Models{Backups: loc(t, "s3://lstm-pfd-models-gone/models/"), Target: loc(t, "s3://lstm-pfd-models/checkpoints/"),
			Restart: []runbook.WorkloadRef{{Kind: runbook.KindDeployment, Name: "lstm-pfd-dashboard"}}, Every: every(24 * time.Hour)},
		Kubernetes: &runbook.Kubernetes{Selector: "app=lstm-pfd"},
		Health: []runbook.HealthCheck{{Name: "model loaded", Metric: &runbook.MetricCheck{
			URL: metrics.URL + "/metrics", Name: "lstm_pfd_model_loaded", Expect: expect(t, "== 1")}}},
		Vault: &runbook.Vault{AddressEnv: "VAULT_ADDR", TokenEnv: "VAULT_TOKEN", Verify: []string{"secret/prod"}},
	}
	deps := diagnose.Deps{
		AWS:  load,
		Kube: cluster(),
		LookupEnv: env(map[string]string{"LSTM_PFD_DATABASE_URL": pgWithPassword, "VAULT_ADDR": vault.URL, "VAULT_TOKEN": vaultToken,
			"AWS_SECRET_ACCESS_KEY": awsSecret, "AWS_ACCESS_KEY_ID": awsKeyID}),
	}
	d := diagnose.Service(ctx, deps, svc)
	if len(d.NotConfigured) != 0 {
		t.Errorf("not configured: %q", d.NotConfigured)
	}

	id := find(t, d, "AWS identity")
	if id.Status != actions.StatusOK || !strings.Contains(id.Detail, "account 123456789012") || !strings.Contains(id.Detail, "arn:aws:") {
		t.Errorf("AWS identity = %+v", id)
	}

	db := find(t, d, "lstm_pfd backups (s3://lstm-pfd-backups/db/)")
	if db.Status != actions.StatusOK || !strings.Contains(db.Detail, "2 objects; newest backup-2026-12-01.dump") || !strings.Contains(db.Detail, "(every 24h)") {
		t.Errorf("database backups = %+v", db)
	}
	models := find(t, d, "model backups (s3://lstm-pfd-models-gone/models/)")
	if models.Status != actions.StatusFail || !strings.Contains(models.Detail, "NoSuchBucket") {
		t.Errorf("missing bucket = %+v", models)
	}
	if remedySource(models) != `runbook 001, Appendix A.1 "Backup Download Fails"` || len(models.Remedy.Steps) != 2 ||
		models.Remedy.Steps[0].Run != "aws sts get-caller-identity" || models.Remedy.Steps[1].Run != "aws s3 ls s3://lstm-pfd-models-gone/" {
		t.Errorf("missing bucket remedy = %+v", models.Remedy)
	}

	pgf := find(t, d, "database lstm_pfd")
	if pgf.Status != actions.StatusOK || !strings.Contains(pgf.Detail, "PostgreSQL 15") || !strings.Contains(pgf.Detail, "connections") {
		t.Errorf("database = %+v", pgf)
	}

	app := find(t, d, "pods app=lstm-pfd in default")
	if app.Status != actions.StatusFail || !strings.HasPrefix(app.Detail, "1/2 ready, 7 restarts (last terminated: Error)") {
		t.Errorf("service pods = %+v", app)
	}
	crash := find(t, d, "pod lstm-pfd-dashboard-7d9-b")
	if crash.Status != actions.StatusFail || !strings.Contains(crash.Detail, "container dashboard CrashLoopBackOff, 7 restarts, last terminated: Error (exit 1)") {
		t.Errorf("crashing pod = %+v", crash)
	}
	if len(crash.Logs) != 1 || crash.Logs[0] != "fake logs" {
		t.Errorf("crashing pod's logs = %q, want the fake clientset's", crash.Logs)
	}
	pgPod := find(t, d, "pod postgresql-0")
	if pgPod.Status != actions.StatusFail || !strings.Contains(pgPod.Detail, "phase Pending") ||
		!strings.Contains(pgPod.Detail, "claim data-postgresql-0 Pending") || !strings.Contains(pgPod.Detail, "unbound immediate PersistentVolumeClaims") {
		t.Errorf("PostgreSQL pod = %+v", pgPod)
	}
	if remedySource(pgPod) != `runbook 001, Appendix A.2 "PostgreSQL Won't Start"` ||
		pgPod.Remedy.Steps[0].Run != "kubectl logs -l app=postgresql --tail=100" || pgPod.Remedy.Steps[1].Run != "kubectl get pvc" {
		t.Errorf("PostgreSQL pod remedy = %+v", pgPod.Remedy)
	}
	pvcs := find(t, d, "PVCs in default")
	if pvcs.Status != actions.StatusFail || pvcs.Detail != "1 of 2 Bound" {
		t.Errorf("PVCs = %+v", pvcs)
	}
	pvc := find(t, d, "PVC data-postgresql-0")
	if pvc.Status != actions.StatusFail || pvc.Detail != "Pending, storage class standard" || remedySource(pvc) != `runbook 001, Appendix A.2 "PostgreSQL Won't Start"` {
		t.Errorf("unbound PVC = %+v", pvc)
	}

	m := find(t, d, "metric model loaded")
	if m.Status != actions.StatusFail || m.Detail != "lstm_pfd_model_loaded = 0, expected == 1" || remedySource(m) != `runbook 001, Appendix A.3 "Model Won't Load"` {
		t.Errorf("model metric = %+v", m)
	}
	if m.Remedy.Steps[0].Run != "kubectl exec -it deployment/lstm-pfd-dashboard -- ls -la /app/checkpoints/" ||
		m.Remedy.Steps[1].Run != "curl "+metrics.URL+"/metrics | grep model" || m.Remedy.Command != "/dr restore-models lstm-pfd" {
		t.Errorf("model remedy = %+v", m.Remedy)
	}

	vh := find(t, d, "Vault health")
	if vh.Status != actions.StatusOK || !strings.Contains(vh.Detail, "initialized, unsealed, active, version 1.15.4") {
		t.Errorf("Vault = %+v", vh)
	}
	vt := find(t, d, "Vault token")
	if vt.Status != actions.StatusOK || !strings.Contains(vt.Detail, "accepted, policies default, snapshots, expires in 2h") {
		t.Errorf("Vault token = %+v", vt)
	}

	// Every failing line carries a remedy.
	for _, f := range d.Failed() {
		if f.Remedy == nil || len(f.Remedy.Steps) == 0 {
			t.Errorf("failing line without a remedy: %+v", f)
		}
	}
	noSecrets(t, d, pgWithPassword)

	msg := rendered(commands.DiagnosisMessage(d))
	for _, want := range []string{
		"_runbook 001, Quick Reference \"Single Pod Failure\" and 1.3 \"Verification Steps\"_: Kubernetes Self-Heal (< 5 min) · Check pod status: `kubectl get pods -l app=lstm-pfd`",
		"Diagnosis of lstm-pfd: 8 problems",
		"❌ *model backups (s3://lstm-pfd-models-gone/models/)*: cannot list: NoSuchBucket",
		"↳ _runbook 001, Appendix A.1 \"Backup Download Fails\"_: Check AWS credentials: `aws sts get-caller-identity` · Check bucket permissions: `aws s3 ls s3://lstm-pfd-models-gone/`",
		"Last 1 log lines:\n```\nfake logs\n```",
		"Check PVC status: `kubectl get pvc`",
		"→ `/dr restore-models lstm-pfd`",
		"✅ *AWS identity*: account 123456789012",
		"Read-only:",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message lacks %q:\n%s", want, msg)
		}
	}
}

// TestDiagnoseNothingHangs: a database that accepts connections and never
// answers, a bucket that does not exist, and a metrics endpoint that never
// answers are each a failing line with its remedy, and the report comes
// back within the check timeout, not at the mercy of the slowest part.
func TestDiagnoseNothingHangs(t *testing.T) {
	load, _ := moto(t)
	hole := blackhole(t)
	stuck := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stuck:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(stuck); hung.Close() })

	svc := runbook.Service{
		Name: "inflow",
		Databases: []runbook.Database{{Name: "inflow", URLEnv: "INFLOW_DATABASE_URL",
			Backups: &runbook.Backups{Location: loc(t, "s3://inflow-backups/postgres/"), Every: every(time.Hour)}}},
		Health: []runbook.HealthCheck{{Name: "model loaded", Metric: &runbook.MetricCheck{URL: hung.URL + "/metrics", Name: "m", Expect: expect(t, "== 1")}}},
	}
	dbURL := "postgres://admin:" + dbPassword + "@" + hole + "/inflow?sslmode=disable"
	deps := diagnose.Deps{AWS: load, CheckTimeout: 2 * time.Second, Deadline: 10 * time.Second,
		LookupEnv: env(map[string]string{"INFLOW_DATABASE_URL": dbURL})}
	began := time.Now()
	d := diagnose.Service(context.Background(), deps, svc)
	took := time.Since(began)
	if took > 6*time.Second {
		t.Errorf("the report took %s with a 2s check timeout", took)
	}
	db := find(t, d, "database inflow")
	if db.Status != actions.StatusFail || !strings.HasPrefix(db.Detail, "no answer within 2s at ") || !strings.HasSuffix(db.Detail, " at "+hole) {
		t.Errorf("blackholed database = %+v", db)
	}
	if remedySource(db) != `runbook 001, Appendix A.2 "PostgreSQL Won't Start"` {
		t.Errorf("blackholed database remedy = %+v", db.Remedy)
	}
	b := find(t, d, "inflow backups (s3://inflow-backups/postgres/)")
	if b.Status != actions.StatusFail || !strings.Contains(b.Detail, "NoSuchBucket") || remedySource(b) != `runbook 001, Appendix A.1 "Backup Download Fails"` {
		t.Errorf("missing bucket = %+v", b)
	}
	m := find(t, d, "metric model loaded")
	if m.Status != actions.StatusFail || !strings.Contains(m.Detail, "timed out") {
		t.Errorf("hung metrics = %+v", m)
	}
	noSecrets(t, d, dbURL)

	// The overall deadline wins over slower check timeouts: what has not
	// answered by then is reported as such.
	deps.CheckTimeout, deps.Deadline = time.Minute, time.Second
	began = time.Now()
	d = diagnose.Service(context.Background(), deps, svc)
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("the report took %s with a 1s deadline", took)
	}
	db = find(t, d, "database inflow")
	if db.Status != actions.StatusFail || !strings.Contains(db.Detail, "no answer within") {
		t.Errorf("blackholed database under the deadline = %+v", db)
	}
}

// TestDiagnoseSaysWhatIsNotConfigured: without Kubernetes, AWS, or the env
// vars the runbook names, diagnose still answers and names each part.
func TestDiagnoseSaysWhatIsNotConfigured(t *testing.T) {
	svc := runbook.Service{
		Name: "inflow",
		Databases: []runbook.Database{{Name: "inflow", URLEnv: "INFLOW_DATABASE_URL",
			Backups: &runbook.Backups{Location: loc(t, "s3://inflow-backups/postgres/")}}},
		Kubernetes: &runbook.Kubernetes{Namespace: "inflow-prod", Selector: "app=inflow"},
		Vault:      &runbook.Vault{AddressEnv: "VAULT_ADDR", TokenEnv: "VAULT_TOKEN"},
	}
	d := diagnose.Service(context.Background(), diagnose.Deps{KubeErr: fmt.Errorf("no KUBECONFIG and not running in a cluster"), LookupEnv: env(nil)}, svc)
	want := []string{
		"AWS: no AWS configuration in this bot",
		"database inflow: INFLOW_DATABASE_URL is not set (url_env)",
		"Kubernetes: no KUBECONFIG and not running in a cluster",
		"Vault: VAULT_ADDR is not set (vault.address_env)",
	}
	if strings.Join(d.NotConfigured, "\n") != strings.Join(want, "\n") {
		t.Errorf("not configured = %q, want %q", d.NotConfigured, want)
	}
	if len(d.Findings) != 0 {
		t.Errorf("findings without any configured part: %+v", d.Findings)
	}
	msg := rendered(commands.DiagnosisMessage(d))
	if !strings.Contains(msg, "Not configured, not checked: AWS: no AWS configuration") {
		t.Errorf("message:\n%s", msg)
	}
}

// TestVaultHealthStatuses reads Vault's sys/health answers as Vault gives
// them: 200 active, 429 standby, 503 sealed, 501 not initialized.
func TestVaultHealthStatuses(t *testing.T) {
	svc := runbook.Service{Name: "inflow", Vault: &runbook.Vault{AddressEnv: "VAULT_ADDR", TokenEnv: "VAULT_TOKEN", Verify: []string{"secret/prod"}}}
	for _, c := range []struct {
		status     int
		token      string
		ok         bool
		detail     string
		remedy     string
		tokenState actions.FindingStatus
	}{
		{200, vaultToken, true, "initialized, unsealed, active, version 1.15.4", "", actions.StatusOK},
		{429, vaultToken, true, "initialized, unsealed, standby, version 1.15.4", "", actions.StatusOK},
		{200, "hvs.expired-token", true, "initialized, unsealed, active", "", actions.StatusFail},
		{503, vaultToken, false, "sealed, version 1.15.4", "vault operator unseal", ""},
		{501, vaultToken, false, "not initialized, version 1.15.4", "vault operator raft snapshot restore <snapshot>", ""},
	} {
		t.Run(fmt.Sprint(c.status, c.token), func(t *testing.T) {
			v := fakeVault(t, c.status)
			fs := diagnose.VaultHealth(context.Background(), http.DefaultClient, svc, v.URL, c.token)
			h := fs[0]
			if (h.Status == actions.StatusOK) != c.ok || !strings.HasPrefix(h.Detail, c.detail) {
				t.Errorf("health = %+v", h)
			}
			if c.remedy != "" {
				if h.Remedy == nil || h.Remedy.Steps[0].Run != c.remedy || !strings.Contains(commands.RemedyText(*h.Remedy), "/dr restore-vault inflow") {
					t.Errorf("remedy = %+v", h.Remedy)
				}
			}
			if c.tokenState == "" {
				if len(fs) != 1 {
					t.Errorf("token looked up on an unusable Vault: %+v", fs)
				}
				return
			}
			if len(fs) != 2 || fs[1].Status != c.tokenState {
				t.Fatalf("token = %+v", fs)
			}
			if c.tokenState == actions.StatusFail && (fs[1].Detail != "rejected (expired, revoked or wrong)" || fs[1].Remedy == nil) {
				t.Errorf("rejected token = %+v", fs[1])
			}
			noSecrets(t, actions.Diagnosis{Service: "inflow", Findings: fs}, c.token)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		hole := blackhole(t)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		fs := diagnose.VaultHealth(ctx, http.DefaultClient, svc, "http://"+hole, vaultToken)
		if len(fs) != 1 || fs[0].Status != actions.StatusFail || !strings.Contains(fs[0].Detail, "no answer at "+hole+": no answer in time") {
			t.Errorf("unreachable Vault = %+v", fs)
		}
	})
}

// TestSecretsAreScrubbed: a secret that reaches a finding's text by any
// path (here a Kubernetes client error quoting the environment) is
// replaced before the report leaves the package.
func TestSecretsAreScrubbed(t *testing.T) {
	svc := runbook.Service{Name: "inflow", Kubernetes: &runbook.Kubernetes{Selector: "app=inflow"},
		Vault: &runbook.Vault{AddressEnv: "VAULT_ADDR", TokenEnv: "VAULT_TOKEN"}}
	deps := diagnose.Deps{
		KubeErr:   fmt.Errorf("exec plugin failed: AWS_SECRET_ACCESS_KEY=%s VAULT_TOKEN=%s", awsSecret, vaultToken),
		LookupEnv: env(map[string]string{"AWS_SECRET_ACCESS_KEY": awsSecret, "VAULT_TOKEN": vaultToken}),
	}
	d := diagnose.Service(context.Background(), deps, svc)
	noSecrets(t, d)
	if !strings.Contains(strings.Join(d.NotConfigured, " "), "AWS_SECRET_ACCESS_KEY=[redacted] VAULT_TOKEN=[redacted]") {
		t.Errorf("not configured = %q", d.NotConfigured)
	}
}

// TestReadRefusesUnknownService goes through the procedure's Read.
func TestReadRefusesUnknownService(t *testing.T) {
	p := diagnose.New(&runbook.Config{}, diagnose.Deps{})
	_, err := p.Read(context.Background(), actions.Params{Service: "nope"})
	var r *actions.Refusal
	if err == nil || !asRefusal(err, &r) {
		t.Fatalf("Read(nope) = %v, want a refusal", err)
	}
	if p.Command().Approval {
		t.Error("diagnose must not need approval")
	}
}

func asRefusal(err error, r **actions.Refusal) bool { return errors.As(err, r) }

// TestStaleBackupIsAWarning: a readable backup older than its `every` is a
// warning saying so, with where to look; within `every` it is fine.
func TestStaleBackupIsAWarning(t *testing.T) {
	load, s3c := moto(t)
	bucket(t, s3c, "inflow-backups")
	put(t, s3c, "inflow-backups", "postgres/backup_20261201.dump")
	svc := runbook.Service{Name: "inflow", Databases: []runbook.Database{{Name: "inflow",
		Backups: &runbook.Backups{Location: loc(t, "s3://inflow-backups/postgres/"), Every: every(time.Hour)}}}}
	deps := diagnose.Deps{AWS: load, LookupEnv: env(nil), Now: func() time.Time { return time.Now().Add(3 * time.Hour) }}
	d := diagnose.Service(context.Background(), deps, svc)
	b := find(t, d, "inflow backups (s3://inflow-backups/postgres/)")
	if b.Status != actions.StatusWarn || !strings.Contains(b.Detail, "1 object; newest backup_20261201.dump") || !strings.HasSuffix(b.Detail, "old, older than its every 1h") {
		t.Errorf("stale backup = %+v", b)
	}
	if b.Remedy == nil || b.Remedy.Source != "" || b.Remedy.Steps[1].Run != "/dr backups inflow" {
		t.Errorf("stale backup remedy = %+v", b.Remedy)
	}
	if got := rendered(commands.DiagnosisMessage(d)); !strings.Contains(got, "Diagnosis of inflow: 1 warning") || !strings.Contains(got, "_drbot's advice (not in the runbook)_") {
		t.Errorf("message:\n%s", got)
	}
	deps.Now = nil
	d = diagnose.Service(context.Background(), deps, svc)
	if b := find(t, d, "inflow backups (s3://inflow-backups/postgres/)"); b.Status != actions.StatusOK || !strings.HasSuffix(b.Detail, "(every 1h)") {
		t.Errorf("fresh backup = %+v", b)
	}
}

// TestPodsEndedAndManyFailing: evicted pods are counted apart (their
// workload replaced them), and only the first pods not ready are described
// one by one, only the first few with their logs.
func TestPodsEndedAndManyFailing(t *testing.T) {
	var objs []runtime.Object
	for i := range 14 {
		objs = append(objs, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%02d", i), Namespace: "shop", Labels: map[string]string{"app": "web"}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "web",
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
		})
	}
	objs = append(objs, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-old", Namespace: "shop", Labels: map[string]string{"app": "web"}},
		Status:     corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"},
	})
	cs := fake.NewClientset(objs...)
	fs := diagnose.Pods(context.Background(), cs, "shop", "app=web", nil)
	if len(fs) != 11 {
		t.Fatalf("%d lines, want a summary and 10 pods", len(fs))
	}
	if fs[0].Detail != "0/14 ready; ended pods still listed: 1 Evicted; the first 10 of 14 pods not ready below" {
		t.Errorf("summary = %q", fs[0].Detail)
	}
	withLogs := 0
	for _, f := range fs[1:] {
		if len(f.Logs) > 0 {
			withLogs++
		}
	}
	if withLogs != 3 {
		t.Errorf("%d pods with logs, want the first 3", withLogs)
	}
	if fs := diagnose.Pods(context.Background(), cs, "shop", "app in (", nil); fs[0].Status != actions.StatusFail || !strings.HasPrefix(fs[0].Detail, "not a label selector") {
		t.Errorf("bad selector = %+v", fs)
	}
}

// TestDatabaseDroppingConnections: a server that accepts and at once drops
// the connection (a crashing PostgreSQL, a proxy with no backend) is a
// failing line saying so, with A.2's remedy, at once.
func TestDatabaseDroppingConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	svc := runbook.Service{Name: "lstm-pfd", Databases: []runbook.Database{{Name: "lstm_pfd", URLEnv: "DB", WaitFor: "app=postgresql"}}}
	u := "postgres://postgres:" + dbPassword + "@" + ln.Addr().String() + "/lstm_pfd?sslmode=disable"
	began := time.Now()
	d := diagnose.Service(context.Background(), diagnose.Deps{LookupEnv: env(map[string]string{"DB": u})}, svc)
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
	f := find(t, d, "database lstm_pfd")
	dropped := f.Detail == "the server closed the connection at "+ln.Addr().String() ||
		f.Detail == "cannot connect: read: connection reset by peer at "+ln.Addr().String()
	if f.Status != actions.StatusFail || !dropped || remedySource(f) != `runbook 001, Appendix A.2 "PostgreSQL Won't Start"` {
		t.Errorf("dropping database = %+v", f)
	}
	noSecrets(t, d, u)
}
