package runbook

import (
	"errors"
	"fmt"
	"strings"
)

// SnapshotPattern is models.snapshots: how a backups location holds one
// folder per backup run, e.g. "models-*/checkpoints/". The path segment
// holding the single * names one snapshot; the path after it (Inside) is
// what maps onto the target, as the runbook's
// `aws s3 sync s3://…/models/models-20260115-020000/checkpoints/ ./checkpoints/`
// does.
type SnapshotPattern struct {
	Dir    string // folders before the snapshot's, "" or ending with "/"
	Before string // the snapshot segment's text before the * ("models-")
	After  string // the snapshot segment's text after the * (usually "")
	Inside string // the path inside a snapshot that maps onto the target, "" or ending with "/"
}

// ParseSnapshotPattern parses a pattern such as "models-*/checkpoints/":
// exactly one *, inside one path segment that a / closes (the * never spans
// folders), a pattern ending with /, and no empty, . or .. segments.
func ParseSnapshotPattern(s string) (SnapshotPattern, error) {
	const want = "want e.g. models-*/checkpoints/: one folder per backup, * standing for its date"
	switch {
	case strings.Count(s, "*") != 1:
		return SnapshotPattern{}, fmt.Errorf("%s must hold exactly one * (%s)", fmtQuote(s), want)
	case !strings.HasSuffix(s, "/"):
		return SnapshotPattern{}, fmt.Errorf("%s must end with / (%s)", fmtQuote(s), want)
	case strings.HasPrefix(s, "/"):
		return SnapshotPattern{}, fmt.Errorf("%s must be relative to the backups location (no leading /)", fmtQuote(s))
	case strings.ContainsAny(s, "?[]{}\\"):
		return SnapshotPattern{}, fmt.Errorf("%s: only * is a wildcard here", fmtQuote(s))
	}
	segs := strings.Split(strings.TrimSuffix(s, "/"), "/")
	var p SnapshotPattern
	found := false
	for i, seg := range segs {
		switch seg {
		case "":
			return SnapshotPattern{}, errors.New(fmtQuote(s) + " has an empty path segment (//)")
		case ".", "..":
			return SnapshotPattern{}, fmt.Errorf("%s: . and .. are not allowed", fmtQuote(s))
		}
		if before, after, ok := strings.Cut(seg, "*"); ok {
			found = true
			p.Dir = strings.Join(segs[:i], "/")
			if p.Dir != "" {
				p.Dir += "/"
			}
			p.Before, p.After = before, after
			if rest := segs[i+1:]; len(rest) > 0 {
				p.Inside = strings.Join(rest, "/") + "/"
			}
		}
	}
	if !found { // unreachable: one * is in some segment
		return SnapshotPattern{}, fmt.Errorf("%s must hold one * (%s)", fmtQuote(s), want)
	}
	return p, nil
}

// String is the pattern as written.
func (p SnapshotPattern) String() string {
	return p.Dir + p.Before + "*" + p.After + "/" + p.Inside
}

// ListPrefix is the key prefix (relative to the backups location) under which
// the snapshot folders are listed (with delimiter "/").
func (p SnapshotPattern) ListPrefix() string { return p.Dir + p.Before }

// Match reports whether folder (one path segment, without a slash) names a
// snapshot, and returns the part the * stands for.
func (p SnapshotPattern) Match(folder string) (string, bool) {
	if strings.Contains(folder, "/") || len(folder) < len(p.Before)+len(p.After) {
		return "", false
	}
	if !strings.HasPrefix(folder, p.Before) || !strings.HasSuffix(folder, p.After) {
		return "", false
	}
	star := folder[len(p.Before) : len(folder)-len(p.After)]
	if star == "" || star == "." || star == ".." {
		return "", false
	}
	return star, true
}

// Path is where snapshot folder's content lies, relative to the backups
// location: Dir + folder + "/" + Inside.
func (p SnapshotPattern) Path(folder string) string {
	return p.Dir + folder + "/" + p.Inside
}

// quotedNames lists health check names for messages ("none" when empty).
func quotedNames(hs []HealthCheck) string {
	if len(hs) == 0 {
		return "none"
	}
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = fmtQuote(h.Name)
	}
	return strings.Join(names, ", ")
}
