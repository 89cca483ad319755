package diagnose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/runbook"
)

// minSecret is the shortest value scrubbed (shorter ones would mangle text).
const minSecret = 4

// awsSecretEnv are the AWS SDK's credential variables.
var awsSecretEnv = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"}

// secrets are the values that must never appear in a report: the database
// URLs and their passwords, the Vault token, and AWS credentials.
func secrets(deps Deps, svc runbook.Service) []string {
	var out []string
	add := func(s string) {
		if len(s) >= minSecret {
			out = append(out, s)
		}
	}
	for _, db := range svc.Databases {
		u, err := databaseURL(deps, db)
		if err != nil {
			continue
		}
		add(u)
		if pc, err := pgconn.ParseConfig(u); err == nil {
			add(pc.Password)
		}
		if pu, err := url.Parse(u); err == nil && pu.User != nil {
			if p, ok := pu.User.Password(); ok {
				add(p)
			}
		}
	}
	if v := svc.Vault; v != nil {
		if t, ok := deps.lookupEnv(v.TokenEnv); ok {
			add(t)
		}
	}
	for _, k := range awsSecretEnv {
		if v, ok := deps.lookupEnv(k); ok {
			add(v)
		}
	}
	if svc.Kubernetes != nil && svc.Kubernetes.Source != nil && svc.Kubernetes.Source.TokenEnv != "" {
		if t, ok := deps.lookupEnv(svc.Kubernetes.Source.TokenEnv); ok {
			add(t)
		}
	}
	// Longest first, so a URL goes before the password inside it.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// scrub replaces every secret value in d's texts with [redacted].
func scrub(d *actions.Diagnosis, secrets []string) {
	if len(secrets) == 0 {
		return
	}
	clean := func(s string) string {
		for _, v := range secrets {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
		return s
	}
	for i := range d.NotConfigured {
		d.NotConfigured[i] = clean(d.NotConfigured[i])
	}
	for i := range d.Findings {
		f := &d.Findings[i]
		f.Name, f.Detail = clean(f.Name), clean(f.Detail)
		for j := range f.Logs {
			f.Logs[j] = clean(f.Logs[j])
		}
		if f.Remedy != nil {
			r := *f.Remedy
			r.Steps = append([]actions.RemedyStep(nil), r.Steps...)
			for j := range r.Steps {
				r.Steps[j].Say, r.Steps[j].Run = clean(r.Steps[j].Say), clean(r.Steps[j].Run)
			}
			r.Command = clean(r.Command)
			f.Remedy = &r
		}
	}
}

// requestReason is a user-safe reason an HTTP request failed, without the URL.
func requestReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return oneLine(err.Error())
}

func secondsDuration(s int64) time.Duration { return time.Duration(s) * time.Second }

func logPanic(ctx context.Context, check string, p any) {
	slog.ErrorContext(ctx, "diagnose: a check panicked", "check", check, "panic", fmt.Sprint(p))
}
