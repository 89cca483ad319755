// Package freshness finds how old the newest backup of each backup location
// in the runbook config is, and whether it is stale: older than the
// location's `every` plus a tenth (issue 11, point 3).
//
// Locations checked: each database's backups (databases[].backups with
// `every`) and each service's model backups (models with `every`; with
// `snapshots` the newest object under any snapshot folder dates the newest
// snapshot) and each service's Vault raft snapshots (vault.snapshots with
// `every`; the pre-restore-* snapshots restore-vault saves are not backups).
// A location without `every` is not checked.
package freshness

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/actions/restoredb"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/actions/vaultrestore"
	"github.com/drbot-dev/drbot/runbook"
)

// Location kinds.
const (
	KindDatabase = "database"
	KindModels   = "models"
	KindVault    = "vault"
)

// MaxInterval caps how long apart checks are.
const MaxInterval = 5 * time.Minute

// Opener opens a backup location (storage.New in production).
type Opener func(ctx context.Context, loc runbook.Location) (storage.Store, error)

// Location is one backup location of the config with its expected interval.
type Location struct {
	Service  string
	Kind     string // KindDatabase, KindModels or KindVault
	Name     string // the database's name, "models" or "vault"
	Location runbook.Location
	Every    time.Duration
	RPO      time.Duration // the service's RPO; zero when not set
	// Snapshots is the models' snapshot layout: only objects inside a
	// snapshot folder are backups. Nil: every object is.
	Snapshots *runbook.SnapshotPattern
}

// Status is what a check found at one location.
type Status struct {
	Location
	NewestKey string    // the newest backup's name; "" when there is none
	NewestAt  time.Time // zero when there is none
	Age       time.Duration
	Stale     bool  // no backup, or Age > Every + Every/10
	Err       error // the location could not be listed: nothing else is known
}

// Locations lists the checked locations of cfg, in config order.
func Locations(cfg *runbook.Config) []Location {
	var out []Location
	if cfg == nil {
		return nil
	}
	for _, svc := range cfg.Services {
		rpo := svc.Objectives.RPO.Duration
		for _, db := range svc.Databases {
			if db.Backups == nil || db.Backups.Every.Duration <= 0 {
				continue
			}
			out = append(out, Location{Service: svc.Name, Kind: KindDatabase, Name: db.Name, Location: db.Backups.Location, Every: db.Backups.Every.Duration, RPO: rpo})
		}
		if m := svc.Models; m != nil && m.Every.Duration > 0 {
			out = append(out, Location{Service: svc.Name, Kind: KindModels, Name: "models", Location: m.Backups, Every: m.Every.Duration, RPO: rpo, Snapshots: m.Snapshots})
		}
		if v := svc.Vault; v != nil && v.Every.Duration > 0 && !v.Snapshots.IsZero() {
			out = append(out, Location{Service: svc.Name, Kind: KindVault, Name: "vault", Location: v.Snapshots, Every: v.Every.Duration, RPO: rpo})
		}
	}
	return out
}

// Interval is how often to check: the smallest every/4, at most MaxInterval
// (and MaxInterval when nothing is checked).
func Interval(cfg *runbook.Config) time.Duration {
	iv := MaxInterval
	for _, l := range Locations(cfg) {
		if q := l.Every / 4; q > 0 && q < iv {
			iv = q
		}
	}
	return iv
}

// StaleAfter is the age past which a backup made every `every` is stale.
func StaleAfter(every time.Duration) time.Duration { return every + every/10 }

// Check finds the newest backup of every location of cfg as of now. A
// location that cannot be listed has Err set; the others are still checked.
func Check(ctx context.Context, cfg *runbook.Config, open Opener, now time.Time) []Status {
	locs := Locations(cfg)
	out := make([]Status, 0, len(locs))
	for _, l := range locs {
		out = append(out, checkOne(ctx, l, open, now))
	}
	return out
}

func checkOne(ctx context.Context, l Location, open Opener, now time.Time) Status {
	st := Status{Location: l}
	s, err := open(ctx, l.Location)
	if err != nil {
		st.Err = fmt.Errorf("open %s: %w", l.Location, err)
		return st
	}
	var keep func(storage.Object) bool
	switch {
	case l.Kind == KindDatabase:
		keep = func(o storage.Object) bool { return restoredb.FormatOf(o.Name) != "" }
	case l.Kind == KindVault:
		keep = func(o storage.Object) bool { return vaultrestore.IsSnapshot(o.Name) }
	case l.Snapshots != nil:
		keep = func(o storage.Object) bool { return inSnapshot(*l.Snapshots, o.Name) }
	}
	objs, _, err := storage.Newest(ctx, s, 1, keep)
	if err != nil {
		st.Err = fmt.Errorf("list %s: %w", l.Location, err)
		return st
	}
	if len(objs) == 0 {
		st.Stale = true
		return st
	}
	st.NewestKey = objs[0].Name
	st.NewestAt = objs[0].LastModified.UTC()
	st.Age = max(now.Sub(st.NewestAt), 0)
	st.Stale = st.Age > StaleAfter(l.Every)
	return st
}

// inSnapshot reports whether name (relative to the location) lies inside a
// snapshot folder's Inside path: Dir + folder + "/" + Inside + ….
func inSnapshot(sp runbook.SnapshotPattern, name string) bool {
	rest, ok := strings.CutPrefix(name, sp.Dir)
	if !ok {
		return false
	}
	folder, _, ok := strings.Cut(rest, "/")
	if !ok {
		return false
	}
	if _, ok := sp.Match(folder); !ok {
		return false
	}
	return strings.HasPrefix(name, sp.Path(folder))
}
