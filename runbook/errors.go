package runbook

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/drbot-dev/drbot/internal/editdist"
)

// Problem is one thing wrong in a runbook config file.
type Problem struct {
	File string // the file name as the caller gave it to Load or Parse
	Line int    // 1-based; 0 when unknown
	Path string // key path such as services[0].escalation[1].after; "" for the whole file
	Msg  string
}

// String formats the problem as "file:line: path: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ValidationError lists every problem found in a runbook config file, in
// file order.
type ValidationError struct {
	Problems []Problem
}

// Error prints one problem per line, e.g.
//
//	drbot.yaml:31: services[0].escalation[1].after: "15" is not a duration (want e.g. 15m)
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// suggest returns the known key closest to key, or "" when none is close
// enough to be a likely typo.
func suggest(key string, known []string) string {
	best, bestDist := "", -1
	lower := strings.ToLower(key)
	for _, k := range known {
		d := editdist.Distance(lower, k)
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist < 0 {
		return ""
	}
	// Allow about one edit per three characters, at least one and at most three.
	limit := max(1, min(3, len(best)/3))
	if bestDist > limit {
		return ""
	}
	return best
}

func fmtQuote(s string) string {
	const maxLen = 60
	if len(s) > maxLen {
		return fmt.Sprintf("%q…", s[:maxLen])
	}
	return fmt.Sprintf("%q", s)
}
