package runbook

// The config's JSON Schema and reference documentation, generated from the
// Go types of this package: every exported field of Config (reached through
// structs, pointers, slices and maps) is a key, named by its yaml tag or else
// by the field name in snake_case (ChannelPrefix → channel_prefix, URLEnv →
// url_env, ServiceIDs → service_ids). Descriptions are the types' and
// fields' Go comments, read from the embedded sources. A key added to a
// type appears in `drbot config schema` and docs/config.md without more
// work; see docs/adr/0045-config-schema.md.

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// SchemaID is the schema's $id: where deploy/schema/drbot.schema.json is published.
const SchemaID = "https://raw.githubusercontent.com/drbot-dev/drbot/main/deploy/schema/drbot.schema.json"

// sources are the files whose comments describe the config types. A type
// declared elsewhere gets no description (TestSchemaDescribesEveryKey fails).
//
//go:embed runbook.go values.go scenarios.go playbooks.go vault.go
var sources embed.FS

// leaf is a type written as one string in the config.
type leaf struct {
	format  string // its name in docs/config.md
	desc    string
	pattern string
	example string
}

// leaves are the config's value types that parse from a string.
var leaves = map[reflect.Type]leaf{
	reflect.TypeFor[Duration](): {
		format:  "duration",
		desc:    "A duration in Go syntax: a number and a unit (ns, us, ms, s, m, h), possibly several, e.g. 90s, 15m, 1h30m, 2160h.",
		pattern: `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`,
		example: "15m",
	},
	reflect.TypeFor[Location](): {
		format:  "location",
		desc:    "Where files live: s3://bucket/prefix/ or file:///absolute/path/ (file paths may name environment variables, $VAR or ${VAR}).",
		pattern: `^(s3://[^/]+(/.*)?|file:///.*)$`,
		example: "s3://bucket/db/",
	},
	reflect.TypeFor[Expect](): {
		format:  "comparison",
		desc:    `A comparison the number must satisfy: an operator (==, !=, >, >=, <, <=) and a number, e.g. "> 0" or "== 1".`,
		pattern: `^\s*(==|!=|>=|<=|>|<)\s*\S+\s*$`,
		example: "> 0",
	},
	reflect.TypeFor[SnapshotPattern](): {
		format:  "snapshot pattern",
		desc:    "How a backups location holds one folder per run: a relative path ending with /, with exactly one * standing for one whole folder name (e.g. models-*/checkpoints/); what follows the * folder maps onto the target.",
		pattern: `^([^*/]+/)*[^*/]*\*[^*/]*/([^*/]+/)*$`,
		example: "models-*/checkpoints/",
	},
	reflect.TypeFor[WorkloadRef](): {
		format:  "workload",
		desc:    "A Kubernetes workload as kind/name: deployment/NAME or statefulset/NAME.",
		pattern: `^(deployment|statefulset)/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`,
		example: "deployment/web",
	},
}

// requiredKeys are the keys the loader reports missing, by type and Go field.
var requiredKeys = map[reflect.Type][]string{
	reflect.TypeFor[Config]():      {"Services"},
	reflect.TypeFor[Service]():     {"Name"},
	reflect.TypeFor[Escalation]():  {"Notify"},
	reflect.TypeFor[Database]():    {"Name", "URLEnv"},
	reflect.TypeFor[Backups]():     {"Location"},
	reflect.TypeFor[Check]():       {"Name", "SQL", "Expect"},
	reflect.TypeFor[Models]():      {"Backups", "Target"},
	reflect.TypeFor[HealthCheck](): {"Name"},
	reflect.TypeFor[MetricCheck](): {"URL", "Name", "Expect"},
	reflect.TypeFor[FailoverRDS](): {"Replica", "Region"},
	reflect.TypeFor[FailoverDNS](): {"ZoneID", "Record", "Type", "Value", "TTL"},
}

// oneOfKeys are groups of keys of which exactly one must be given.
var oneOfKeys = map[reflect.Type][]string{
	reflect.TypeFor[Escalation]():  {"After", "On"},
	reflect.TypeFor[HealthCheck](): {"HTTP", "Metric"},
}

// Node is one value in the config model, the common source of the JSON
// Schema and of docs/config.md. Objects with fixed keys (Go structs) are
// shared: each has one Node, referred to wherever it is used.
type Node struct {
	Type        string // object, array, string, integer, number, boolean
	Name        string // the Go type name of an object with fixed keys
	Description string // of the type (objects, leaves)
	Format      string // strings only: duration, location, … (leaf types)
	Pattern     string // strings only
	Example     string // strings only: a valid value
	Props       []Prop // objects with fixed keys, in declaration order
	OneOf       []string
	Items       *Node // arrays
	Values      *Node // objects keyed by free names (Go maps)
}

// Prop is one key of an object.
type Prop struct {
	Key         string
	Description string // what the key means (the field's comment)
	Required    bool
	Node        *Node
}

// Model returns the config model reflected from Config.
func Model() *Node {
	modelOnce.Do(func() {
		model = reflectNode(reflect.TypeFor[Config](), readDocs(), map[reflect.Type]*Node{})
	})
	return model
}

var (
	modelOnce sync.Once
	model     *Node
)

// goDocs are the Go comments of the types and their fields.
type goDocs struct {
	types  map[string]string
	fields map[string]string // "Type.Field"
}

func readDocs() goDocs {
	d := goDocs{types: map[string]string{}, fields: map[string]string{}}
	fset := token.NewFileSet()
	entries, _ := sources.ReadDir(".")
	for _, e := range entries {
		src, err := sources.ReadFile(e.Name())
		if err != nil {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), src, parser.ParseComments)
		if err != nil {
			continue
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				d.types[ts.Name.Name] = clean(doc.Text())
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					text := fld.Doc.Text()
					if fld.Comment != nil {
						text = strings.TrimSpace(text + " " + fld.Comment.Text())
					}
					for _, n := range fld.Names {
						d.fields[ts.Name.Name+"."+n.Name] = clean(text)
					}
				}
			}
		}
	}
	return d
}

// clean joins a comment's lines into one paragraph that starts with a
// capital and ends with a full stop.
func clean(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	s = string(r)
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func reflectNode(t reflect.Type, docs goDocs, seen map[reflect.Type]*Node) *Node {
	t = deref(t)
	if l, ok := leaves[t]; ok {
		return &Node{Type: "string", Format: l.format, Description: l.desc, Pattern: l.pattern, Example: l.example}
	}
	switch t.Kind() {
	case reflect.Slice:
		return &Node{Type: "array", Items: reflectNode(t.Elem(), docs, seen)}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			panic(fmt.Sprintf("runbook schema: map key %s is not a string", t.Key()))
		}
		return &Node{Type: "object", Values: reflectNode(t.Elem(), docs, seen)}
	case reflect.String:
		return &Node{Type: "string"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &Node{Type: "integer"}
	case reflect.Float32, reflect.Float64:
		return &Node{Type: "number"}
	case reflect.Bool:
		return &Node{Type: "boolean"}
	case reflect.Struct:
		if n, ok := seen[t]; ok {
			return n
		}
		n := &Node{Type: "object", Name: t.Name(), Description: docs.types[t.Name()]}
		seen[t] = n
		for i := range t.NumField() {
			f := t.Field(i)
			key := KeyOf(f)
			if !f.IsExported() || key == "-" {
				continue
			}
			desc := docs.fields[t.Name()+"."+f.Name]
			if strings.HasPrefix(desc, "Nil ") { // about Go, not about the YAML
				desc = ""
			}
			child := reflectNode(f.Type, docs, seen)
			elem := child
			for elem.Items != nil {
				elem = elem.Items
			}
			if desc == "" && elem.Name != "" {
				desc = elem.Description // the type's own doc says what the key holds
			}
			n.Props = append(n.Props, Prop{
				Key: key, Description: desc, Required: slices.Contains(requiredKeys[t], f.Name), Node: child,
			})
		}
		for _, g := range oneOfKeys[t] {
			if f, ok := t.FieldByName(g); ok {
				n.OneOf = append(n.OneOf, KeyOf(f))
			}
		}
		return n
	}
	panic(fmt.Sprintf("runbook schema: no schema for Go type %s", t))
}

// KeyOf is the config key of a struct field: its yaml tag's name, or else
// the field name in snake_case, initialisms kept whole (URLEnv → url_env,
// ServiceIDs → service_ids, TTL → ttl).
func KeyOf(f reflect.StructField) string {
	if tag, ok := f.Tag.Lookup("yaml"); ok {
		if name, _, _ := strings.Cut(tag, ","); name != "" {
			return name
		}
	}
	return snake(f.Name)
}

func snake(name string) string {
	r := []rune(name)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prevLower := unicode.IsLower(r[i-1])
			// The start of a word after an initialism: the U in "URLEnv"
			// is not, the E is; a plural "s" after one ("IDs") stays.
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1]) && (r[i+1] != 's' || i+2 != len(r))
			if prevLower || unicode.IsUpper(r[i-1]) && nextLower {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// Schema returns the JSON Schema (draft-07) of a runbook config file, as
// kept in deploy/schema/drbot.schema.json: `drbot config schema` prints it.
func Schema() []byte {
	root := Model()
	defs := map[string]any{}
	var collect func(n *Node)
	collect = func(n *Node) {
		switch {
		case n.Name != "":
			if _, ok := defs[n.Name]; ok {
				return
			}
			defs[n.Name] = nil // placeholder against cycles
			for _, p := range n.Props {
				collect(p.Node)
			}
			if n != root {
				defs[n.Name] = objectSchema(n)
			}
		case n.Items != nil:
			collect(n.Items)
		case n.Values != nil:
			collect(n.Values)
		}
	}
	collect(root)
	delete(defs, root.Name)
	s := objectSchema(root)
	s["$schema"] = "http://json-schema.org/draft-07/schema#"
	s["$id"] = SchemaID
	s["title"] = "drbot runbook config"
	s["definitions"] = defs
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		panic(fmt.Sprintf("runbook schema: %v", err))
	}
	return b.Bytes()
}

// extensionPattern matches the x- keys the loader ignores anywhere.
const extensionPattern = "^x-"

func objectSchema(n *Node) map[string]any {
	props := map[string]any{}
	var req []string
	for _, p := range n.Props {
		s := valueSchema(p.Node)
		if p.Description != "" {
			desc := p.Description
			if p.Node.Name == "" && p.Node.Description != "" {
				desc += " " + p.Node.Description // how a leaf is written
			}
			s["description"] = desc
		}
		props[p.Key] = s
		if p.Required {
			req = append(req, p.Key)
		}
	}
	s := map[string]any{
		"type":                 "object",
		"properties":           props,
		"patternProperties":    map[string]any{extensionPattern: map[string]any{}},
		"additionalProperties": false,
	}
	if n.Description != "" {
		s["description"] = n.Description
	}
	if len(req) > 0 {
		s["required"] = req
	}
	if len(n.OneOf) > 0 {
		var alts []any
		for _, k := range n.OneOf {
			alts = append(alts, map[string]any{"required": []string{k}})
		}
		s["oneOf"] = alts
	}
	return s
}

func valueSchema(n *Node) map[string]any {
	switch {
	case n.Name != "":
		return map[string]any{"$ref": "#/definitions/" + n.Name}
	case n.Items != nil:
		return map[string]any{"type": "array", "items": valueSchema(n.Items)}
	case n.Values != nil:
		return map[string]any{"type": "object", "additionalProperties": valueSchema(n.Values)}
	}
	s := map[string]any{"type": n.Type}
	if n.Pattern != "" {
		s["pattern"] = n.Pattern
	}
	if n.Description != "" {
		s["description"] = n.Description
	}
	if n.Example != "" {
		s["examples"] = []string{n.Example}
	}
	return s
}

// Docs renders the config reference (docs/config.md) from the same model
// as Schema: `drbot config docs` prints it.
func Docs() []byte {
	root := Model()
	var b bytes.Buffer
	b.WriteString(`# Runbook config reference

<!-- Generated by ` + "`drbot config docs`" + ` from the config types in runbook/; do not edit.
     TestDocsFileIsCurrent keeps it equal to the command's output. -->

The runbook config is one YAML file (` + "`--config`" + ` or ` + "`DRBOT_CONFIG`" + `);
` + "`drbot config validate FILE`" + ` checks it and names every problem with its line and key.
Unknown keys are errors. Keys starting with ` + "`x-`" + ` are ignored anywhere, which gives
YAML anchors a place to live; aliases and merge keys (` + "`<<`" + `) work.

Editors validate and complete the file from the JSON Schema
[deploy/schema/drbot.schema.json](../deploy/schema/drbot.schema.json) (` + "`drbot config schema`" + `):
put this comment on the file's first line (the path relative to the file, or the schema's URL):

` + "```yaml" + `
# yaml-language-server: $schema=../schema/drbot.schema.json
` + "```" + `

Value formats:

`)
	formats := map[string]leaf{}
	for _, l := range leaves {
		formats[l.format] = l
	}
	names := make([]string, 0, len(formats))
	for f := range formats {
		names = append(names, f)
	}
	slices.Sort(names)
	for _, f := range names {
		fmt.Fprintf(&b, "- **%s**: %s\n", f, formats[f].desc)
	}
	seen := map[*Node]bool{}
	var section func(n *Node, title string)
	var queue []*Node
	section = func(n *Node, title string) {
		fmt.Fprintf(&b, "\n## %s\n\n", title)
		if n.Description != "" {
			b.WriteString(mdEscape.Replace(n.Description) + "\n\n")
		}
		if len(n.OneOf) > 0 {
			fmt.Fprintf(&b, "Give exactly one of %s.\n\n", "`"+strings.Join(n.OneOf, "`, `")+"`")
		}
		b.WriteString("| key | type | required | description |\n|---|---|---|---|\n")
		for _, p := range n.Props {
			req := ""
			if p.Required {
				req = "yes"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", p.Key, typeName(p.Node, func(c *Node) {
				if !seen[c] {
					seen[c] = true
					queue = append(queue, c)
				}
			}), req, mdEscape.Replace(p.Description))
		}
	}
	seen[root] = true
	section(root, "Top level")
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		section(n, n.Name)
	}
	return b.Bytes()
}

// mdEscape keeps descriptions literal in a Markdown table.
var mdEscape = strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;", "*", "\\*", "_", "\\_")

// typeName writes a key's type for the docs, linking object sections
// (and calling visit for each).
func typeName(n *Node, visit func(*Node)) string {
	switch {
	case n.Name != "":
		visit(n)
		return fmt.Sprintf("[%s](#%s)", n.Name, strings.ToLower(n.Name))
	case n.Items != nil:
		return "list of " + typeName(n.Items, visit)
	case n.Values != nil:
		return "map of name → " + typeName(n.Values, visit)
	case n.Format != "":
		return n.Format
	}
	return n.Type
}
