package deploytest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/drbot-dev/drbot/actions/redeploy"
	"github.com/drbot-dev/drbot/runbook"
)

func TestChartDefaults(t *testing.T) {
	objs := renderChart(t, nil)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.Kind)
	}
	sort.Strings(kinds)
	want := []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("default objects %v, want %v (no RBAC until targetNamespaces names a namespace)", kinds, want)
	}
	d := one[*appsv1.Deployment](t, objs, "Deployment")
	checkHardened(t, d)
	env := envOf(t, d)
	wantSecretEnv(t, env, "DATABASE_URL", "drbot", "DATABASE_URL")
	wantSecretEnv(t, env, "SLACK_BOT_TOKEN", "drbot", "SLACK_BOT_TOKEN")
	wantSecretEnv(t, env, "SLACK_SIGNING_SECRET", "drbot", "SLACK_SIGNING_SECRET")
	wantSecretEnv(t, env, "PAGERDUTY_WEBHOOK_SECRET", "drbot", "PAGERDUTY_WEBHOOK_SECRET")
	if e := env["PAGERDUTY_API_TOKEN"]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Optional == nil || !*e.ValueFrom.SecretKeyRef.Optional {
		t.Errorf("PAGERDUTY_API_TOKEN should be optional in webhook mode: %+v", e)
	}
	for _, absent := range []string{"SLACK_APP_TOKEN", "DRBOT_PAGERDUTY_POLL"} {
		if _, ok := env[absent]; ok {
			t.Errorf("%s set in http/webhook mode", absent)
		}
	}

	// The runbook ConfigMap holds a config drbot loads, and its checksum is on
	// the pod template, so a config change rolls the pods.
	cm := one[*corev1.ConfigMap](t, objs, "ConfigMap")
	cfg := cm.Data["drbot.yaml"]
	if _, err := runbook.Parse("drbot.yaml", []byte(cfg)); err != nil {
		t.Errorf("the chart's default runbook does not load: %v", err)
	}
	sum := sha256.Sum256([]byte(strings.TrimSuffix(cfg, "\n")))
	sum2 := sha256.Sum256([]byte(cfg))
	got := d.Spec.Template.Annotations["checksum/runbook"]
	if got != hex.EncodeToString(sum[:]) && got != hex.EncodeToString(sum2[:]) {
		t.Errorf("checksum/runbook %q is not the ConfigMap's sha256", got)
	}
	changed := renderChart(t, values(t, "runbook: {config: \"services: []\\n\"}"))
	if one[*appsv1.Deployment](t, changed, "Deployment").Spec.Template.Annotations["checksum/runbook"] == got {
		t.Error("a runbook change does not change the pod template's checksum annotation")
	}

	pdb := one[*policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget")
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}
	if !mapsEqual(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("PDB selects %v, deployment %v", pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge.IntValue() != 1 {
		t.Errorf("rolling update %+v, want maxSurge 1, maxUnavailable 0", d.Spec.Strategy.RollingUpdate)
	}
	tsc := d.Spec.Template.Spec.TopologySpreadConstraints
	if len(tsc) != 1 || tsc[0].TopologyKey != "topology.kubernetes.io/zone" || !mapsEqual(tsc[0].LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("topology spread %+v, want one across zones selecting drbot's pods", tsc)
	}
}

// checkHardened asserts the pod and container security context and the
// probes, resources and volumes a hardened pod needs.
func checkHardened(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	ps := d.Spec.Template.Spec
	psc := ps.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v: want non-root", psc)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile: want RuntimeDefault")
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%d containers", len(ps.Containers))
	}
	c := ps.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation must be false")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem must be true")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("container runAsNonRoot must be true")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities %+v: want drop [ALL], add none", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("container seccompProfile must be RuntimeDefault")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("privileged")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("readiness probe must GET /readyz")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("liveness probe must GET /healthz")
	}
	// /tmp is the only writable path, an emptyDir.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	vols := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		vols[v.Name] = v
	}
	for name, m := range mounts {
		v := vols[name]
		switch {
		case m.MountPath == "/tmp":
			if v.EmptyDir == nil {
				t.Errorf("/tmp is %+v, want an emptyDir", v.VolumeSource)
			}
		case !m.ReadOnly:
			t.Errorf("volume %s at %s is writable", name, m.MountPath)
		}
	}
	if m, ok := mounts["tmp"]; !ok || m.MountPath != "/tmp" {
		t.Error("no emptyDir mounted at /tmp")
	}
	if !slices.Equal(c.Args, []string{"serve", "--config", "/etc/drbot/drbot.yaml"}) {
		t.Errorf("args %v", c.Args)
	}
}

func envOf(t *testing.T, d *appsv1.Deployment) map[string]corev1.EnvVar {
	t.Helper()
	out := map[string]corev1.EnvVar{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if _, dup := out[e.Name]; dup {
			t.Errorf("env %s set twice", e.Name)
		}
		out[e.Name] = e
	}
	return out
}

func wantSecretEnv(t *testing.T, env map[string]corev1.EnvVar, name, secret, key string) {
	t.Helper()
	e, ok := env[name]
	if !ok {
		t.Errorf("%s is not set", name)
		return
	}
	if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Errorf("%s is not read from a Secret: %+v", name, e)
		return
	}
	ref := e.ValueFrom.SecretKeyRef
	if ref.Name != secret || ref.Key != key {
		t.Errorf("%s from secret %s key %s, want %s/%s", name, ref.Name, ref.Key, secret, key)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestChartModes renders every Slack × PagerDuty mode with the optional
// objects on, and checks what each mode reads.
func TestChartModes(t *testing.T) {
	for _, slackMode := range []string{"http", "socket"} {
		for _, pdMode := range []string{"webhook", "poll", "both"} {
			t.Run(slackMode+"-"+pdMode, func(t *testing.T) {
				objs := renderChart(t, values(t, `
slack: {mode: `+slackMode+`}
pagerduty: {mode: `+pdMode+`, pollInterval: 30s}
store: {secretName: drbot-store, secretKey: url}
targetNamespaces: [shop]
serviceMonitor: {enabled: true}
prometheusRule: {enabled: true}
networkPolicy: {enabled: true, ingressFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress}}}]}
extraEnvFromSecrets: [drbot-targets]
image: {digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
`))
				d := one[*appsv1.Deployment](t, objs, "Deployment")
				checkHardened(t, d)
				env := envOf(t, d)
				wantSecretEnv(t, env, "DATABASE_URL", "drbot-store", "url")
				_, hasApp := env["SLACK_APP_TOKEN"]
				_, hasSigning := env["SLACK_SIGNING_SECRET"]
				if hasApp != (slackMode == "socket") || hasSigning != (slackMode == "http") {
					t.Errorf("slack %s: SLACK_APP_TOKEN set %v, SLACK_SIGNING_SECRET set %v", slackMode, hasApp, hasSigning)
				}
				if slackMode == "socket" {
					wantSecretEnv(t, env, "SLACK_APP_TOKEN", "drbot", "SLACK_APP_TOKEN")
				}
				_, hasWebhook := env["PAGERDUTY_WEBHOOK_SECRET"]
				if hasWebhook != (pdMode != "poll") {
					t.Errorf("pagerduty %s: PAGERDUTY_WEBHOOK_SECRET set %v", pdMode, hasWebhook)
				}
				poll, hasPoll := env["DRBOT_PAGERDUTY_POLL"]
				if hasPoll != (pdMode != "webhook") || (hasPoll && poll.Value != "30s") {
					t.Errorf("pagerduty %s: DRBOT_PAGERDUTY_POLL %+v", pdMode, poll)
				}
				tok := env["PAGERDUTY_API_TOKEN"]
				optional := tok.ValueFrom.SecretKeyRef.Optional != nil && *tok.ValueFrom.SecretKeyRef.Optional
				if optional != (pdMode == "webhook") {
					t.Errorf("pagerduty %s: PAGERDUTY_API_TOKEN optional=%v (polling needs it)", pdMode, optional)
				}
				if c := d.Spec.Template.Spec.Containers[0]; !strings.HasSuffix(c.Image, "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") {
					t.Errorf("image %s: want pinned by digest", c.Image)
				} else if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "drbot-targets" {
					t.Errorf("envFrom %+v", c.EnvFrom)
				}

				sm := one[*serviceMonitor](t, objs, "ServiceMonitor")
				svc := one[*corev1.Service](t, objs, "Service")
				if !mapsEqual(sm.Spec.Selector.MatchLabels, svc.Labels) || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
					t.Errorf("ServiceMonitor %+v does not scrape the Service %v", sm.Spec, svc.Labels)
				}
				np := one[*networkingv1.NetworkPolicy](t, objs, "NetworkPolicy")
				if !mapsEqual(np.Spec.PodSelector.MatchLabels, d.Spec.Selector.MatchLabels) || len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 1 {
					t.Errorf("NetworkPolicy %+v", np.Spec)
				}
				checkAlertRules(t, one[*prometheusRule](t, objs, "PrometheusRule"))
				checkNamespacedRBAC(t, objs, []string{"shop"}, true)
			})
		}
	}
}

func TestChartRejectsUnknownModes(t *testing.T) {
	for _, v := range []map[string]any{
		values(t, "slack: {mode: websocket}"),
		values(t, "pagerduty: {mode: email}"),
	} {
		if _, err := renderChartErr(v); err == nil || !strings.Contains(err.Error(), "want") {
			t.Errorf("%v: render error %v, want a clear refusal", v, err)
		}
	}
}

// alertNames are the alerts docs/operations.md explains.
var alertNames = []string{
	"DrbotDown", "DrbotDegraded", "DrbotAuditChainBroken", "DrbotJobsFailing", "DrbotJobsDiscarded",
	"DrbotBackupStale", "DrbotSlackErrors", "DrbotPagerDutyErrors",
}

// metricsComingLater are metrics alert rules use that drbot does not export
// yet; docs/operations.md says so.
var metricsComingLater = map[string]bool{"drbot_backup_age_seconds": true}

// checkAlertRules: every alert the docs explain is there, each drbot metric it
// uses is one drbot declares, and the docs have a section for it.
func checkAlertRules(t *testing.T, pr *prometheusRule) {
	t.Helper()
	declared := declaredMetrics(t)
	docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	metricRe := regexp.MustCompile(`\bdrbot_[a-z_]+`)
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			got = append(got, r.Alert)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: no severity or summary", r.Alert)
			}
			if !strings.Contains(r.Expr, `job="drbot", namespace="drbot"`) {
				t.Errorf("%s: expr %q does not select this release's series", r.Alert, r.Expr)
			}
			for _, m := range metricRe.FindAllString(r.Expr, -1) {
				if !declared[m] && !metricsComingLater[m] {
					t.Errorf("%s uses %s, which drbot does not export", r.Alert, m)
				}
			}
			if !strings.Contains(string(docs), "### "+r.Alert) {
				t.Errorf("docs/operations.md has no section \"### %s\"", r.Alert)
			}
		}
	}
	sort.Strings(got)
	want := slices.Clone(alertNames)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
}

// declaredMetrics reads the metric names drbot's Go code declares
// (Name: "drbot_…" in a prometheus *Opts literal, or prometheus.NewDesc("drbot_…")).
func declaredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`(?:Name:\s+|NewDesc\(\s*)"(drbot_[a-z_]+)"`)
	out := map[string]bool{}
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !out["drbot_http_requests_total"] {
		t.Fatalf("found no drbot metrics under %s: %v", root, out)
	}
	return out
}

// wantRules is the chart's Role: exactly what actions/kube and actions/diagnose call (see
// TestRBACCoversKubeActions), plus, with redeploy, get, create and patch of
// every kind in redeploy.AllowedKinds (grouped by API group, sorted), the
// apps ones merged into the workloads' rule.
func wantRules(withRedeploy bool) []rbacv1.PolicyRule {
	workloads := []string{"deployments", "statefulsets"}
	verbs := []string{"get", "patch"}
	var extra []rbacv1.PolicyRule
	if withRedeploy {
		verbs = []string{"create", "get", "patch"}
		byGroup := map[string][]string{}
		for _, k := range redeploy.AllowedKinds {
			if k.Group == "apps" {
				if !slices.Contains(workloads, k.Resource) {
					workloads = append(workloads, k.Resource)
				}
				continue
			}
			byGroup[k.Group] = append(byGroup[k.Group], k.Resource)
		}
		var groups []string
		for g := range byGroup {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		for _, g := range groups {
			res := byGroup[g]
			sort.Strings(res)
			extra = append(extra, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: res, Verbs: verbs})
		}
		sort.Strings(workloads)
	}
	return append([]rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: workloads, Verbs: verbs},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"get", "list"}},
	}, extra...)
}

func checkNamespacedRBAC(t *testing.T, objs []object, namespaces []string, withRedeploy bool) {
	t.Helper()
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding"} {
		if n := len(byKind(objs, kind)); n != 0 {
			t.Errorf("%d %s objects without rbac.clusterWide", n, kind)
		}
	}
	roles := map[string]*rbacv1.Role{}
	for _, o := range byKind(objs, "Role") {
		roles[o.Namespace] = o.Obj.(*rbacv1.Role)
	}
	bindings := map[string]*rbacv1.RoleBinding{}
	for _, o := range byKind(objs, "RoleBinding") {
		bindings[o.Namespace] = o.Obj.(*rbacv1.RoleBinding)
	}
	if len(roles) != len(namespaces) || len(bindings) != len(namespaces) {
		t.Errorf("%d roles and %d bindings for namespaces %v", len(roles), len(bindings), namespaces)
	}
	sa := one[*corev1.ServiceAccount](t, objs, "ServiceAccount")
	d := one[*appsv1.Deployment](t, objs, "Deployment")
	if d.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("pods run as %q, the chart's ServiceAccount is %q", d.Spec.Template.Spec.ServiceAccountName, sa.Name)
	}
	for _, ns := range namespaces {
		r, b := roles[ns], bindings[ns]
		if r == nil || b == nil {
			t.Errorf("namespace %s: no Role or RoleBinding", ns)
			continue
		}
		if !rulesEqual(r.Rules, wantRules(withRedeploy)) {
			t.Errorf("namespace %s: rules %+v, want %+v", ns, r.Rules, wantRules(withRedeploy))
		}
		for _, rule := range r.Rules {
			for _, res := range rule.Resources {
				if res == "*" || res == "leases" || res == "secrets" {
					t.Errorf("namespace %s: the Role grants %s", ns, res)
				}
			}
			for _, v := range rule.Verbs {
				if v == "*" || v == "delete" || v == "deletecollection" || v == "escalate" || v == "bind" || v == "impersonate" {
					t.Errorf("namespace %s: the Role grants %s", ns, v)
				}
			}
		}
		if b.RoleRef.Kind != "Role" || b.RoleRef.Name != r.Name {
			t.Errorf("namespace %s: binding refers to %s %s", ns, b.RoleRef.Kind, b.RoleRef.Name)
		}
		if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != sa.Name || b.Subjects[0].Namespace != releaseNamespace {
			t.Errorf("namespace %s: binding subjects %+v, want drbot's ServiceAccount", ns, b.Subjects)
		}
	}
}

func rulesEqual(a, b []rbacv1.PolicyRule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i].APIGroups, b[i].APIGroups) || !slices.Equal(a[i].Resources, b[i].Resources) ||
			!slices.Equal(a[i].Verbs, b[i].Verbs) || len(a[i].ResourceNames) != 0 || len(a[i].NonResourceURLs) != 0 {
			return false
		}
	}
	return true
}

func TestChartRBAC(t *testing.T) {
	t.Run("a Role per target namespace", func(t *testing.T) {
		objs := renderChart(t, values(t, "targetNamespaces: [shop, payments]"))
		checkNamespacedRBAC(t, objs, []string{"shop", "payments"}, true)
	})
	t.Run("without redeploy's kinds", func(t *testing.T) {
		objs := renderChart(t, values(t, "targetNamespaces: [shop]\nrbac: {redeploy: false}"))
		checkNamespacedRBAC(t, objs, []string{"shop"}, false)
	})
	t.Run("cluster-wide only when asked", func(t *testing.T) {
		objs := renderChart(t, values(t, "targetNamespaces: [shop]\nrbac: {clusterWide: true}"))
		if n := len(byKind(objs, "Role")) + len(byKind(objs, "RoleBinding")); n != 0 {
			t.Errorf("%d namespaced RBAC objects with clusterWide", n)
		}
		cr := one[*rbacv1.ClusterRole](t, objs, "ClusterRole")
		if !rulesEqual(cr.Rules, wantRules(true)) {
			t.Errorf("ClusterRole rules %+v", cr.Rules)
		}
		crb := one[*rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding")
		if crb.RoleRef.Name != cr.Name || len(crb.Subjects) != 1 || crb.Subjects[0].Namespace != releaseNamespace {
			t.Errorf("ClusterRoleBinding %+v", crb)
		}
	})
	t.Run("none when rbac.create is false", func(t *testing.T) {
		objs := renderChart(t, values(t, "targetNamespaces: [shop]\nrbac: {create: false}"))
		for _, kind := range []string{"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} {
			if n := len(byKind(objs, kind)); n != 0 {
				t.Errorf("%d %s with rbac.create false", n, kind)
			}
		}
	})
}
