// Package childenv builds the environment of the programs drbot starts
// (pg_restore, psql, pg_dump, playbook commands). drbot's own environment
// holds its secrets: Slack and PagerDuty tokens, AWS keys, every database
// URL. A child gets none of it: only the few variables any program needs
// to run (PATH, HOME, locale, TZ, TMPDIR), the names the caller allows, and
// the values the caller sets (a database's PG* connection variables).
package childenv

import (
	"os"
	"strings"
)

// Base are the variables every child gets from drbot's environment when
// they are set: where programs are, the home directory (libpq's
// ~/.postgresql/root.crt, ~/.pgpass), the locale and time zone, and the
// temporary directory.
var Base = []string{"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR"}

// defaultPath is PATH when drbot's own environment has none.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// Build returns a minimal environment for a child process: Base, then each
// name in allow (an explicit allow-list, such as a playbook step's env_from),
// copied from drbot's environment when set, then set ("NAME=value" pairs,
// such as PGHOST=…), which win over copied values. Nothing else of drbot's
// environment is passed on.
func Build(allow []string, set ...string) []string {
	return build(os.LookupEnv, allow, set)
}

func build(lookup func(string) (string, bool), allow, set []string) []string {
	var env []string
	index := map[string]int{}
	put := func(name, value string) {
		kv := name + "=" + value
		if i, ok := index[name]; ok {
			env[i] = kv
			return
		}
		index[name] = len(env)
		env = append(env, kv)
	}
	for _, list := range [][]string{Base, allow} {
		for _, name := range list {
			if name == "" || strings.ContainsRune(name, '=') {
				continue
			}
			if v, ok := lookup(name); ok {
				put(name, v)
			}
		}
	}
	if _, ok := index["PATH"]; !ok {
		put("PATH", defaultPath)
	}
	for _, kv := range set {
		if name, value, ok := strings.Cut(kv, "="); ok && name != "" {
			put(name, value)
		}
	}
	return env
}
