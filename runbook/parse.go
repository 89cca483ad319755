package runbook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	pathpkg "path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads and validates the runbook config at path. Problems in the file
// are returned together as a *ValidationError whose lines start with path as
// given; other errors (the file cannot be read) are wrapped plainly.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read runbook config: %w", err)
	}
	return Parse(path, data)
}

// Parse validates a runbook config held in data. filename is only used in
// problem reports. Every problem found is returned at once as a
// *ValidationError; on success the Config has its defaults filled in.
func Parse(filename string, data []byte) (*Config, error) {
	d := &decoder{file: filename}
	root := d.document(data)
	var cfg *Config
	if root != nil {
		cfg = d.config(root)
	}
	if len(d.problems) > 0 {
		sort.SliceStable(d.problems, func(i, j int) bool { return d.problems[i].Line < d.problems[j].Line })
		probs := d.problems
		if extra := len(probs) - maxProblems + d.dropped; extra > 0 {
			probs = append(probs[:maxProblems-1:maxProblems-1], Problem{
				File: filename, Line: probs[maxProblems-2].Line,
				Msg: fmt.Sprintf("… and %d more problems", extra+1),
			})
		}
		return nil, &ValidationError{Problems: probs}
	}
	return cfg, nil
}

// maxNodes bounds the work done on one file, counting nodes reached
// through aliases every time they are used (a "billion laughs" file would
// otherwise expand forever).
const maxNodes = 200_000

// A report lists at most maxProblems lines (the last says how many more
// there are); at most maxKept problems are collected before sorting.
const (
	maxProblems = 100
	maxKept     = 10 * maxProblems
)

// decoder walks the YAML node tree along the config schema, collecting
// every problem with its line and key path.
type decoder struct {
	file     string
	problems []Problem
	dropped  int // problems past maxKept
	nodes    int
	tooLarge bool
}

func (d *decoder) addf(line int, path, format string, args ...any) {
	if len(d.problems) >= maxKept {
		d.dropped++
		return
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	yamlLineRE   = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// document parses data into a node tree and returns the top-level value,
// or nil after recording why there is none.
func (d *decoder) document(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 has panicked on malformed input before; never let a
		// config file take the bot down.
		if r := recover(); r != nil {
			d.addf(1, "", "YAML syntax error: the file could not be parsed (%v)", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.addf(1, "", "the file is empty (want the keys slack, approvals and services)")
			return nil
		}
		d.syntax(data, err)
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.addf(max(extra.Line, 1), "", "a second YAML document (after ---) is not allowed: put the whole config in one document")
	case errors.Is(err, io.EOF):
	default:
		d.syntax(data, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(d.resolve(doc.Content[0])) {
		d.addf(1, "", "the file is empty (want the keys slack, approvals and services)")
		return nil
	}
	return doc.Content[0]
}

// syntax records a YAML syntax error with the line it happened on.
func (d *decoder) syntax(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	// yaml.v3 prints no line for marks on line 1.
	line := 1
	reported := false
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			line, reported = n, true
		}
		msg = m[2]
	}
	switch {
	case isParserProblem(msg):
		// Parser (not scanner) errors carry the 0-based line of the
		// construct being parsed, not of the problem: find the problem.
		start := line
		if reported {
			start = line + 1
		}
		line = problemLine(data, msg, start)
		if strings.HasPrefix(msg, "did not find expected ',' or") && line != start {
			msg += fmt.Sprintf(" (in the [ ] or { } opened on line %d)", start)
		}
	case yamlAnchorRE.MatchString(msg):
		name := yamlAnchorRE.FindStringSubmatch(msg)[1]
		if i := bytes.Index(data, []byte("*"+name)); i >= 0 {
			line = 1 + bytes.Count(data[:i], []byte("\n"))
		}
		msg = fmt.Sprintf("alias *%s refers to an anchor &%s that is not defined above it", name, name)
	}
	d.addf(line, "", "YAML syntax error: %s", msg)
}

// isParserProblem reports whether msg comes from yaml.v3's parser (whose
// line numbers point at the enclosing construct) rather than its scanner.
func isParserProblem(msg string) bool {
	for _, p := range []string{"did not find expected", "found undefined tag handle", "found duplicate %", "found incompatible YAML document"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// problemLine returns the first line n >= start such that the file cut
// after line n fails with the same message: the line the parser stumbled
// on. It gives up (returning start) after a bounded amount of work.
func problemLine(data []byte, msg string, start int) int {
	const budget = 4 << 20
	spent := 0
	lines := bytes.SplitAfter(data, []byte("\n"))
	for n := max(start, 1); n <= len(lines); n++ {
		prefix := bytes.Join(lines[:n], nil)
		if spent += len(prefix); spent > budget {
			break
		}
		var node yaml.Node
		err := yaml.Unmarshal(prefix, &node)
		if err == nil {
			continue
		}
		got := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRE.FindStringSubmatch(got); m != nil {
			got = m[2]
		}
		if got == msg {
			return n
		}
	}
	return start
}

// resolve follows aliases to the node they name.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 64 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// spend charges n nodes against the budget and reports whether work may go on.
func (d *decoder) spend(n int, line int, path string) bool {
	d.nodes += n
	if d.nodes <= maxNodes {
		return true
	}
	if !d.tooLarge {
		d.tooLarge = true
		d.addf(line, path, "the config is too large (more than %d YAML nodes once aliases are expanded)", maxNodes)
	}
	return false
}

// describe names a node's type for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "null"
	default:
		return fmtQuote(n.Value)
	}
}

func child(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// extensionPrefix starts keys that are ignored anywhere in the config, so
// that YAML anchors can be defined outside the schema (as in Compose files).
const extensionPrefix = "x-"

// fields is a decoded mapping: its known keys and their (alias-resolved) values.
type fields struct {
	d       *decoder
	path    string
	line    int
	vals    map[string]*yaml.Node
	keyLine map[string]int
}

// mapping decodes n as a mapping with the given known keys, reporting
// unknown and duplicate keys. It returns nil when n is absent or null
// (nothing to report) or not a mapping (reported).
func (d *decoder) mapping(n *yaml.Node, path string, known ...string) *fields {
	n = d.resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.addf(n.Line, path, "want a mapping with keys %s, got %s", strings.Join(known, ", "), describe(n))
		return nil
	}
	f := &fields{d: d, path: path, line: n.Line, vals: map[string]*yaml.Node{}, keyLine: map[string]int{}}
	d.collect(f, n, known, 0)
	return f
}

// collect adds n's keys to f; keys already present win (YAML merge keys
// "<<: *anchor" fill in only what the mapping does not set itself).
func (d *decoder) collect(f *fields, n *yaml.Node, known []string, depth int) {
	if !d.spend(len(n.Content), n.Line, f.path) {
		return
	}
	var merges []*yaml.Node
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.addf(n.Content[i].Line, f.path, "keys must be plain words, got %s", describe(k))
			continue
		}
		key := k.Value
		if key == "<<" && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if strings.HasPrefix(key, extensionPrefix) {
			continue // a place to keep YAML anchors; ignored
		}
		if !slices.Contains(known, key) {
			if s := suggest(key, known); s != "" {
				d.addf(k.Line, child(f.path, key), "unknown key %q (did you mean %q?)", key, s)
			} else {
				d.addf(k.Line, child(f.path, key), "unknown key %q (known keys here: %s)", key, strings.Join(known, ", "))
			}
			continue
		}
		if first, dup := seen[key]; dup {
			d.addf(k.Line, child(f.path, key), "duplicate key (first at line %d)", first)
			continue
		}
		seen[key] = k.Line
		if depth > 0 {
			if _, set := f.vals[key]; set {
				continue
			}
		}
		f.vals[key] = d.resolve(v)
		f.keyLine[key] = k.Line
	}
	for _, m := range merges {
		m = d.resolve(m)
		if depth > 8 {
			d.addf(m.Line, f.path, "merge keys (<<) nested too deeply")
			return
		}
		switch {
		case m != nil && m.Kind == yaml.MappingNode:
			d.collect(f, m, known, depth+1)
		case m != nil && m.Kind == yaml.SequenceNode:
			for _, item := range m.Content {
				item = d.resolve(item)
				if item == nil || item.Kind != yaml.MappingNode {
					d.addf(m.Line, f.path, "a merge key (<<) takes an alias of a mapping, got %s", describe(item))
					continue
				}
				d.collect(f, item, known, depth+1)
			}
		default:
			line := n.Line
			if m != nil {
				line = m.Line
			}
			d.addf(line, f.path, "a merge key (<<) takes an alias of a mapping, got %s", describe(m))
		}
	}
}

// sub decodes key's value as a mapping; problems about keys missing from it
// are reported on the line of key itself.
func (f *fields) sub(key string, known ...string) *fields {
	if f == nil {
		return nil
	}
	m := f.d.mapping(f.get(key), child(f.path, key), known...)
	if m != nil {
		m.line = f.lineOf(key)
	}
	return m
}

// get returns the value of key, or nil when it is absent or null.
func (f *fields) get(key string) *yaml.Node {
	if f == nil || isNull(f.vals[key]) {
		return nil
	}
	return f.vals[key]
}

func (f *fields) has(key string) bool { return f.get(key) != nil }

// lineOf is the line to blame for key: its own when present, else the mapping's.
func (f *fields) lineOf(key string) int {
	if l, ok := f.keyLine[key]; ok {
		return l
	}
	return f.line
}

func (f *fields) missing(key, hint string) {
	f.d.addf(f.lineOf(key), child(f.path, key), "missing (%s)", hint)
}

// str returns key's scalar value and whether the key is set.
func (f *fields) str(key string) (string, bool) {
	if f == nil {
		return "", false
	}
	return f.d.scalar(f.get(key), child(f.path, key))
}

// required returns key's scalar value, reporting it as missing when it is
// absent or empty.
func (f *fields) required(key, hint string) (string, bool) {
	if f == nil {
		return "", false
	}
	n := f.get(key)
	if n == nil {
		f.missing(key, hint)
		return "", false
	}
	s, ok := f.d.scalar(n, child(f.path, key))
	if !ok {
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		f.d.addf(n.Line, child(f.path, key), "must not be empty (%s)", hint)
		return "", false
	}
	return s, true
}

// check runs validate on key's value when it is set, reporting its error.
func (f *fields) check(key string, validate func(string) error) (string, bool) {
	s, ok := f.str(key)
	if !ok {
		return "", false
	}
	if err := validate(s); err != nil {
		f.d.addf(f.get(key).Line, child(f.path, key), "%s", err.Error())
		return "", false
	}
	return s, true
}

// duration decodes key as a positive Go duration; zero when absent.
func (f *fields) duration(key string) Duration {
	s, ok := f.str(key)
	if !ok {
		return Duration{}
	}
	line, path := f.get(key).Line, child(f.path, key)
	v, err := ParseDuration(s)
	if err != nil {
		f.d.addf(line, path, "%s", err.Error())
		return Duration{}
	}
	if v.Duration <= 0 {
		f.d.addf(line, path, "must be positive, got %s", fmtQuote(s))
		return Duration{}
	}
	return v
}

// integer decodes key as a whole number; ok is false when absent or bad.
func (f *fields) integer(key string) (int, bool) {
	s, ok := f.str(key)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		f.d.addf(f.get(key).Line, child(f.path, key), "%s is not a whole number", fmtQuote(s))
		return 0, false
	}
	return v, true
}

// location decodes key as a backup location.
func (f *fields) location(key string) (Location, bool) {
	s, ok := f.str(key)
	if !ok {
		return Location{}, false
	}
	l, err := ParseLocation(s)
	if err != nil {
		f.d.addf(f.get(key).Line, child(f.path, key), "%s", err.Error())
		return Location{}, false
	}
	return l, true
}

// expect decodes key as an expectation such as "> 0".
func (f *fields) expect(key string) (Expect, bool) {
	s, ok := f.str(key)
	if !ok {
		return Expect{}, false
	}
	e, err := ParseExpect(s)
	if err != nil {
		f.d.addf(f.get(key).Line, child(f.path, key), "%s", err.Error())
		return Expect{}, false
	}
	return e, true
}

// list returns key's items (alias-resolved), reporting a non-list value.
func (f *fields) list(key string) []*yaml.Node {
	if f == nil {
		return nil
	}
	return f.d.list(f.get(key), child(f.path, key))
}

// strings decodes key as a list of strings, validating each item.
func (f *fields) strings(key string, validate func(string) error) []string {
	items := f.list(key)
	var out []string
	for i, n := range items {
		p := index(child(f.path, key), i)
		s, ok := f.d.scalar(n, p)
		if !ok {
			if isNull(n) {
				f.d.addf(n.Line, p, "empty list item")
			}
			continue
		}
		if validate != nil {
			if err := validate(s); err != nil {
				f.d.addf(n.Line, p, "%s", err.Error())
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

// workloads decodes key as a list of kind/name workload references.
func (f *fields) workloads(key string) []WorkloadRef {
	var out []WorkloadRef
	for i, n := range f.list(key) {
		p := index(child(f.path, key), i)
		s, ok := f.d.scalar(n, p)
		if !ok {
			continue
		}
		w, err := ParseWorkloadRef(s)
		if err != nil {
			f.d.addf(n.Line, p, "%s", err.Error())
			continue
		}
		out = append(out, w)
	}
	return out
}

// scalar returns n's value; ok is false when n is absent or null, or when
// it is a list or mapping (reported).
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	n = d.resolve(n)
	if isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.addf(n.Line, path, "want a single value, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// list returns n's items (alias-resolved), reporting a non-list value.
func (d *decoder) list(n *yaml.Node, path string) []*yaml.Node {
	n = d.resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		if n.Kind == yaml.ScalarNode {
			d.addf(n.Line, path, "want a list, got the single value %s (write [%s])", fmtQuote(n.Value), n.Value)
		} else {
			d.addf(n.Line, path, "want a list, got %s", describe(n))
		}
		return nil
	}
	if !d.spend(len(n.Content), n.Line, path) {
		return nil
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, item := range n.Content {
		if r := d.resolve(item); r != nil {
			out = append(out, r)
		} else {
			d.addf(item.Line, path, "alias chain too long")
		}
	}
	return out
}

// The top-level schema.

var (
	serviceNameRE   = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`)
	channelPrefixRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$`)
	commandNameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	envNameRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	slackIDRE       = regexp.MustCompile(`^[UWS][A-Z0-9]{2,}$`)
	emailRE         = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	dns1123LabelRE  = regexp.MustCompile(`^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$`)
	awsRegionRE     = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-[0-9]+$`)
	metricNameRE    = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
)

// maxChannelName is Slack's limit on channel names.
const maxChannelName = 80

// channelSuffixRoom is what a channel name needs besides prefix and service:
// two hyphens, yyyymmdd, and room for a "-99" collision suffix.
const channelSuffixRoom = 2 + 8 + 3

func (d *decoder) config(n *yaml.Node) *Config {
	cfg := &Config{}
	f := d.mapping(n, "", "slack", "approvals", "services")
	cfg.Slack = d.slack(f.sub("slack", "channel_prefix", "announce_channel", "approvers", "requesters", "responders"))
	cfg.Approvals = d.approvals(f.sub("approvals", "required", "expires_after", "commands"))
	if f == nil {
		return cfg
	}
	if !f.has("services") {
		f.missing("services", "want a list of services, each with at least a name")
		return cfg
	}
	items := f.list("services")
	if f.get("services").Kind == yaml.SequenceNode && len(items) == 0 {
		d.addf(f.get("services").Line, "services", "want at least one service")
	}
	names := map[string]int{}
	pdIDs := map[string]pdOwner{}
	for i, item := range items {
		path := index("services", i)
		svc := d.service(item, i, path, cfg.Slack.ChannelPrefix, pdIDs)
		if svc.Name != "" {
			if first, dup := names[svc.Name]; dup {
				d.addf(item.Line, child(path, "name"), "duplicate service name %q (first at line %d)", svc.Name, first)
			} else {
				names[svc.Name] = item.Line
			}
		}
		cfg.Services = append(cfg.Services, svc)
	}
	return cfg
}

func (d *decoder) slack(f *fields) Slack {
	s := Slack{ChannelPrefix: DefaultChannelPrefix}
	if v, ok := f.check("channel_prefix", func(v string) error {
		if !channelPrefixRE.MatchString(v) || len(v) > 40 {
			return fmt.Errorf("%s is not a valid channel name prefix: use at most 40 lowercase letters, digits, hyphens or underscores", fmtQuote(v))
		}
		return nil
	}); ok {
		s.ChannelPrefix = v
	}
	s.AnnounceChannel, _ = f.check("announce_channel", func(v string) error {
		if v == "" || strings.ContainsFunc(v, isSpace) {
			return fmt.Errorf("%s is not a channel: use a channel id such as C0INCIDENTS", fmtQuote(v))
		}
		return nil
	})
	s.Approvers = f.strings("approvers", checkContact)
	s.Requesters = d.people(f, "requesters")
	s.Responders = d.people(f, "responders")
	return s
}

func (d *decoder) approvals(f *fields) Approvals {
	a := Approvals{Required: DefaultApprovals, ExpiresAfter: Duration{DefaultApprovalExpiry}}
	if f == nil {
		return a
	}
	path := f.path
	if v, ok := f.integer("required"); ok {
		if v < 1 {
			d.addf(f.get("required").Line, child(path, "required"), "must be at least 1, got %d (approvals come from people other than the requester)", v)
		} else {
			a.Required = v
		}
	}
	if v := f.duration("expires_after"); v.Duration > 0 {
		a.ExpiresAfter = v
	}
	cn := f.get("commands")
	if cn == nil {
		return a
	}
	cpath := child(path, "commands")
	if cn.Kind != yaml.MappingNode {
		d.addf(cn.Line, cpath, "want a mapping from command name to {required, expires_after}, got %s", describe(cn))
		return a
	}
	if !d.spend(len(cn.Content), cn.Line, cpath) {
		return a
	}
	a.Commands = map[string]CommandApprovals{}
	for i := 0; i+1 < len(cn.Content); i += 2 {
		k := d.resolve(cn.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode {
			d.addf(cn.Content[i].Line, cpath, "keys must be command names, got %s", describe(k))
			continue
		}
		name, p := k.Value, child(cpath, k.Value)
		if !commandNameRE.MatchString(name) {
			d.addf(k.Line, p, "%s is not a command name (want e.g. failover or restore-db)", fmtQuote(name))
			continue
		}
		if _, dup := a.Commands[name]; dup {
			d.addf(k.Line, p, "duplicate command")
			continue
		}
		cf := d.mapping(cn.Content[i+1], p, "required", "expires_after")
		if cf != nil {
			cf.line = k.Line
		}
		var c CommandApprovals
		if v, ok := cf.integer("required"); ok {
			if v < 1 {
				d.addf(cf.get("required").Line, child(p, "required"), "must be at least 1, got %d", v)
			} else {
				c.Required = v
			}
		}
		c.ExpiresAfter = cf.duration("expires_after")
		a.Commands[name] = c
	}
	return a
}

type pdOwner struct {
	service string // "" when the owner's name is invalid
	index   int
	path    string
	line    int
}

func (d *decoder) service(n *yaml.Node, svcIndex int, path, prefix string, pdIDs map[string]pdOwner) Service {
	var s Service
	f := d.mapping(n, path, "name", "pagerduty", "objectives", "escalation", "databases", "models", "kubernetes", "failover", "health", "drills", "scenarios", "playbooks", "vault")
	if f == nil {
		if isNull(d.resolve(n)) {
			d.addf(n.Line, path, "empty service (want at least a name)")
		}
		return s
	}
	if name, ok := f.required("name", "a short lowercase name such as lstm-pfd; it becomes part of the incident channel name"); ok {
		line := f.get("name").Line
		maxLen := maxChannelName - len(prefix) - channelSuffixRoom
		switch {
		case !serviceNameRE.MatchString(name):
			d.addf(line, child(path, "name"), "%s is not a valid service name: use lowercase letters, digits and hyphens (it becomes part of the channel name %s-<name>-<yyyymmdd>)", fmtQuote(name), prefix)
		case len(name) > maxLen:
			d.addf(line, child(path, "name"), "%s is too long: at most %d characters, so that the channel name %s-<name>-<yyyymmdd> fits in Slack's %d", fmtQuote(name), maxLen, prefix, maxChannelName)
		default:
			s.Name = name
		}
	}

	if pf := f.sub("pagerduty", "service_ids", "escalation_policy_id"); pf != nil {
		validID := checkToken("a PagerDuty service id such as PLSTMPF")
		for i, item := range pf.list("service_ids") {
			p := index(child(pf.path, "service_ids"), i)
			id, ok := d.scalar(item, p)
			if !ok {
				continue
			}
			if err := validID(id); err != nil {
				d.addf(item.Line, p, "%s", err.Error())
				continue
			}
			if prev, dup := pdIDs[id]; dup {
				owner := "this service"
				if prev.index != svcIndex {
					owner = fmt.Sprintf("service %q", prev.service)
					if prev.service == "" {
						owner = prev.path
					}
				}
				d.addf(item.Line, p, "PagerDuty service %q is already mapped to %s (line %d); each PagerDuty service maps to one runbook service", id, owner, prev.line)
				continue
			}
			pdIDs[id] = pdOwner{service: s.Name, index: svcIndex, path: path, line: item.Line}
			s.PagerDuty.ServiceIDs = append(s.PagerDuty.ServiceIDs, id)
		}
		s.PagerDuty.EscalationPolicyID, _ = pf.check("escalation_policy_id", checkToken("a PagerDuty escalation policy id such as PESCLST"))
	}

	of := f.sub("objectives", "rto", "rpo")
	s.Objectives.RTO = of.duration("rto")
	s.Objectives.RPO = of.duration("rpo")

	for i, item := range f.list("escalation") {
		s.Escalation = append(s.Escalation, d.escalation(item, index(child(path, "escalation"), i)))
	}

	dbNames := map[string]int{}
	for i, item := range f.list("databases") {
		db := d.database(item, index(child(path, "databases"), i))
		if db.Name != "" {
			if first, dup := dbNames[db.Name]; dup {
				d.addf(item.Line, child(db.path, "name"), "duplicate database name %q in this service (first at line %d)", db.Name, first)
			}
			dbNames[db.Name] = item.Line
		}
		s.Databases = append(s.Databases, db)
	}

	var modelsVerify []*yaml.Node // checked against health: below
	if mf := f.sub("models", "backups", "snapshots", "every", "target", "restart", "verify"); mf != nil {
		m := &Models{}
		if mf.has("backups") {
			m.Backups, _ = mf.location("backups")
		} else {
			mf.missing("backups", "where model backups are, e.g. s3://bucket/models/")
		}
		if mf.has("target") {
			m.Target, _ = mf.location("target")
		} else {
			mf.missing("target", "where the service loads its models from, e.g. s3://bucket/checkpoints/")
		}
		m.Restart = mf.workloads("restart")
		if v, ok := mf.str("snapshots"); ok {
			if sp, err := ParseSnapshotPattern(v); err != nil {
				d.addf(mf.get("snapshots").Line, child(mf.path, "snapshots"), "%s", err.Error())
			} else {
				m.Snapshots = &sp
			}
		}
		m.Every = mf.duration("every")
		modelsVerify = mf.list("verify")
		s.Models = m
	}

	if kf := f.sub("kubernetes", "namespace", "selector", "source"); kf != nil {
		k := &Kubernetes{Namespace: DefaultNamespace}
		if ns, ok := kf.check("namespace", func(v string) error {
			if len(v) > 63 || !dns1123LabelRE.MatchString(v) {
				return fmt.Errorf("%s is not a valid Kubernetes namespace (lowercase letters, digits and hyphens, at most 63)", fmtQuote(v))
			}
			return nil
		}); ok {
			k.Namespace = ns
		}
		k.Selector, _ = kf.check("selector", checkSelector)
		k.Source = d.gitSource(kf.sub("source", "repo", "ref", "path", "token_env"))
		s.Kubernetes = k
	}

	s.Failover = d.failover(f.sub("failover", "rds", "dns", "health"))

	healthNames := map[string]int{}
	for i, item := range f.list("health") {
		p := index(child(path, "health"), i)
		h, ok := d.health(item, p)
		if !ok {
			continue
		}
		if first, dup := healthNames[h.Name]; dup {
			d.addf(item.Line, child(p, "name"), "duplicate health check name %q in this service (first at line %d)", h.Name, first)
		}
		healthNames[h.Name] = item.Line
		s.Health = append(s.Health, h)
	}

	for i, item := range modelsVerify {
		p := index(child(child(path, "models"), "verify"), i)
		if name, ok := d.scalar(item, p); ok {
			if _, known := healthNames[name]; !known {
				d.addf(item.Line, p, "%s is not a health check of this service (its health: names are %s)", fmtQuote(name), quotedNames(s.Health))
				continue
			}
			s.Models.Verify = append(s.Models.Verify, name)
		}
	}

	s.Vault = d.vault(f.sub("vault", "address_env", "token_env", "snapshots", "every", "verify"))
	s.Playbooks = d.playbooks(f, path)
	d.playbookTargets(&s)
	s.Scenarios = d.scenarios(f, path, n)
	s.Drills = d.drills(f.sub("drills", "every", "plan", "approval"), &s)
	return s
}

// gitSource decodes kubernetes.source.
func (d *decoder) gitSource(f *fields) *GitSource {
	if f == nil {
		return nil
	}
	g := &GitSource{Ref: "main"}
	if v, ok := f.required("repo", "the repository URL, e.g. https://github.com/example/infra.git"); ok {
		u, err := url.Parse(v)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file"):
			d.addf(f.get("repo").Line, child(f.path, "repo"), "%s is not a repository URL (want https://host/owner/repo.git, or file:///path for a local repository)", fmtQuote(v))
		case u.User != nil:
			d.addf(f.get("repo").Line, child(f.path, "repo"), "the repository URL must not carry credentials; name the variable holding the token in token_env")
		default:
			g.Repo = v
		}
	}
	if v, ok := f.check("ref", func(v string) error {
		if strings.TrimSpace(v) == "" || strings.ContainsAny(v, " \t~^:?*[\\") || strings.HasPrefix(v, "-") || strings.Contains(v, "..") {
			return fmt.Errorf("%s is not a git branch, tag or commit", fmtQuote(v))
		}
		return nil
	}); ok {
		g.Ref = v
	}
	if v, ok := f.required("path", "the kustomization's folder in the repository, e.g. infra/kubernetes/environments/prod"); ok {
		clean := pathpkg.Clean(v)
		if pathpkg.IsAbs(v) || clean == ".." || strings.HasPrefix(clean, "../") {
			d.addf(f.get("path").Line, child(f.path, "path"), "%s must be a folder inside the repository (relative, without ..)", fmtQuote(v))
		} else {
			g.Path = clean
		}
	}
	g.TokenEnv, _ = f.check("token_env", func(v string) error {
		if !envNameRE.MatchString(v) {
			return fmt.Errorf("%s is not an environment variable name (name the variable holding the token; never put the token here)", fmtQuote(v))
		}
		return nil
	})
	return g
}

// drills decodes a service's drills mapping; plan procedures must be action
// kinds or the service's playbooks.
func (d *decoder) drills(f *fields, s *Service) Drills {
	var dr Drills
	if f == nil {
		return dr
	}
	dr.Every = f.duration("every")
	if v, ok := f.str("approval"); ok {
		switch v {
		case "true":
			dr.Approval = true
		case "false":
		default:
			d.addf(f.get("approval").Line, child(f.path, "approval"), "want true or false, got %s", fmtQuote(v))
		}
	}
	seen := map[int]int{}
	for i, item := range f.list("plan") {
		p := index(child(f.path, "plan"), i)
		qf := d.mapping(item, p, "quarter", "procedure")
		if qf == nil {
			if isNull(d.resolve(item)) {
				d.addf(item.Line, p, "empty plan row (want quarter and procedure)")
			}
			continue
		}
		var q DrillQuarter
		if !qf.has("quarter") {
			qf.missing("quarter", "1, 2, 3 or 4")
		} else if v, ok := qf.integer("quarter"); ok {
			if v < 1 || v > 4 {
				d.addf(qf.get("quarter").Line, child(p, "quarter"), "want 1, 2, 3 or 4, got %d", v)
			} else if first, dup := seen[v]; dup {
				d.addf(qf.get("quarter").Line, child(p, "quarter"), "quarter %d is already planned (line %d)", v, first)
			} else {
				seen[v] = qf.get("quarter").Line
				q.Quarter = v
			}
		}
		if v, ok := qf.required("procedure", "an action (restore-db, …) or a playbook of this service"); ok {
			_, isPlaybook := s.Playbook(v)
			if slices.Contains(ActionKinds, v) || isPlaybook {
				q.Procedure = v
			} else {
				known := slices.Clone(ActionKinds)
				for _, pb := range s.Playbooks {
					known = append(known, pb.Name)
				}
				d.addf(qf.get("procedure").Line, child(p, "procedure"), "%s is neither an action nor one of this service's playbooks (want one of %s)", fmtQuote(v), strings.Join(known, ", "))
			}
		}
		dr.Plan = append(dr.Plan, q)
	}
	return dr
}

func (d *decoder) escalation(n *yaml.Node, path string) Escalation {
	var e Escalation
	f := d.mapping(n, path, "after", "on", "role", "notify")
	if f == nil {
		if isNull(d.resolve(n)) {
			d.addf(n.Line, path, "empty escalation (want after or on, role and notify)")
		}
		return e
	}
	hasAfter, hasOn := f.has("after"), f.has("on")
	switch {
	case hasAfter && hasOn:
		d.addf(f.line, path, "has both after and on: use after for a delay since the incident opened, or on for an event (%s), not both", EventSecurity)
	case !hasAfter && !hasOn:
		d.addf(f.line, path, "needs after (a delay since the incident opened, e.g. 15m) or on (an event: %s)", EventSecurity)
	}
	e.After = f.duration("after")
	e.On, _ = f.check("on", func(v string) error {
		if v != EventSecurity {
			return fmt.Errorf("%s is not a known event (known: %s)", fmtQuote(v), EventSecurity)
		}
		return nil
	})
	e.Role, _ = f.str("role")
	if !f.has("notify") {
		f.missing("notify", "who to notify: Slack user ids, user group ids or e-mail addresses")
	} else {
		e.Notify = f.strings("notify", checkContact)
	}
	return e
}

func (d *decoder) database(n *yaml.Node, path string) Database {
	db := Database{path: path}
	f := d.mapping(n, path, "name", "url_env", "backups", "writers", "checks", "wait_for")
	if f == nil {
		if isNull(d.resolve(n)) {
			d.addf(n.Line, path, "empty database (want at least name and url_env)")
		}
		return db
	}
	db.Name, _ = f.required("name", "the database name, e.g. lstm_pfd")
	if v, ok := f.required("url_env", "the name of the environment variable that holds the database URL, e.g. LSTM_PFD_DATABASE_URL"); ok {
		if envNameRE.MatchString(v) {
			db.URLEnv = v
		} else {
			d.addf(f.get("url_env").Line, child(path, "url_env"), "%s is not an environment variable name (name the variable, e.g. LSTM_PFD_DATABASE_URL; never put the URL itself here)", fmtQuote(v))
		}
	}
	if bf := f.sub("backups", "location", "every"); bf != nil {
		b := &Backups{}
		if bf.has("location") {
			b.Location, _ = bf.location("location")
		} else {
			bf.missing("location", "where the backups are, e.g. s3://bucket/db/ or file:///var/backups/db/")
		}
		b.Every = bf.duration("every")
		db.Backups = b
	}
	db.Writers = f.workloads("writers")
	db.WaitFor, _ = f.check("wait_for", checkSelector)
	checkNames := map[string]int{}
	for i, item := range f.list("checks") {
		p := index(child(path, "checks"), i)
		cf := d.mapping(item, p, "name", "sql", "expect")
		if cf == nil {
			if isNull(item) {
				d.addf(item.Line, p, "empty check (want name, sql and expect)")
			}
			continue
		}
		var c Check
		c.Name, _ = cf.required("name", "a short description, e.g. experiments present")
		c.SQL, _ = cf.required("sql", "a query returning one number, e.g. SELECT COUNT(*) FROM experiments")
		if cf.has("expect") {
			c.Expect, _ = cf.expect("expect")
		} else {
			cf.missing("expect", `what the number must be, e.g. "> 0"`)
		}
		if c.Name != "" {
			if first, dup := checkNames[c.Name]; dup {
				d.addf(item.Line, child(p, "name"), "duplicate check name %q in this database (first at line %d)", c.Name, first)
			}
			checkNames[c.Name] = item.Line
		}
		db.Checks = append(db.Checks, c)
	}
	return db
}

func (d *decoder) failover(f *fields) *Failover {
	if f == nil {
		return nil
	}
	path := f.path
	fo := &Failover{}
	if rf := f.sub("rds", "replica", "region"); rf != nil {
		r := &FailoverRDS{}
		r.Replica, _ = rf.required("replica", "the read replica's DB instance identifier, e.g. inflow-secondary")
		if v, ok := rf.required("region", "the replica's AWS region, e.g. us-west-2"); ok {
			if awsRegionRE.MatchString(v) {
				r.Region = v
			} else {
				d.addf(rf.get("region").Line, child(rf.path, "region"), "%s is not an AWS region (want e.g. us-west-2)", fmtQuote(v))
			}
		}
		fo.RDS = r
	}
	if nf := f.sub("dns", "zone_id", "record", "type", "value", "ttl"); nf != nil {
		r := &FailoverDNS{}
		r.ZoneID, _ = nf.required("zone_id", "the Route53 hosted zone id, e.g. Z0INFLOWAI")
		r.Record, _ = nf.required("record", "the record name, e.g. api.inflow.ai")
		if v, ok := nf.required("type", "A, AAAA or CNAME"); ok {
			switch v {
			case "A", "AAAA", "CNAME":
				r.Type = v
			default:
				d.addf(nf.get("type").Line, child(nf.path, "type"), "%s is not a supported record type (want A, AAAA or CNAME)", fmtQuote(v))
			}
		}
		r.Value, _ = nf.required("value", "what the record points to after the failover, e.g. api.us-west-2.inflow.ai")
		if !nf.has("ttl") {
			nf.missing("ttl", "the record's TTL in seconds, e.g. 60")
		} else if v, ok := nf.integer("ttl"); ok {
			if v < 1 || v > 2147483647 {
				d.addf(nf.get("ttl").Line, child(nf.path, "ttl"), "must be a number of seconds from 1 to 2147483647, got %d", v)
			} else {
				r.TTL = v
			}
		}
		fo.DNS = r
	}
	if fo.RDS == nil && fo.DNS == nil && !f.has("rds") && !f.has("dns") {
		d.addf(f.line, path, "needs rds (a read replica to promote) and/or dns (a record to repoint)")
	}
	fo.Health, _ = f.check("health", checkHTTPURL)
	return fo
}

func (d *decoder) health(n *yaml.Node, path string) (HealthCheck, bool) {
	var h HealthCheck
	f := d.mapping(n, path, "name", "http", "method", "body", "expect_status", "metric")
	if f == nil {
		if isNull(d.resolve(n)) {
			d.addf(n.Line, path, "empty health check (want name and http or metric)")
		}
		return h, false
	}
	h.Name, _ = f.required("name", "a short description, e.g. dashboard")
	hasHTTP, hasMetric := f.has("http"), f.has("metric")
	switch {
	case hasHTTP && hasMetric:
		d.addf(f.line, path, "has both http and metric: one health check is either an http URL or a metric")
	case !hasHTTP && !hasMetric:
		d.addf(f.line, path, "needs http (a URL that must answer 2xx) or metric (url, name, expect)")
	}
	h.HTTP, _ = f.check("http", checkHTTPURL)
	d.healthRequest(f, &h, hasHTTP)
	if mf := f.sub("metric", "url", "name", "expect"); mf != nil {
		m := &MetricCheck{}
		if !mf.has("url") {
			mf.missing("url", "the Prometheus metrics URL, e.g. http://app:8050/metrics")
		} else {
			m.URL, _ = mf.check("url", checkHTTPURL)
		}
		if v, ok := mf.required("name", "the metric name, e.g. lstm_pfd_model_loaded"); ok {
			if metricNameRE.MatchString(v) {
				m.Name = v
			} else {
				d.addf(mf.get("name").Line, child(mf.path, "name"), "%s is not a Prometheus metric name", fmtQuote(v))
			}
		}
		if mf.has("expect") {
			m.Expect, _ = mf.expect("expect")
		} else {
			mf.missing("expect", `what the metric must be, e.g. "== 1"`)
		}
		h.Metric = m
	}
	return h, h.Name != ""
}

// healthRequest decodes an HTTP check's method, body and expect_status.
func (d *decoder) healthRequest(f *fields, h *HealthCheck, hasHTTP bool) {
	for _, k := range []string{"method", "body", "expect_status"} {
		if f.has(k) && !hasHTTP {
			d.addf(f.lineOf(k), child(f.path, k), "only applies to an http check (this check has no http URL)")
		}
	}
	if m, ok := f.check("method", func(v string) error {
		switch v {
		case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE":
			return nil
		}
		return fmt.Errorf("%s is not a supported HTTP method (want GET, HEAD, POST, PUT, PATCH or DELETE, in capitals)", fmtQuote(v))
	}); ok {
		h.Method = m
	}
	if b, ok := f.str("body"); ok {
		switch h.HTTPMethod() {
		case "POST", "PUT", "PATCH", "DELETE":
			h.Body = b
		default:
			if f.has("method") && h.Method == "" {
				break // the method itself was reported
			}
			d.addf(f.lineOf("body"), child(f.path, "body"), "a body needs a method that sends one (POST, PUT, PATCH or DELETE), not %s", h.HTTPMethod())
		}
	}
	if f.has("expect_status") {
		if v, ok := f.integer("expect_status"); ok {
			if v < 100 || v > 599 {
				d.addf(f.lineOf("expect_status"), child(f.path, "expect_status"), "%d is not an HTTP status (want 100–599, e.g. 200)", v)
			} else {
				h.ExpectStatus = v
			}
		}
	}
}

// Value checks shared by several keys.

// checkSelector accepts a non-empty Kubernetes label selector.
func checkSelector(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty (a label selector such as app=lstm-pfd)")
	}
	return nil
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// checkContact accepts a Slack user id (U…, W…), a user group id (S…) or an
// e-mail address.
func checkContact(v string) error {
	if slackIDRE.MatchString(v) || emailRE.MatchString(v) {
		return nil
	}
	return fmt.Errorf("%s is not a Slack user id (U…), user group id (S…) or e-mail address", fmtQuote(v))
}

// checkToken accepts a non-empty value without spaces.
func checkToken(what string) func(string) error {
	return func(v string) error {
		if v == "" || strings.ContainsFunc(v, isSpace) {
			return fmt.Errorf("%s is not %s", fmtQuote(v), what)
		}
		return nil
	}
}

// checkHTTPURL accepts an absolute http or https URL.
func checkHTTPURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("%s is not a valid URL: %v", fmtQuote(v), err) //nolint:errorlint // a validation message, not an error chain
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s is not an http(s) URL (want e.g. https://api.example.com/health)", fmtQuote(v))
	}
	return nil
}
