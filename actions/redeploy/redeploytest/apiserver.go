package redeploytest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// Serve exposes the cluster over HTTP as the part of the Kubernetes API
// that redeploy uses (namespaced get, list and server-side apply), so that
// a separate drbot process can reach it through a kubeconfig (Kubeconfig)
// with client-go's real dynamic client. Calls show in c.Actions() as usual.
func (c *Cluster) Serve(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(c.serveHTTP))
	t.Cleanup(srv.Close)
	return srv
}

// Kubeconfig writes a kubeconfig for server into a temporary file and
// returns its path.
func Kubeconfig(t testing.TB, server string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "` + server + `"}}]
users: [{name: fake, user: {token: test}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *Cluster) serveHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var gvr schema.GroupVersionResource
	var rest []string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		gvr.Version, rest = parts[1], parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		gvr.Group, gvr.Version, rest = parts[1], parts[2], parts[3:]
	}
	if len(rest) < 3 || len(rest) > 4 || rest[0] != "namespaces" {
		writeErr(w, apierrors.NewNotFound(schema.GroupResource{Resource: r.URL.Path}, ""))
		return
	}
	ns := rest[1]
	gvr.Resource = rest[2]
	name := ""
	if len(rest) == 4 {
		name = rest[3]
	}
	ri := c.Resource(gvr).Namespace(ns)
	q := r.URL.Query()
	var out any
	var err error
	switch {
	case r.Method == http.MethodGet && name == "":
		var l *unstructured.UnstructuredList
		l, err = ri.List(r.Context(), metav1.ListOptions{LabelSelector: q.Get("labelSelector")})
		if err == nil {
			out = l.UnstructuredContent()
			items := make([]any, 0, len(l.Items))
			for _, it := range l.Items {
				items = append(items, it.Object)
			}
			out.(map[string]any)["items"] = items
		}
	case r.Method == http.MethodGet:
		var u *unstructured.Unstructured
		if u, err = ri.Get(r.Context(), name, metav1.GetOptions{}); err == nil {
			out = u.Object
		}
	case r.Method == http.MethodPatch && r.Header.Get("Content-Type") == "application/apply-patch+yaml" && name != "":
		var body []byte
		body, err = io.ReadAll(r.Body)
		var u unstructured.Unstructured
		if err == nil {
			err = yaml.Unmarshal(body, &u.Object)
		}
		if err == nil {
			var got *unstructured.Unstructured
			got, err = ri.Apply(r.Context(), name, &u, metav1.ApplyOptions{FieldManager: q.Get("fieldManager"), Force: q.Get("force") == "true"})
			if err == nil {
				out = got.Object
			}
		}
	default:
		err = apierrors.NewMethodNotSupported(gvr.GroupResource(), r.Method)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func writeErr(w http.ResponseWriter, err error) {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		st = apierrors.NewInternalError(err)
	}
	s := st.Status()
	s.Kind, s.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(s.Code))
	_ = json.NewEncoder(w).Encode(s)
}
