package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/runbook"
)

// identity is `aws sts get-caller-identity`: the account and ARN drbot's
// AWS credentials belong to.
func identity(ctx context.Context, deps Deps) actions.Finding {
	f := actions.Finding{Area: "aws", Name: "AWS identity"}
	cfg, err := deps.AWS(ctx, "")
	if err != nil {
		f.Status, f.Detail, f.Remedy = actions.StatusFail, "cannot load the AWS configuration: "+awsError(err), awsCredentials()
		return f
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		f.Status, f.Detail, f.Remedy = actions.StatusFail, "sts:GetCallerIdentity failed: "+awsError(err), awsCredentials()
		return f
	}
	f.Status = actions.StatusOK
	f.Detail = fmt.Sprintf("account %s, %s", aws.ToString(out.Account), aws.ToString(out.Arn))
	if creds, err := cfg.Credentials.Retrieve(ctx); err == nil && creds.Source != "" {
		f.Detail += " (credentials from " + creds.Source + ")"
	}
	return f
}

// backupLocation is one place backups are kept.
type backupLocation struct {
	title string // e.g. "lstm_pfd backups"
	loc   runbook.Location
	every runbook.Duration
}

// locations are the service's database backups, model backups and Vault
// snapshots, in that order.
func locations(svc runbook.Service) []backupLocation {
	var out []backupLocation
	for _, db := range svc.Databases {
		if db.Backups != nil && !db.Backups.Location.IsZero() {
			out = append(out, backupLocation{title: db.Name + " backups", loc: db.Backups.Location, every: db.Backups.Every})
		}
	}
	if m := svc.Models; m != nil && !m.Backups.IsZero() {
		out = append(out, backupLocation{title: "model backups", loc: m.Backups, every: m.Every})
	}
	if v := svc.Vault; v != nil && !v.Snapshots.IsZero() {
		out = append(out, backupLocation{title: "Vault snapshots", loc: v.Snapshots, every: v.Every})
	}
	return out
}

// location lists l, reads its newest object's metadata (HeadObject) and
// judges its age against l.every (or the RPO when every is not set).
func location(ctx context.Context, deps Deps, svc runbook.Service, l backupLocation) actions.Finding {
	f := actions.Finding{Area: "backups", Name: l.title + " (" + l.loc.String() + ")"}
	fail := func(detail string) actions.Finding {
		f.Status, f.Detail, f.Remedy = actions.StatusFail, detail, backupDownloadFails(l.loc)
		return f
	}
	st, err := openStore(ctx, deps, l.loc)
	if err != nil {
		return fail("cannot open the location: " + awsError(err))
	}
	newest, n, err := storage.Newest(ctx, st, 1, nil)
	if err != nil {
		return fail("cannot list: " + awsError(err))
	}
	if n == 0 {
		return fail("listable, but holds no backups")
	}
	obj, err := st.Stat(ctx, newest[0].Key)
	if err != nil {
		return fail(fmt.Sprintf("%s; the newest, %s, cannot be read: %s", objects(n), newest[0].Name, awsError(err)))
	}
	age := max(deps.now().Sub(obj.LastModified), 0)
	f.Status = actions.StatusOK
	f.Detail = fmt.Sprintf("%s; newest %s (%s), %s old", objects(n), obj.Name, actions.HumanSize(obj.Size), actions.HumanAge(age))
	limit, what := l.every.Duration, "every"
	if limit == 0 {
		limit, what = svc.Objectives.RPO.Duration, "RPO"
	}
	if limit > 0 {
		if age > limit {
			f.Status = actions.StatusWarn
			f.Detail += fmt.Sprintf(", older than its %s %s", what, actions.HumanAge(limit))
			f.Remedy = &actions.Remedy{Steps: []actions.RemedyStep{
				{Say: fmt.Sprintf("Check the job that writes backups to %s (due %s %s)", l.loc.String(), what, actions.HumanAge(limit))},
				{Say: "List them", Run: "/dr backups " + svc.Name},
			}}
		} else {
			f.Detail += fmt.Sprintf(" (%s %s)", what, actions.HumanAge(limit))
		}
	}
	return f
}

func openStore(ctx context.Context, deps Deps, loc runbook.Location) (storage.Store, error) {
	if deps.Open != nil {
		return deps.Open(ctx, loc)
	}
	opts := storage.Options{}
	if loc.Scheme == runbook.SchemeS3 {
		cfg, err := deps.AWS(ctx, "")
		if err != nil {
			return nil, err
		}
		opts.S3 = awsconf.S3(cfg)
	}
	return storage.New(ctx, loc, opts)
}

// awsError is a short, user-safe reason: the service's error code and
// message (which never carry credentials), "timed out", or the network
// failure without the request URL.
func awsError(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		msg := api.ErrorCode()
		if m := api.ErrorMessage(); m != "" && m != msg {
			msg += ": " + m
		}
		return oneLine(msg)
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return oneLine(ne.Err.Error())
	}
	if errors.Is(err, storage.ErrNotFound) {
		return "not found"
	}
	s := err.Error()
	// An SDK error names the operation and request; keep its last part.
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s)-i > 4 {
		s = s[i+2:]
	}
	return oneLine(s)
}

// elapsed is a rounded duration for details.
func elapsed(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func objects(n int) string {
	if n == 1 {
		return "1 object"
	}
	return fmt.Sprintf("%d objects", n)
}
