// Package backups answers /dr backups: it lists a service's database or
// model backups from their configured locations, newest first, with size and
// age, and says whether the newest backup is within the service's RPO
// ("RPO 4h: newest backup 3h12m old, OK").
//
// List returns the data (actions.BackupListing); the commands package
// renders it for chat.
package backups

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/runbook"
)

// What the listing is about.
const (
	WhatDB     = "db"
	WhatModels = "models"
)

// MaxRows is how many rows a listing shows (the newest).
const MaxRows = actions.MaxBackupRows

// Opener opens a backup location's store. The binary injects one (see
// DefaultOpener) so that what lists backups does not decide how stores open.
type Opener func(ctx context.Context, loc runbook.Location) (storage.Store, error)

// DefaultOpener opens stores with an S3 client from the environment.
func DefaultOpener(ctx context.Context, loc runbook.Location) (storage.Store, error) {
	return storage.New(ctx, loc, storage.Options{})
}

// Row is one backup (see actions.BackupRow).
type Row = actions.BackupRow

// Listing is the backups of one location (see actions.BackupListing).
type Listing = actions.BackupListing

// Command declares /dr backups: read-only, it runs at once.
var Command = actions.Command{
	Name:    "backups",
	Summary: "List a service's backups, newest first, and whether the newest is within the RPO",
	Description: "Lists the database backups (or with models, the model backups) from the configured locations " +
		"(s3:// or file://) with size and age, and checks the newest against the service's RPO.",
	Args:     []actions.Arg{argWhat},
	Examples: []string{"/dr backups lstm-pfd", "/dr backups lstm-pfd models"},
}

var argWhat = actions.Arg{Name: "what", Help: "db (default) or models.", Optional: true}

// Lister is the /dr backups procedure (an actions.Reader).
type Lister struct {
	cfg  *runbook.Config
	open Opener
	now  func() time.Time
}

var _ actions.Reader = (*Lister)(nil)

// New returns the /dr backups procedure over cfg's services, opening
// locations with open (DefaultOpener when nil).
func New(cfg *runbook.Config, open Opener) *Lister {
	return &Lister{cfg: cfg, open: open, now: time.Now}
}

// Command implements actions.Procedure.
func (l *Lister) Command() actions.Command { return Command }

// Read implements actions.Reader: the []actions.BackupListing of the
// service's databases, or models.
func (l *Lister) Read(ctx context.Context, p actions.Params) (any, error) {
	svc, err := p.ServiceIn(l.cfg)
	if err != nil {
		return nil, err
	}
	return listService(ctx, svc, argWhat.Of(p), l.open, l.now())
}

// List returns the listings of what ("db", "models", or "" for the
// databases, or the models when the service has no databases) of service.
func List(ctx context.Context, cfg *runbook.Config, service, what string, open Opener, now time.Time) ([]Listing, error) {
	svc, err := actions.Params{Service: service}.ServiceIn(cfg)
	if err != nil {
		return nil, err
	}
	return listService(ctx, svc, what, open, now)
}

func listService(ctx context.Context, svc *runbook.Service, what string, open Opener, now time.Time) ([]Listing, error) {
	if open == nil {
		open = DefaultOpener
	}
	switch strings.ToLower(what) {
	case "":
		if len(svc.Databases) == 0 && svc.Models != nil {
			what = WhatModels
		} else {
			what = WhatDB
		}
	case WhatDB, "database", "databases":
		what = WhatDB
	case WhatModels, "model":
		what = WhatModels
	default:
		return nil, actions.Refusef("%q: list db or models backups (`/dr backups %s db` or `/dr backups %s models`)", what, svc.Name, svc.Name)
	}
	rpo := svc.Objectives.RPO
	var out []Listing
	if what == WhatModels {
		if svc.Models == nil || svc.Models.Backups.IsZero() {
			return nil, actions.Refusef("%s has no model backups in the runbook config", svc.Name)
		}
		l, err := list(ctx, open, svc.Models.Backups, "models", true, rpo, now)
		if err != nil {
			return nil, err
		}
		return append(out, l), nil
	}
	n := 0
	for _, db := range svc.Databases {
		if db.Backups == nil || db.Backups.Location.IsZero() {
			continue
		}
		n++
		l, err := list(ctx, open, db.Backups.Location, db.Name+" (database)", false, rpo, now)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if n == 0 {
		return nil, actions.Refusef("%s has no database backups in the runbook config", svc.Name)
	}
	return out, nil
}

func list(ctx context.Context, open Opener, loc runbook.Location, title string, group bool, rpo runbook.Duration, now time.Time) (Listing, error) {
	l := Listing{Title: title, Location: loc.String()}
	st, err := open(ctx, loc)
	if err != nil {
		return Listing{}, fmt.Errorf("backups of %s: %w", title, err)
	}
	top := storage.NewTop(MaxRows, newerRow)
	if group {
		err = walkGroups(ctx, st, top.Add)
	} else {
		err = st.Walk(ctx, func(o storage.Object) error {
			top.Add(Row{Name: o.Name, Size: o.Size, Objects: 1, Newest: o.LastModified})
			return nil
		})
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return Listing{}, fmt.Errorf("backups of %s: %w", title, err)
	}
	l.Rows, l.Total, l.Retained = top.Sorted(), top.Added(), top.Peak()
	for i := range l.Rows {
		l.Rows[i].Age = age(now, l.Rows[i].Newest)
	}
	l.Verdict, l.OK = verdict(l.Rows, rpo, loc)
	return l, nil
}

// newerRow ranks rows by their newest object, then by name.
func newerRow(a, b Row) int {
	if c := a.Newest.Compare(b.Newest); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// walkGroups makes one row per top-level prefix (models-20260115-020000/…)
// or top-level object. A store walks the objects of one folder one after
// another, so a row is complete when the next object is outside it: only
// the row being summed is held besides what add keeps.
func walkGroups(ctx context.Context, st storage.Store, add func(Row)) error {
	var cur *Row
	err := st.Walk(ctx, func(o storage.Object) error {
		name := o.Name
		if first, _, ok := strings.Cut(o.Name, "/"); ok {
			name = first + "/"
		}
		if cur == nil || cur.Name != name {
			if cur != nil {
				add(*cur)
			}
			cur = &Row{Name: name}
		}
		cur.Size += o.Size
		cur.Objects++
		if o.LastModified.After(cur.Newest) {
			cur.Newest = o.LastModified
		}
		return nil
	})
	if cur != nil {
		add(*cur)
	}
	return err
}

func age(now, t time.Time) time.Duration {
	if d := now.Sub(t); d > 0 {
		return d
	}
	return 0
}

// verdict is the RPO line: "RPO 4h: newest backup 3h12m old, OK".
func verdict(rows []Row, rpo runbook.Duration, loc runbook.Location) (string, bool) {
	head := "RPO " + rpo.String()
	if rpo.Duration == 0 {
		head = "No RPO set"
	}
	if len(rows) == 0 {
		return fmt.Sprintf("%s: no backups in %s, NOT OK", head, loc.String()), false
	}
	newest := rows[0].Age
	if rpo.Duration == 0 {
		return fmt.Sprintf("%s: newest backup %s old", head, storage.HumanAge(newest)), true
	}
	if newest > rpo.Duration {
		return fmt.Sprintf("%s: newest backup %s old, NOT OK (older than the RPO)", head, storage.HumanAge(newest)), false
	}
	return fmt.Sprintf("%s: newest backup %s old, OK", head, storage.HumanAge(newest)), true
}
