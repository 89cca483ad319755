package redeploytest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Repo is a real git repository in a temporary folder, made and changed
// with the machine's git binary.
type Repo struct {
	t   testing.TB
	Dir string
}

// NewRepo makes an empty repository whose default branch is main.
func NewRepo(t testing.TB) *Repo {
	t.Helper()
	r := &Repo{t: t, Dir: t.TempDir()}
	r.Git("init", "-q", "-b", "main")
	return r
}

// URL is the repository's file:// URL.
func (r *Repo) URL() string { return "file://" + r.Dir }

// Git runs git in the repository with a minimal environment and returns
// its trimmed output.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	cmd := exec.CommandContext(context.Background(), "git", args...)
	cmd.Dir = r.Dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + r.Dir, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com", "GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write writes files (path → content) into the work tree.
func (r *Repo) Write(files map[string]string) {
	r.t.Helper()
	for p, content := range files {
		full := filepath.Join(r.Dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			r.t.Fatal(err)
		}
	}
}

// Commit writes files, commits everything and returns the commit's SHA.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	r.Write(files)
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", msg)
	return r.Git("rev-parse", "HEAD")
}

// App is a kustomization at infra/kubernetes/environments/prod (the
// runbook's layout): a base with a Deployment, a Service and a ConfigMap
// for app name, and a prod overlay setting the namespace, image tag and
// replicas.
func App(name, namespace, tag string, replicas int) map[string]string {
	return map[string]string{
		"infra/kubernetes/base/kustomization.yaml": "resources:\n  - deployment.yaml\n  - service.yaml\n  - configmap.yaml\n",
		"infra/kubernetes/base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
  labels: {app: ` + name + `}
spec:
  replicas: 1
  selector:
    matchLabels: {app: ` + name + `}
  template:
    metadata:
      labels: {app: ` + name + `}
    spec:
      containers:
        - name: api
          image: registry.example.com/` + name + `:latest
          ports:
            - containerPort: 8080
          envFrom:
            - configMapRef: {name: ` + name + `-config}
`,
		"infra/kubernetes/base/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: ` + name + `
spec:
  selector: {app: ` + name + `}
  ports:
    - port: 80
      targetPort: 8080
`,
		"infra/kubernetes/base/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: ` + name + `-config
data:
  LOG_LEVEL: info
`,
		"infra/kubernetes/environments/prod/kustomization.yaml": `namespace: ` + namespace + `
resources:
  - ../../base
images:
  - name: registry.example.com/` + name + `
    newTag: "` + tag + `"
replicas:
  - name: ` + name + `
    count: ` + strconv.Itoa(replicas) + `
`,
	}
}
