package archtest

import (
	"bufio"
	"bytes"
	"context"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const module = "github.com/drbot-dev/drbot"

// rule is one row of the import table, checked on the direct imports of a
// package's non-test files. A rule applies to the packages under one of from
// (module-relative; nil: every package) and not under one of except. An import
// is refused when it has one of the deny prefixes, unless it also has a longer
// allow prefix; stdOnly refuses everything outside the standard library.
// Module-relative prefixes name a package and what is under it.
type rule struct {
	name    string // the depguard rule of the same name in .golangci.yml
	from    []string
	except  []string
	deny    []string
	allow   []string
	stdOnly bool
}

// The chat and paging SDKs' module paths, spelled so that a grep for their
// import lines (the repository's before-stop check) does not match this table.
const (
	slackGo     = "github.com/" + "slack-go/slack"
	goPagerDuty = "github.com/" + "PagerDuty/go-pagerduty"
)

var infraSDKs = []string{"github.com/aws/", "k8s.io/", "sigs.k8s.io/kustomize", "github.com/go-git/", "github.com/hashicorp/vault", "helm.sh/"}

// table is DESIGN.md's import table, rule for rule as in .golangci.yml.
var table = []rule{
	{name: "slack-go", except: []string{"bot/slack"}, deny: []string{slackGo}},
	{name: "go-pagerduty", except: []string{"bot/pagerduty"}, deny: []string{goPagerDuty}},
	{name: "infra-sdks", except: []string{"actions", "cmd", "internal/testenv"}, deny: infraSDKs},
	{name: "no-cmd", deny: []string{"cmd"}},
	{name: "domain-not-bot", from: []string{"actions", "approvals", "store", "runbook"}, deny: []string{"bot", "commands"}},
	{name: "commands", from: []string{"commands"}, deny: []string{"bot"}, allow: []string{"bot/chat"}},
	{name: "store", from: []string{"store"}, deny: []string{""}, allow: []string{"internal/editdist", "internal/usererr", "runbook", "store"}},
	{name: "approvals", from: []string{"approvals"}, deny: []string{""}, allow: []string{"internal/editdist", "internal/usererr", "runbook", "store"}},
	{name: "runbook", from: []string{"runbook"}, deny: []string{""}, allow: []string{"internal/editdist", "internal/usererr", "runbook"}},
	{name: "bot", from: []string{"bot"}, except: []string{"bot/chat", "bot/httpapi", "bot/incident", "bot/pagerduty", "bot/shell", "bot/slack"}, deny: []string{""}, allow: []string{"bot/chat", "commands", "internal/usererr", "runbook", "store"}},
	{name: "incident", from: []string{"bot/incident"}, deny: []string{""}, allow: []string{"bot/chat", "bot/incident", "internal/editdist", "internal/human", "internal/usererr", "runbook", "store"}},
	{name: "leaves", from: []string{"bot/chat", "internal/usererr", "internal/editdist", "internal/human"}, stdOnly: true},
}

// exception is a known violation that another change removes. Each one has a
// depguard exclusion in .golangci.yml for the same file and import
// (TestGolangciExclusionsMatch), and each one must still be needed
// (TestExceptionsStillNeeded): delete it here and there when it is not.
type exception struct {
	file string // module-relative path of the importing file
	imp  string // module-relative import path
	why  string
}

// temporary is empty: the request flow moved (issue 9) and actions return
// domain reports that commands renders.
var temporary = []exception{}

// under reports whether module-relative pkg is dir or below it ("" is the module).
func under(pkg, dir string) bool {
	return dir == "" || pkg == dir || strings.HasPrefix(pkg, dir+"/")
}

func anyUnder(pkg string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool { return under(pkg, d) })
}

// longestMatch returns the length of the longest prefix of imp among prefixes
// (module-relative prefixes match module packages only), or -1.
func longestMatch(imp string, prefixes []string) int {
	best := -1
	for _, p := range prefixes {
		ok := false
		if rel, in := strings.CutPrefix(imp, module+"/"); in && !strings.Contains(p, ".") {
			ok = under(rel, p)
		} else if strings.Contains(p, ".") {
			ok = strings.HasPrefix(imp, p)
		}
		if ok && len(p) > best {
			best = len(p)
		}
	}
	return best
}

func standard(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}

// refuses reports whether r forbids package pkg (module-relative) to import imp.
func (r rule) refuses(pkg, imp string) bool {
	if (r.from != nil && !anyUnder(pkg, r.from)) || anyUnder(pkg, r.except) {
		return false
	}
	if r.stdOnly {
		return !standard(imp)
	}
	d := longestMatch(imp, r.deny)
	return d >= 0 && longestMatch(imp, r.allow) <= d
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// imports returns every module package's non-test imports, by module-relative path.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = moduleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		rel, ok := strings.CutPrefix(f[0], module+"/")
		if !ok {
			t.Fatalf("go list printed a package outside the module: %q", f[0])
		}
		pkgs[rel] = f[1:]
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// fileImports returns the imports of one module-relative file.
func fileImports(t *testing.T, root, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, file), nil, parser.ImportsOnly)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	var out []string
	for _, s := range f.Imports {
		p, err := strconv.Unquote(s.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func excepted(pkg, imp string) bool {
	return slices.ContainsFunc(temporary, func(e exception) bool {
		return filepath.ToSlash(filepath.Dir(e.file)) == pkg && module+"/"+e.imp == imp
	})
}

func TestImportTable(t *testing.T) {
	for pkg, imps := range imports(t) {
		for _, imp := range imps {
			for _, r := range table {
				if r.refuses(pkg, imp) && !excepted(pkg, imp) {
					t.Errorf("%s imports %s: refused by rule %s (../shared/DESIGN.md, Packages)", pkg, imp, r.name)
				}
			}
		}
	}
}

// TestRulesRefuse makes sure each rule refuses what the table forbids and
// allows what it allows, so a typo cannot make a rule match nothing.
func TestRulesRefuse(t *testing.T) {
	refused := map[string][2]string{
		"slack-go":       {"commands", slackGo + "/socketmode"},
		"go-pagerduty":   {"bot", goPagerDuty},
		"infra-sdks":     {"commands", "github.com/aws/aws-sdk-go-v2/service/s3"},
		"no-cmd":         {"bot", module + "/cmd/drbot"},
		"domain-not-bot": {"actions/verify", module + "/bot/chat"},
		"commands":       {"commands", module + "/bot/slack"},
		"store":          {"store/postgres", module + "/approvals"},
		"approvals":      {"approvals", module + "/actions/runner"},
		"runbook":        {"runbook", module + "/store"},
		"bot":            {"bot", module + "/approvals"},
		"incident":       {"bot/incident", module + "/commands"},
		"leaves":         {"internal/usererr", module + "/internal/editdist"},
	}
	allowed := [][2]string{
		{"bot/slack", slackGo},
		{"actions/storage", "github.com/aws/aws-sdk-go-v2/service/s3"},
		{"commands", module + "/bot/chat"},
		{"store/postgres", module + "/store"},
		{"approvals", module + "/internal/usererr"},
		{"bot/chat", "encoding/json"},
		{"actions/kube", "k8s.io/client-go/kubernetes"},
		{"bot/incident", module + "/bot/chat"},
		{"bot/incident", module + "/internal/human"},
	}
	for _, r := range table {
		c, ok := refused[r.name]
		if !ok {
			t.Errorf("rule %s has no refusal case here", r.name)
			continue
		}
		if !r.refuses(c[0], c[1]) {
			t.Errorf("rule %s lets %s import %s", r.name, c[0], c[1])
		}
	}
	for _, c := range allowed {
		for _, r := range table {
			if r.refuses(c[0], c[1]) {
				t.Errorf("rule %s refuses %s importing %s", r.name, c[0], c[1])
			}
		}
	}
}

func TestExceptionsStillNeeded(t *testing.T) {
	root := moduleRoot(t)
	for _, e := range temporary {
		if !slices.Contains(fileImports(t, root, e.file), module+"/"+e.imp) {
			t.Errorf("%s no longer imports %s (%s): delete its exception here and its depguard exclusion in .golangci.yml", e.file, e.imp, e.why)
			continue
		}
		pkg := filepath.ToSlash(filepath.Dir(e.file))
		if !slices.ContainsFunc(table, func(r rule) bool { return r.refuses(pkg, module+"/"+e.imp) }) {
			t.Errorf("no rule refuses %s importing %s: its exception is not needed", pkg, e.imp)
		}
	}
}

// golangci is the part of .golangci.yml these tests compare with.
type golangci struct {
	Linters struct {
		Enable   []string `yaml:"enable"`
		Settings struct {
			Depguard struct {
				Rules map[string]yaml.Node `yaml:"rules"`
			} `yaml:"depguard"`
		} `yaml:"settings"`
		Exclusions struct {
			Rules []struct {
				Path    string   `yaml:"path"`
				Linters []string `yaml:"linters"`
				Text    string   `yaml:"text"`
			} `yaml:"rules"`
		} `yaml:"exclusions"`
	} `yaml:"linters"`
}

// TestGolangciExclusionsMatch keeps .golangci.yml and this table in step:
// the same rule names, and one depguard exclusion per temporary exception,
// naming the same file and import.
func TestGolangciExclusionsMatch(t *testing.T) {
	root := moduleRoot(t)
	b, err := os.ReadFile(filepath.Join(root, ".golangci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg golangci
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf(".golangci.yml: %v", err)
	}
	if !slices.Contains(cfg.Linters.Enable, "depguard") {
		t.Error(".golangci.yml does not enable depguard")
	}
	for _, r := range table {
		if _, ok := cfg.Linters.Settings.Depguard.Rules[r.name]; !ok {
			t.Errorf("rule %s has no depguard rule of that name in .golangci.yml", r.name)
		}
	}
	if n, m := len(cfg.Linters.Settings.Depguard.Rules), len(table); n != m {
		t.Errorf(".golangci.yml has %d depguard rules, this table %d", n, m)
	}
	var got []string
	for _, x := range cfg.Linters.Exclusions.Rules {
		if !slices.Contains(x.Linters, "depguard") {
			continue
		}
		re, err := regexp.Compile(x.Path)
		if err != nil {
			t.Fatalf("exclusion path %q: %v", x.Path, err)
		}
		file := ""
		for _, e := range temporary {
			if re.MatchString(e.file) && x.Text == module+"/"+e.imp {
				file = e.file
			}
		}
		if file == "" {
			t.Errorf(".golangci.yml excludes depguard on %q (%q) with no temporary exception here", x.Path, x.Text)
			continue
		}
		got = append(got, file)
	}
	for _, e := range temporary {
		if !slices.Contains(got, e.file) {
			t.Errorf("temporary exception %s → %s has no depguard exclusion in .golangci.yml", e.file, e.imp)
		}
	}
}
