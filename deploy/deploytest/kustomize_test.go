package deploytest

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// buildKustomize runs `kustomize build dir` in process.
func buildKustomize(t *testing.T, dir string) []object {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", "kustomize", dir))
	if err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	y, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeStream(t, "kustomize "+dir, y)
}

var hashSuffix = regexp.MustCompile(`-[a-z0-9]{10}$`)

// normalize turns decoded objects into comparable JSON trees keyed by
// kind/namespace/name. The differences that are by design go: kustomize
// names the runbook ConfigMap with a content hash (its way to roll the pods
// on a change) where the chart puts a checksum annotation on the pod
// template, and `helm template` leaves the release namespace implicit.
func normalize(t *testing.T, objs []object) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, o := range objs {
		b, err := json.Marshal(o.Obj)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		meta := m["metadata"].(map[string]any)
		delete(meta, "creationTimestamp")
		ns := o.Namespace
		if ns == "" && o.Kind != "ClusterRole" && o.Kind != "ClusterRoleBinding" {
			ns = releaseNamespace
			meta["namespace"] = ns
		}
		name := o.Name
		if o.Kind == "ConfigMap" {
			name = hashSuffix.ReplaceAllString(name, "")
			meta["name"] = name
		}
		if o.Kind == "Deployment" {
			tmpl := m["spec"].(map[string]any)["template"].(map[string]any)
			tm := tmpl["metadata"].(map[string]any)
			delete(tm, "creationTimestamp")
			if ann, ok := tm["annotations"].(map[string]any); ok {
				delete(ann, "checksum/runbook")
				if len(ann) == 0 {
					delete(tm, "annotations")
				}
			}
			for _, v := range tmpl["spec"].(map[string]any)["volumes"].([]any) {
				if cm, ok := v.(map[string]any)["configMap"].(map[string]any); ok {
					cm["name"] = hashSuffix.ReplaceAllString(cm["name"].(string), "")
				}
			}
			delete(m, "status")
		}
		for _, k := range []string{"status"} {
			if s, ok := m[k].(map[string]any); ok && len(s) == 0 {
				delete(m, k)
			}
		}
		out[o.Kind+"/"+ns+"/"+name] = m
	}
	return out
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestKustomizeMatchesChart builds the kustomize base and overlays and checks
// each renders the same objects as the chart with the matching values.
func TestKustomizeMatchesChart(t *testing.T) {
	for _, c := range []struct {
		dir    string
		values string
	}{
		{"base", ""},
		{"overlays/http", "targetNamespaces: [my-app]"},
		{"overlays/socket-mode", "slack: {mode: socket}\npagerduty: {mode: poll}\ntargetNamespaces: [my-app]"},
	} {
		t.Run(c.dir, func(t *testing.T) {
			var vals map[string]any
			if c.values != "" {
				vals = values(t, c.values)
			}
			chartObjs := renderChart(t, vals)
			kustObjs := buildKustomize(t, c.dir)
			want, got := normalize(t, chartObjs), normalize(t, kustObjs)
			if !reflect.DeepEqual(keys(got), keys(want)) {
				t.Fatalf("kustomize %s renders %v; the chart renders %v", c.dir, keys(got), keys(want))
			}
			for k, w := range want {
				if !reflect.DeepEqual(got[k], w) {
					gj, _ := json.MarshalIndent(got[k], "", "  ")
					wj, _ := json.MarshalIndent(w, "", "  ")
					t.Errorf("%s differs:\nkustomize %s:\n%s\nchart:\n%s", k, c.dir, gj, wj)
				}
			}
			// Each build is also hardened and least-privilege on its own.
			checkHardened(t, one[*appsv1.Deployment](t, kustObjs, "Deployment"))
			if strings.HasPrefix(c.dir, "overlays/") {
				checkNamespacedRBAC(t, kustObjs, []string{"my-app"}, true)
			}
		})
	}
}
