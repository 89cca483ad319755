package actions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
)

// Identity is what a plan does, without its display text: the kind, service
// and target, the steps' names and the action's Spec (the pinned facts: object
// keys, versions and ETags, sizes, target databases, records). Two plans with
// the same Identity do the same thing even when their Summary, Facts, Warnings
// or step descriptions differ (a backup's age, a name with the planning
// time). The approval still binds the whole plan (Hash): Identity is only for
// telling whether the world changed between approval and execution.
type Identity struct {
	Kind    string          `json:"kind"`
	Service string          `json:"service"`
	Target  string          `json:"target"`
	Steps   []string        `json:"steps"`
	Spec    json.RawMessage `json:"spec"`
}

// Transient is implemented by actions whose Spec holds values derived from
// the moment of planning rather than from the world, such as restore-db's
// timestamped side database name: two plans of an unchanged world differ in
// them. TransientSpec names those top-level keys of the Spec's JSON object;
// IdentityOf leaves them out.
type Transient interface {
	TransientSpec() []string
}

// IdentityOf returns p's Identity; when a implements Transient its transient
// Spec keys are left out. The Spec is canonicalised (keys sorted, compact),
// so equal facts compare equal whatever their encoding.
func IdentityOf(a Action, p Plan) (Identity, error) {
	id := Identity{Kind: p.Kind, Service: p.Service, Target: p.Target}
	for _, s := range p.Steps {
		id.Steps = append(id.Steps, s.Name)
	}
	var drop []string
	if t, ok := a.(Transient); ok {
		drop = t.TransientSpec()
	}
	spec, err := canonicalSpec(p.Spec, drop)
	if err != nil {
		return Identity{}, fmt.Errorf("identity of %s plan: %w", p.Kind, err)
	}
	id.Spec = spec
	return id, nil
}

// canonicalSpec re-encodes a JSON object with sorted keys, without drop; any
// other JSON value is compacted.
func canonicalSpec(raw json.RawMessage, drop []string) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage("null"), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	for _, k := range drop {
		delete(obj, k)
	}
	b, err := json.Marshal(obj) // map keys sorted, RawMessage values compacted
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Diff names the parts in which id and other differ: "kind", "service",
// "target", "steps", and each differing top-level key of the Spec (e.g.
// "backup"); nil when they are the same.
func (id Identity) Diff(other Identity) []string {
	var out []string
	if id.Kind != other.Kind {
		out = append(out, "kind")
	}
	if id.Service != other.Service {
		out = append(out, "service")
	}
	if id.Target != other.Target {
		out = append(out, "target")
	}
	if !slices.Equal(id.Steps, other.Steps) {
		out = append(out, "steps")
	}
	if bytes.Equal(id.Spec, other.Spec) {
		return out
	}
	var a, b map[string]json.RawMessage
	if json.Unmarshal(id.Spec, &a) != nil || json.Unmarshal(other.Spec, &b) != nil || a == nil || b == nil {
		return append(out, "spec")
	}
	var keys []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			keys = append(keys, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return append(out, keys...)
}
