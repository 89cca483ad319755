package deploytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	sigsyaml "sigs.k8s.io/yaml"
)

// Release name and namespace every render uses (the kustomize base names its
// objects the same way).
const (
	releaseName      = "drbot"
	releaseNamespace = "drbot"
)

var chartDir = filepath.Join("..", "helm", "drbot")

// object is one rendered manifest, decoded strictly into its API type.
type object struct {
	Kind, Name, Namespace string
	Obj                   any    // *appsv1.Deployment, …, or *serviceMonitor / *prometheusRule
	Source                string // template or file it came from
}

// strictDecoder decodes built-in kinds and fails on unknown or duplicate fields.
var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// decodeStream splits a multi-document YAML stream and decodes every document
// strictly: built-in kinds into their client-go types, the Prometheus
// Operator's kinds into the local structs below (unknown fields rejected).
func decodeStream(t *testing.T, source string, data []byte) []object {
	t.Helper()
	var out []object
	r := utilyaml.NewYAMLReader(bufioReader(data))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: split YAML: %v", source, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		out = append(out, decodeOne(t, source, doc))
	}
	return out
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.Bytes()
}

func decodeOne(t *testing.T, source string, doc []byte) object {
	t.Helper()
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := sigsyaml.Unmarshal(doc, &meta); err != nil {
		t.Fatalf("%s: %v\n%s", source, err, doc)
	}
	o := object{Kind: meta.Kind, Name: meta.Metadata.Name, Namespace: meta.Metadata.Namespace, Source: source}
	switch meta.APIVersion {
	case "monitoring.coreos.com/v1":
		var target any
		switch meta.Kind {
		case "ServiceMonitor":
			target = &serviceMonitor{}
		case "PrometheusRule":
			target = &prometheusRule{}
		default:
			t.Fatalf("%s: unexpected kind %s", source, meta.Kind)
		}
		js, err := sigsyaml.YAMLToJSONStrict(doc)
		if err != nil {
			t.Fatalf("%s: %s: %v", source, meta.Kind, err)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(target); err != nil {
			t.Fatalf("%s: %s %s: strict decode: %v\n%s", source, meta.Kind, o.Name, err, doc)
		}
		o.Obj = target
		return o
	}
	obj, gvk, err := strictDecoder.Decode(doc, nil, nil)
	if err != nil {
		t.Fatalf("%s: strict decode: %v\n%s", source, err, doc)
	}
	if gvk.Kind != meta.Kind {
		t.Fatalf("%s: decoded %s, manifest says %s", source, gvk.Kind, meta.Kind)
	}
	if _, ok := obj.(*runtime.Unknown); ok {
		t.Fatalf("%s: %s is not a known type", source, meta.Kind)
	}
	o.Obj = obj
	return o
}

// The Prometheus Operator CRDs, as far as the chart uses them.
type objectMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

type serviceMonitor struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type prometheusRule struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// renderChart lints the chart with vals (failing on any warning) and renders
// it as `helm template drbot deploy/helm/drbot -n drbot` would.
func renderChart(t *testing.T, vals map[string]any) []object {
	t.Helper()
	lint := action.NewLint()
	lint.Strict = true
	lint.Namespace = releaseNamespace
	res := lint.Run([]string{chartDir}, vals)
	for _, err := range res.Errors {
		t.Errorf("helm lint: %v", err)
	}
	if res.TotalChartsLinted != 1 {
		t.Fatalf("helm lint linted %d charts", res.TotalChartsLinted)
	}
	out, err := renderChartErr(vals)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	var objs []object
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		objs = append(objs, decodeStream(t, name, []byte(out[name]))...)
	}
	return objs
}

func renderChartErr(vals map[string]any) (map[string]string, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: releaseNamespace, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	return engine.Render(ch, rv)
}

// values builds a values map from YAML.
func values(t *testing.T, y string) map[string]any {
	t.Helper()
	v := map[string]any{}
	if err := sigsyaml.Unmarshal([]byte(y), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func byKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func one[T any](t *testing.T, objs []object, kind string) T {
	t.Helper()
	got := byKind(objs, kind)
	if len(got) != 1 {
		t.Fatalf("want one %s, got %d", kind, len(got))
	}
	v, ok := got[0].Obj.(T)
	if !ok {
		t.Fatalf("%s decoded as %T", kind, got[0].Obj)
	}
	return v
}
