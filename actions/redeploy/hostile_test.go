package redeploy_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/redeploy"
	"github.com/drbot-dev/drbot/actions/redeploy/redeploytest"
	"github.com/drbot-dev/drbot/internal/usererr"
)

const prod = "infra/kubernetes/environments/prod/"

// TestRedeployHostileRepository: repository content is not trusted. A
// kustomization that would fetch (an http(s) resource, a git remote base),
// run a program (an exec KRM function, a Helm chart) or read outside the
// repository (an absolute path, a symlink) is refused, and nothing is
// fetched, run or read; objects of a kind outside the allow-list, in
// another namespace or cluster-scoped are refused by name. The git binary
// is not on PATH while planning: reading a file:// repository runs nothing.
func TestRedeployHostileRepository(t *testing.T) {
	var hits atomic.Int64
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fetched}\n"))
	}))
	defer web.Close()
	other := redeploytest.NewRepo(t)
	other.Commit("other", redeploytest.App("other", ns, "v1", 1))
	marker := filepath.Join(t.TempDir(), "pwned")
	secretFile := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secretFile, []byte("TOP-SECRET-VALUE"), 0o600); err != nil {
		t.Fatal(err)
	}

	app := redeploytest.App("inflow-api", ns, "v1", 1)
	with := func(kust string, extra map[string]string) map[string]string {
		files := map[string]string{}
		for k, v := range app {
			files[k] = v
		}
		files[prod+"kustomization.yaml"] = kust
		for k, v := range extra {
			files[k] = v
		}
		return files
	}
	cases := []struct {
		name    string
		files   map[string]string
		symlink [2]string // link → target, made after the files
		want    string
	}{
		{name: "http resource", files: with("resources:\n  - ../../base\n  - "+web.URL+"/cm.yaml\n", nil),
			want: `refers to "` + web.URL + `/cm.yaml" outside the repository`},
		{name: "remote git base", files: with("resources:\n  - git::"+other.URL()+"//infra/kubernetes/base\n", nil),
			want: "outside the repository"},
		{name: "github base", files: with("resources:\n  - github.com/example/evil//base?ref=main\n", nil),
			want: `refers to "github.com/example/evil//base?ref=main"`},
		{name: "remote base in a base", files: with("resources:\n  - ../../base\n", map[string]string{
			"infra/kubernetes/base/kustomization.yaml": "resources:\n  - deployment.yaml\n  - https://example.com/x.yaml\n"}),
			want: `infra/kubernetes/base/kustomization.yaml refers to "https://example.com/x.yaml"`},
		{name: "remote configmap file", files: with("resources:\n  - ../../base\nconfigMapGenerator:\n  - name: x\n    files:\n      - k="+web.URL+"/f\n", nil),
			want: "outside the repository"},
		{name: "absolute path", files: with("resources:\n  - ../../base\nconfigMapGenerator:\n  - name: x\n    files:\n      - "+secretFile+"\n", nil),
			want: "outside the repository"},
		{name: "generator config naming a URL", files: with("resources:\n  - ../../base\ngenerators:\n  - cm-gen.yaml\n", map[string]string{
			prod + "cm-gen.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: fetched}\nfiles:\n  - " + web.URL + "/f\n"}),
			want: "infra/kubernetes/environments/prod/cm-gen.yaml (used by infra/kubernetes/environments/prod/kustomization.yaml) refers to something outside the repository"},
		{name: "inline transformer naming a URL", files: with("resources:\n  - ../../base\ntransformers:\n  - |\n    apiVersion: builtin\n    kind: PatchTransformer\n    metadata: {name: p}\n    path: "+web.URL+"/patch.yaml\n", nil),
			want: "has an inline plugin config or patch that refers to something outside the repository"},
		{name: "helm chart generator", files: with("resources:\n  - ../../base\ngenerators:\n  - helm.yaml\n", map[string]string{
			prod + "helm.yaml": "apiVersion: builtin\nkind: HelmChartInflationGenerator\nmetadata: {name: evil}\nchartName: evil\n"}),
			want: "or to a Helm chart"},
		{name: "helm chart", files: with("helmCharts:\n  - name: evil\n    repo: "+web.URL+"\n", nil),
			want: "inflates Helm charts: redeploy does not run helm"},
		{name: "exec function", files: with("resources:\n  - ../../base\ngenerators:\n  - gen.yaml\n", map[string]string{
			prod + "gen.yaml": "apiVersion: example.com/v1\nkind: Evil\nmetadata:\n  name: evil\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n        args: [-c, 'touch " + marker + "']\n"}),
			want: "kustomize build infra/kubernetes/environments/prod failed"},
		{name: "symlink out of the repository", files: with("resources:\n  - ../../base\nconfigMapGenerator:\n  - name: x\n    files:\n      - secret.txt\n", nil),
			symlink: [2]string{prod + "secret.txt", secretFile}, want: "kustomize build infra/kubernetes/environments/prod failed"},
		{name: "secret", files: with("namespace: "+ns+"\nresources:\n  - ../../base\n  - secret.yaml\n", map[string]string{
			prod + "secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {k: v}\n"}),
			want: "Secret/creds (Secret is not a kind redeploy applies)"},
		{name: "rbac", files: with("namespace: "+ns+"\nresources:\n  - ../../base\n  - rb.yaml\n", map[string]string{
			prod + "rb.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: own}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: default, namespace: " + ns + "}]\n"}),
			want: "RoleBinding/own (RoleBinding.rbac.authorization.k8s.io is not a kind redeploy applies)"},
		{name: "cluster-scoped", files: with("resources:\n  - ../../base\n  - ns.yaml\n", map[string]string{
			prod + "ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: evil}\n"}),
			want: "Namespace/evil (Namespace is not a kind redeploy applies)"},
		{name: "name that is no Kubernetes name", files: with("resources:\n  - ../../base\n  - cm.yaml\n", map[string]string{
			prod + "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"<!channel>\"}\n"}),
			want: "a ConfigMap whose name is not a valid Kubernetes name"},
		{name: "other namespace", files: with("resources:\n  - ../../base\n  - cm.yaml\n", map[string]string{
			prod + "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: elsewhere, namespace: kube-system}\n"}),
			want: "ConfigMap/elsewhere (namespace kube-system, not the service's inflow-prod)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := redeploytest.NewRepo(t)
			repo.Write(c.files)
			if c.symlink[0] != "" {
				if err := os.Symlink(c.symlink[1], filepath.Join(repo.Dir, c.symlink[0])); err != nil {
					t.Fatal(err)
				}
			}
			repo.Commit("hostile", nil)
			cluster := redeploytest.NewCluster(t, time.Hour)
			a := redeploy.New(config(t, repo.URL(), ""), cluster)
			t.Setenv("PATH", "") // no git, sh or helm to run
			_, err := a.Plan(context.Background(), actions.Params{Service: "inflow"})
			var rf *usererr.Refusal
			if !errors.As(err, &rf) || !strings.Contains(rf.Msg, c.want) {
				t.Fatalf("plan: %v, want a refusal containing %q", err, c.want)
			}
			if strings.Contains(rf.Msg, "TOP-SECRET") {
				t.Errorf("the refusal shows the secret file: %s", rf.Msg)
			}
			if hits.Load() != 0 {
				t.Errorf("the build fetched %d times from %s", hits.Load(), web.URL)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the exec function ran")
			}
			for _, act := range cluster.Actions() {
				if act.GetVerb() != "get" {
					t.Errorf("a refused plan made a %s call", act.GetVerb())
				}
			}
		})
	}
}

// TestRedeployTokenIsBasicAuthAndNeverShown: token_env's value goes to the
// git server as HTTP basic auth and appears in no error.
func TestRedeployTokenIsBasicAuthAndNeverShown(t *testing.T) {
	const token = "ghp_s3cr3t-token-value"
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); h != "" {
			auth.Store(h)
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(w, "denied", http.StatusForbidden)
	}))
	defer srv.Close()
	t.Setenv("INFLOW_GIT_TOKEN", token)
	cfg := config(t, srv.URL+"/example/inflow-infra.git", "")
	cfg.Services[0].Kubernetes.Source.TokenEnv = "INFLOW_GIT_TOKEN"
	a := redeploy.New(cfg, redeploytest.NewCluster(t, time.Hour))
	_, err := a.Plan(context.Background(), actions.Params{Service: "inflow"})
	if err == nil {
		t.Fatal("plan against a refusing server succeeded")
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("the error shows the token: %v", err)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("drbot:"+token))
	if got, _ := auth.Load().(string); got != want {
		t.Errorf("Authorization %q, want basic auth with the token", got)
	}
	var rf *usererr.Refusal
	if !errors.As(err, &rf) || !strings.Contains(rf.Msg, "refused the credentials") {
		t.Errorf("want a refusal about the credentials, got %v", err)
	}

	// An unset token variable is refused by name, before any request.
	t.Setenv("INFLOW_GIT_TOKEN", "")
	_, err = a.Plan(context.Background(), actions.Params{Service: "inflow"})
	if !errors.As(err, &rf) || !strings.Contains(rf.Msg, "INFLOW_GIT_TOKEN is not set or empty") {
		t.Errorf("unset token: %v", err)
	}
}

// TestRedeployLegitKustomizeFeatures: what a real overlay uses still
// builds: local generator files, inline and file patches, a component, a
// transformer config in the repository.
func TestRedeployLegitKustomizeFeatures(t *testing.T) {
	files := redeploytest.App("inflow-api", ns, "v1", 2)
	files[prod+"kustomization.yaml"] = `namespace: ` + ns + `
resources:
  - ../../base
components:
  - ../../components/debug
configMapGenerator:
  - name: inflow-files
    files:
      - settings.json
      - extra=extra.txt
generators:
  - gen.yaml
transformers:
  - labels.yaml
patches:
  - path: replicas.yaml
  - patch: |-
      - op: replace
        path: /data/LOG_LEVEL
        value: warn
    target: {kind: ConfigMap, name: inflow-api-config}
`
	files[prod+"settings.json"] = `{"a": 1}`
	files[prod+"extra.txt"] = "x"
	files[prod+"gen.yaml"] = "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: generated}\nliterals: [K=V]\n"
	files[prod+"labels.yaml"] = "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: env}\nlabels: {env: prod}\nfieldSpecs: [{path: metadata/labels, create: true}]\n"
	files[prod+"replicas.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: inflow-api}\nspec: {replicas: 3}\n"
	files["infra/kubernetes/components/debug/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nconfigMapGenerator:\n  - name: debug\n    literals: [DEBUG=1]\n"
	repo := redeploytest.NewRepo(t)
	repo.Commit("overlay", files)
	a := redeploy.New(config(t, repo.URL(), ""), redeploytest.NewCluster(t, time.Hour))
	p, err := a.Plan(context.Background(), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range spec(t, p).Objects {
		names = append(names, o.ID())
		if o.ID() == "Deployment/inflow-api" && (!strings.Contains(string(o.Manifest), `"replicas":3`) || !strings.Contains(string(o.Manifest), `"env":"prod"`)) {
			t.Errorf("deployment not patched or labelled: %s", o.Manifest)
		}
		if o.ID() == "ConfigMap/inflow-api-config" && !strings.Contains(string(o.Manifest), `"LOG_LEVEL":"warn"`) {
			t.Errorf("inline patch not applied: %s", o.Manifest)
		}
	}
	joined := strings.Join(names, " ")
	for _, want := range []string{"ConfigMap/inflow-files-", "ConfigMap/debug-", "ConfigMap/generated-", "Service/inflow-api", "Deployment/inflow-api"} {
		if !strings.Contains(joined, want) {
			t.Errorf("objects %v lack %s", names, want)
		}
	}
}

// TestRedeployUnreachableRepository: a repository that does not answer is
// refused naming it, at plan time; at execution the ref cannot be checked
// again, which is noted, and the approved commit is applied.
func TestRedeployUnreachableRepository(t *testing.T) {
	ctx := context.Background()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/example/inflow-infra.git"
	dead.Close()
	a := redeploy.New(config(t, deadURL, ""), redeploytest.NewCluster(t, time.Hour))
	_, err := a.Plan(ctx, actions.Params{Service: "inflow"})
	var rf *usererr.Refusal
	if !errors.As(err, &rf) || rf.Msg != "could not list references of "+deadURL+": the repository did not answer or refused the request (details in drbot's log)" {
		t.Fatalf("plan: %v", err)
	}

	f := newFixture(t)
	p, err := f.action.Plan(ctx, f.params)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(f.repo.Dir); err != nil { // the git server is gone
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	if err := f.action.Execute(ctx, p, j); err != nil {
		t.Fatal(err)
	}
	if notes := j.Notes(); len(notes) != 1 || !strings.Contains(notes[0], "Could not check main again (could not list references of file://") || !strings.Contains(notes[0], ": repository not found)") || !strings.Contains(notes[0], "applying the approved commit") {
		t.Errorf("notes %q", notes)
	}
}

// TestRedeployRepositoryURLs: the config loader already refuses them; the
// action refuses them too (a config built in code): ssh and other
// transports (they would use the bot's keys and agent), and a token over
// plain http to another machine; nothing is contacted.
func TestRedeployRepositoryURLs(t *testing.T) {
	t.Setenv("INFLOW_GIT_TOKEN", "tok")
	for _, c := range []struct{ repo, tokenEnv, want string }{
		{"ssh://git@example.invalid/inflow.git", "", "must be an https:// or file:// URL, not ssh://"},
		{"git@example.invalid:inflow.git", "", "must be an https:// or file:// URL, not ssh://"},
		{"git://example.invalid/inflow.git", "", "must be an https:// or file:// URL, not git://"},
		{"http://example.invalid/inflow.git", "INFLOW_GIT_TOKEN", "is plain http://: the token in INFLOW_GIT_TOKEN is only sent over https"},
	} {
		t.Run(c.repo, func(t *testing.T) {
			cfg := config(t, "https://example.invalid/inflow.git", "")
			cfg.Services[0].Kubernetes.Source.Repo = c.repo
			cfg.Services[0].Kubernetes.Source.TokenEnv = c.tokenEnv
			_, err := redeploy.New(cfg, redeploytest.NewCluster(t, time.Hour)).Plan(context.Background(), actions.Params{Service: "inflow"})
			var rf *usererr.Refusal
			if !errors.As(err, &rf) || !strings.Contains(rf.Msg, c.want) {
				t.Fatalf("plan: %v, want a refusal with %q", err, c.want)
			}
		})
	}
}
