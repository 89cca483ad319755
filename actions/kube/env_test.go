package kube_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/kube/kubetest"
)

// TestNewFromEnvTalksToTheKubeconfigServer points KUBECONFIG at a small API
// server that serves one deployment, so the real REST client's get and JSON
// patch (with its test op) are exercised on the wire.
func TestNewFromEnvTalksToTheKubeconfigServer(t *testing.T) {
	var (
		mu      sync.Mutex
		patches []string
	)
	dep := kubetest.Deployment("prod", "web", 3)
	dep.APIVersion, dep.Kind = "apps/v1", "Deployment"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/apps/v1/namespaces/prod/deployments/web" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPatch {
			body, _ := io.ReadAll(r.Body)
			patches = append(patches, r.Header.Get("Content-Type")+" "+string(body))
			var ops []struct {
				Op    string `json:"op"`
				Value int32  `json:"value"`
			}
			if err := json.Unmarshal(body, &ops); err != nil || len(ops) != 2 || ops[0].Op != "test" || ops[0].Value != *dep.Spec.Replicas {
				http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Invalid","code":422}`, http.StatusUnprocessableEntity)
				return
			}
			n := ops[1].Value
			dep.Spec.Replicas = &n
			dep.Generation++
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(dep)
	}))
	defer srv.Close()
	kubeconfig := `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ` + srv.URL + `
contexts:
- name: test
  context: {cluster: test, user: test}
current-context: test
users:
- name: test
  user: {token: secret-token}
`
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", path)
	k, err := kube.NewFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	prev, err := k.Scale(ctx(t), "prod", web, 5)
	if err != nil || prev != 3 {
		t.Fatalf("Scale = %d, %v", prev, err)
	}
	w, err := k.Get(ctx(t), "prod", web)
	if err != nil || w.Replicas != 5 || w.Selector != "app=web" {
		t.Fatalf("Get = %+v, %v", w, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(patches) != 1 || !strings.HasPrefix(patches[0], "application/json-patch+json ") || !strings.Contains(patches[0], `"op":"test"`) {
		t.Fatalf("patches %q", patches)
	}
}

func TestNewFromEnvWithoutClusterFails(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := kube.NewFromEnv(); err == nil || !strings.Contains(err.Error(), "not running in a cluster") {
		t.Fatalf("NewFromEnv = %v", err)
	}
}
