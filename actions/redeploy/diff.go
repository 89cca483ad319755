package redeploy

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
)

// firstDiff reports the first field of desired (in sorted key order) whose
// value the live object does not have, "" when every field the commit sets
// is live as set. Fields only the cluster sets (status, defaults, other
// managers' fields) are not compared: this is what server-side apply
// would change, without asking the API server (a dry-run apply writes on
// some test fakes, and planning must change nothing).
func firstDiff(desired, live map[string]any) string {
	d := map[string]any{}
	for k, v := range desired {
		if k == "status" {
			continue
		}
		d[k] = v
	}
	if md, ok := desired["metadata"].(map[string]any); ok {
		keep := map[string]any{}
		for _, k := range []string{"name", "namespace", "labels", "annotations"} {
			if v, ok := md[k]; ok {
				keep[k] = v
			}
		}
		d["metadata"] = keep
	}
	return diffValue("", d, live)
}

func diffValue(at string, want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return orRoot(at)
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub := k
			if at != "" {
				sub = at + "." + k
			}
			if w[k] == nil {
				if g[k] != nil {
					return sub
				}
				continue
			}
			if p := diffValue(sub, w[k], g[k]); p != "" {
				return p
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return orRoot(at)
		}
		for i := range w {
			if p := diffValue(fmt.Sprintf("%s[%d]", at, i), w[i], g[i]); p != "" {
				return p
			}
		}
		return ""
	default:
		if scalarEqual(want, got) {
			return ""
		}
		return orRoot(at)
	}
}

func orRoot(at string) string {
	if at == "" {
		return "(object)"
	}
	return at
}

// scalarEqual compares JSON scalars, numbers by value (int64 from the
// cluster, float64 or int64 from YAML).
func scalarEqual(a, b any) bool {
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case float64:
		return n, true
	case string:
		return 0, false
	}
	if s, ok := v.(fmt.Stringer); ok {
		f, err := strconv.ParseFloat(s.String(), 64)
		return f, err == nil
	}
	return 0, false
}
