package runbook

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in Go syntax in the config (90s, 15m,
// 2160h). The zero value means "not set".
type Duration struct {
	time.Duration
}

// ParseDuration parses Go duration syntax ("15m", "1h30m"). A bare number
// such as "15" is rejected because its unit would be a guess.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return Duration{}, fmt.Errorf("%q is not a duration (want e.g. 15m)", s)
	}
	return Duration{d}, nil
}

// String formats the duration compactly, e.g. "15m", "1h", "2160h", "1h30m".
func (d Duration) String() string {
	if d.Duration == 0 {
		return "0s"
	}
	s := d.Duration.String()
	// time.Duration prints 15m0s and 1h0m0s; drop the zero units.
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText implements encoding.TextMarshaler (used by JSON and slog).
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Location schemes.
const (
	SchemeS3   = "s3"
	SchemeFile = "file"
)

// Location is where backups (or model files) live: s3://bucket/prefix/ or
// file:///absolute/path/.
type Location struct {
	Scheme string // SchemeS3 or SchemeFile
	Bucket string // s3 only
	Prefix string // s3 only: the key prefix, without a leading slash ("db/"; "" for the whole bucket)
	Path   string // file only: the absolute directory or file path
}

// bucketRE follows the S3 bucket naming rules (3–63 characters of lowercase
// letters, digits, dots and hyphens, starting and ending with a letter or digit).
var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseLocation parses an s3:// or file:/// URL.
func ParseLocation(s string) (Location, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return Location{}, fmt.Errorf("%q is not a location (want s3://bucket/prefix/ or file:///absolute/path/)", s)
	}
	switch strings.ToLower(scheme) {
	case SchemeS3:
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return Location{}, fmt.Errorf("%q has no bucket (want s3://bucket/prefix/)", s)
		}
		if !bucketRE.MatchString(bucket) || strings.Contains(bucket, "..") {
			return Location{}, fmt.Errorf("%q: %q is not a valid S3 bucket name (3-63 lowercase letters, digits, dots or hyphens)", s, bucket)
		}
		if strings.HasPrefix(prefix, "/") || strings.Contains(prefix, "//") {
			return Location{}, fmt.Errorf("%q has an empty path segment (want s3://bucket/prefix/)", s)
		}
		return Location{Scheme: SchemeS3, Bucket: bucket, Prefix: prefix}, nil
	case SchemeFile:
		if !strings.HasPrefix(rest, "/") {
			return Location{}, fmt.Errorf("%q must be an absolute path with an empty host (want file:///absolute/path/)", s)
		}
		u, err := url.Parse(s)
		if err != nil || u.Path == "" {
			return Location{}, fmt.Errorf("%q is not a valid file URL (want file:///absolute/path/)", s)
		}
		return Location{Scheme: SchemeFile, Path: u.Path}, nil
	default:
		return Location{}, fmt.Errorf("unknown scheme %q in %q (want s3://bucket/prefix/ or file:///absolute/path/)", scheme, s)
	}
}

// String formats the location as a URL; ParseLocation(l.String()) == l.
func (l Location) String() string {
	switch l.Scheme {
	case SchemeS3:
		return "s3://" + l.Bucket + "/" + l.Prefix
	case SchemeFile:
		return (&url.URL{Scheme: SchemeFile, Path: l.Path}).String()
	case "":
		return ""
	default:
		return l.Scheme + "://" + l.Path
	}
}

// IsZero reports whether the location is unset.
func (l Location) IsZero() bool { return l == Location{} }

// Expect is a comparison against a number, written like "> 0", "== 1",
// ">= 10", "< 5" or "!= 0".
type Expect struct {
	Op    string // one of ==, !=, >, >=, <, <=
	Value float64
}

var expectRE = regexp.MustCompile(`^\s*(==|!=|>=|<=|>|<)\s*(\S+)\s*$`)

// ParseExpect parses an expectation such as "> 0".
func ParseExpect(s string) (Expect, error) {
	m := expectRE.FindStringSubmatch(s)
	if m == nil {
		return Expect{}, fmt.Errorf("%q is not an expectation (want an operator ==, !=, >, >=, <, <= and a number, e.g. \"> 0\")", s)
	}
	v, err := strconv.ParseFloat(m[2], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return Expect{}, fmt.Errorf("%q: %q is not a number (want e.g. \"> 0\")", s, m[2])
	}
	return Expect{Op: m[1], Value: v}, nil
}

// Check reports whether v satisfies the expectation. An Expect with an
// unknown operator never matches.
func (e Expect) Check(v float64) bool {
	switch e.Op {
	case "==":
		return v == e.Value
	case "!=":
		return v != e.Value
	case ">":
		return v > e.Value
	case ">=":
		return v >= e.Value
	case "<":
		return v < e.Value
	case "<=":
		return v <= e.Value
	}
	return false
}

// String formats the expectation as it is written in the config, e.g. "> 0".
func (e Expect) String() string {
	return e.Op + " " + strconv.FormatFloat(e.Value, 'g', -1, 64)
}

// Kubernetes workload kinds accepted in writers and restart lists.
const (
	KindDeployment  = "deployment"
	KindStatefulSet = "statefulset"
)

// WorkloadRef names a Kubernetes workload as kind/name, e.g.
// deployment/lstm-pfd-dashboard.
type WorkloadRef struct {
	Kind string // KindDeployment or KindStatefulSet
	Name string
}

// dns1123SubdomainRE is the Kubernetes object name rule.
var dns1123SubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

var errWorkloadForm = errors.New("want deployment/NAME or statefulset/NAME")

// ParseWorkloadRef parses "deployment/NAME" or "statefulset/NAME".
func ParseWorkloadRef(s string) (WorkloadRef, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok {
		return WorkloadRef{}, fmt.Errorf("%q is not a workload: %w", s, errWorkloadForm)
	}
	switch kind {
	case KindDeployment, KindStatefulSet:
	default:
		return WorkloadRef{}, fmt.Errorf("%q: unsupported kind %q: %w", s, kind, errWorkloadForm)
	}
	if len(name) > 253 || !dns1123SubdomainRE.MatchString(name) {
		return WorkloadRef{}, fmt.Errorf("%q: %q is not a valid Kubernetes name (lowercase letters, digits, '-' and '.')", s, name)
	}
	return WorkloadRef{Kind: kind, Name: name}, nil
}

// String formats the reference as kind/name.
func (w WorkloadRef) String() string { return w.Kind + "/" + w.Name }
