package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks what the image promises without building it (there
// is no Docker engine here): no HEALTHCHECK (Kubernetes probes the pod), the
// OCI labels SBOM tools read, base images pinned by digest or by an ARG that
// takes one, a multi-arch build, a non-root user, and a PostgreSQL client
// checked to have \restrict.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string // instructions, comments dropped, continuations joined
	var cur strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		if s := strings.TrimSpace(cur.String()); s != "" {
			lines = append(lines, s)
		}
		cur.Reset()
	}
	args := map[string]string{}
	var froms, labels []string
	user := ""
	for _, l := range lines {
		word, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(word) {
		case "HEALTHCHECK":
			t.Errorf("HEALTHCHECK present (%s): Kubernetes probes /healthz and /readyz", l)
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			if _, seen := args[k]; !seen || v != "" {
				args[k] = v
			}
		case "FROM":
			froms = append(froms, rest)
		case "LABEL":
			labels = append(labels, rest)
		case "USER":
			user = rest
		}
	}
	digest := regexp.MustCompile(`@sha256:[0-9a-f]{64}\b`)
	for _, f := range froms {
		img := strings.Fields(strings.TrimPrefix(f, "--platform=$BUILDPLATFORM "))[0]
		if img == "build" || digest.MatchString(img) {
			continue
		}
		m := regexp.MustCompile(`^\$\{(\w+)\}$`).FindStringSubmatch(img)
		if m == nil {
			t.Errorf("FROM %s: pin the image by digest, or name it through an ARG that can take one", f)
			continue
		}
		def, ok := args[m[1]]
		if !ok || def == "" {
			t.Errorf("FROM %s: ARG %s has no default", f, m[1])
		}
	}
	if !strings.Contains(string(b), "docker buildx imagetools inspect") {
		t.Error("the Dockerfile does not say how to pin the base images' digests")
	}
	// An unpinned base image fails the build unless explicitly allowed.
	if !strings.Contains(string(b), `case "$img" in *@sha256:*) ;;`) || !strings.Contains(string(b), "ARG ALLOW_UNPINNED=false") {
		t.Error("the build does not refuse base images without a digest")
	}
	all := strings.Join(labels, " ")
	for _, k := range []string{"title", "description", "source", "version", "revision", "created", "url", "documentation", "base.name"} {
		if !strings.Contains(all, "org.opencontainers.image."+k+"=") {
			t.Errorf("no org.opencontainers.image.%s label", k)
		}
	}
	if !strings.Contains(string(b), "--platform linux/amd64,linux/arm64") || !strings.Contains(string(b), "GOARCH=${TARGETARCH}") || !strings.Contains(string(b), "--platform=$BUILDPLATFORM") {
		t.Error("not a multi-arch build (buildx --platform, TARGETARCH, BUILDPLATFORM)")
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q: the image must run as non-root", user)
	}
	if uid := strings.Split(user, ":")[0]; uid != "10001" {
		t.Errorf("USER %s: the chart's runAsUser is 10001", user)
	}
	if !strings.Contains(string(b), "postgresql-client-15") || !strings.Contains(string(b), `dpkg --compare-versions "$v" ge 15.14`) {
		t.Error("the image must install postgresql-client-15 and check it is 15.14+ (psql with \\restrict)")
	}
}
