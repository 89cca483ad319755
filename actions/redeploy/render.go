package redeploy

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// maxObjects bounds how many objects one redeploy applies.
const maxObjects = 500

// kustomizationNames are the file names kustomize reads as a kustomization.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// render builds the kustomization at dir of fs as `kubectl apply -k` would,
// in process. The repository is not trusted: every kustomization the build
// reaches is checked first (checkKustomizations), plugins are off (only
// kustomize's built-in generators and transformers), files load only from
// inside each kustomization root, and fs is the commit's tree in memory,
// so nothing outside the repository is read, fetched or run.
func render(fs filesys.FileSystem, dir string) ([]map[string]any, error) {
	dir = path.Join("/", dir)
	if !fs.IsDir(dir) {
		return nil, refusef("the repository has no folder %s (kubernetes.source.path)", strings.TrimPrefix(dir, "/"))
	}
	if err := checkKustomizations(fs, dir); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy // namespaces, config and services before workloads, like kubectl apply -k
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	m, err := krusty.MakeKustomizer(opts).Run(fs, dir)
	if err != nil {
		return nil, refusef("kustomize build %s failed: %s", strings.TrimPrefix(dir, "/"), firstLine(err.Error()))
	}
	var out []map[string]any
	for _, r := range m.Resources() {
		obj, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("kustomize build: %w", err)
		}
		out = append(out, obj)
		if len(out) > maxObjects {
			return nil, refusef("the kustomization renders more than %d objects; redeploy applies at most that many", maxObjects)
		}
	}
	if len(out) == 0 {
		return nil, refusef("the kustomization at %s renders no objects", strings.TrimPrefix(dir, "/"))
	}
	return out, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// kustomizationDoc is the part of a kustomization (or component) that names
// other files and folders, or asks for programs to run.
type kustomizationDoc struct {
	Resources             []string          `json:"resources"`
	Bases                 []string          `json:"bases"`
	Components            []string          `json:"components"`
	Crds                  []string          `json:"crds"`
	Configurations        []string          `json:"configurations"`
	Generators            []string          `json:"generators"`
	Transformers          []string          `json:"transformers"`
	Validators            []string          `json:"validators"`
	OpenAPI               map[string]string `json:"openapi"`
	PatchesStrategicMerge []string          `json:"patchesStrategicMerge"`
	Patches               []struct {
		Path string `json:"path"`
	} `json:"patches"`
	PatchesJSON6902 []struct {
		Path string `json:"path"`
	} `json:"patchesJson6902"`
	Replacements []struct {
		Path string `json:"path"`
	} `json:"replacements"`
	ConfigMapGenerator []generatorArgs `json:"configMapGenerator"`
	SecretGenerator    []generatorArgs `json:"secretGenerator"`
	HelmCharts         []any           `json:"helmCharts"`
	HelmGlobals        any             `json:"helmGlobals"`
	HelmInflation      []any           `json:"helmChartInflationGenerator"`
}

type generatorArgs struct {
	Files []string `json:"files"`
	Envs  []string `json:"envs"`
	Env   string   `json:"env"`
}

// checkKustomizations walks the kustomizations the build of dir reaches
// (its resources, bases, components, generators, transformers and
// validators that are folders) and refuses any reference that kustomize
// would fetch from elsewhere (a git URL, an http(s) file, an absolute path)
// and any Helm chart (kustomize runs the helm binary for those).
func checkKustomizations(fs filesys.FileSystem, dir string) error {
	seen := map[string]bool{}
	var walk func(dir string) error
	walk = func(dir string) error {
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		var raw []byte
		var file string
		for _, n := range kustomizationNames {
			p := path.Join(dir, n)
			if fs.Exists(p) && !fs.IsDir(p) {
				b, err := fs.ReadFile(p)
				if err != nil {
					return fmt.Errorf("read %s: %w", p, err)
				}
				raw, file = b, strings.TrimPrefix(p, "/")
				break
			}
		}
		if file == "" {
			return nil // kustomize refuses the folder itself
		}
		var k kustomizationDoc
		if err := yaml.Unmarshal(raw, &k); err != nil {
			return refusef("%s is not a valid kustomization: %s", file, firstLine(err.Error()))
		}
		if len(k.HelmCharts) > 0 || k.HelmGlobals != nil || len(k.HelmInflation) > 0 {
			return refusef("%s inflates Helm charts: redeploy does not run helm", file)
		}
		refs := slices.Concat(k.Resources, k.Bases, k.Components, k.Crds, k.Configurations)
		// Plugin configs (generators, transformers, validators) are
		// files, folders or inline YAML; kustomize's built-in plugins load
		// what their config names (a ConfigMapGenerator's files, a
		// PatchTransformer's path), so a config that names a URL is refused.
		for _, p := range slices.Concat(k.Generators, k.Transformers, k.Validators, k.PatchesStrategicMerge) {
			switch {
			case inline(p):
				if remoteText(p) {
					return refusef("%s has an inline plugin config or patch that refers to something outside the repository", file)
				}
			case !remote(p) && fs.Exists(path.Join(dir, p)) && !fs.IsDir(path.Join(dir, p)):
				b, err := fs.ReadFile(path.Join(dir, p))
				if err != nil {
					return fmt.Errorf("read %s: %w", p, err)
				}
				if remoteText(string(b)) {
					return refusef("%s (used by %s) refers to something outside the repository or to a Helm chart: redeploy builds only from the pinned commit", path.Join(strings.TrimPrefix(dir, "/"), p), file)
				}
			default:
				refs = append(refs, p)
			}
		}
		for _, p := range k.Patches {
			refs = append(refs, p.Path)
		}
		for _, p := range k.PatchesJSON6902 {
			refs = append(refs, p.Path)
		}
		for _, p := range k.Replacements {
			refs = append(refs, p.Path)
		}
		for _, g := range slices.Concat(k.ConfigMapGenerator, k.SecretGenerator) {
			for _, f := range g.Files {
				if _, v, ok := strings.Cut(f, "="); ok {
					f = v
				}
				refs = append(refs, f)
			}
			refs = append(refs, g.Envs...)
			refs = append(refs, g.Env)
		}
		refs = append(refs, k.OpenAPI["path"])
		for _, r := range refs {
			if r == "" {
				continue
			}
			if remote(r) {
				return refusef("%s refers to %q outside the repository: redeploy builds only from the pinned commit and fetches nothing else", file, r)
			}
		}
		for _, r := range slices.Concat(k.Resources, k.Bases, k.Components, k.Generators, k.Transformers, k.Validators) {
			sub := path.Join(dir, r)
			if fs.IsDir(sub) {
				if err := walk(sub); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(dir)
}

// remote reports whether a kustomization reference is, or could be taken
// by kustomize for, something outside the repository: a URL, a git remote
// (git::, user@host:, github.com/…), or an absolute path.
func remote(ref string) bool {
	r := strings.ToLower(strings.TrimSpace(ref))
	switch {
	case strings.Contains(r, "://"), strings.Contains(r, "::"), strings.HasPrefix(r, "/"):
		return true
	case strings.Contains(r, "@"), strings.Contains(r, ":"):
		return true
	}
	first, _, _ := strings.Cut(r, "/")
	return first == "github.com" || first == "www.github.com" || strings.Contains(r, "?ref=") || strings.Contains(r, "//") || strings.Contains(r, ".git/") || strings.HasSuffix(r, ".git") || strings.Contains(r, "_git/")
}

// inline reports whether a kustomization list entry is inline YAML or JSON
// rather than a file name.
func inline(s string) bool {
	t := strings.TrimSpace(s)
	return strings.Contains(t, "\n") || strings.HasPrefix(t, "{")
}

// remoteText reports whether plugin config text names a URL, a git remote
// or a Helm chart.
func remoteText(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "://") || strings.Contains(l, "git::") || strings.Contains(l, "github.com/") || strings.Contains(l, "helmchart")
}
