// Package vaultrestore is the restore-vault action (runbook 000 "Secret
// Recovery": vault operator raft snapshot restore) and its drill form.
//
// Plan lists vault.snapshots (s3:// or file://, through actions/storage) and
// pins one snapshot — --backup NAME, else the newest that is not a
// pre-restore-* snapshot — by key, size, ETag and, on a versioned bucket, its
// version; it reads Vault's health (no token needed) and refuses a sealed or
// uninitialized Vault. Execute, every step recorded (actions.RunStep):
//
//  1. save-current: takes Vault's current state (sys/storage/raft/snapshot),
//     checks it, and stores it next to the snapshots as
//     pre-restore-<yyyymmddhhmmss>.snap — never replaced, never deleted;
//  2. fetch-check: streams exactly the pinned object (a changed or missing
//     object fails) into a temporary file and checks its integrity (see
//     CheckSnapshot);
//  3. restore: installs it with sys/storage/raft/snapshot-force.
//
// Verify then checks sys/health (initialized, unsealed, active), that each
// vault.verify path lists keys (vault kv list), and that the pre-restore
// snapshot is still there; a failing check names it.
//
// A crash at any point is safe: a resumed save keeps a pre-restore snapshot
// already stored; a resumed restore fetches the snapshot again, checks it is
// the one checked before (its sha256), and installs it again (installing a
// snapshot twice leaves the same state).
//
// Vault's address and token are read from the environment variables
// vault.address_env and vault.token_env names when planning and again when
// executing; the token is never logged, shown or stored. The address is
// pinned in the plan: one that changed after approval is refused.
package vaultrestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	vault "github.com/hashicorp/vault/api"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/storage"
	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/runbook"
)

// Kind is the action kind.
const Kind = "restore-vault"

// Step names (stable: the journal records them).
const (
	StepSave    = "save-current"
	StepFetch   = "fetch-check"
	StepRestore = "restore"
)

// PreRestorePrefix starts the names of the snapshots this action saves
// before a restore; they are never picked as "the newest snapshot".
const PreRestorePrefix = "pre-restore-"

// StampFormat is the time format in pre-restore snapshot names.
const StampFormat = "20060102150405"

// PreRestoreName is the name of the pre-restore snapshot saved at stamp.
func PreRestoreName(stamp string) string { return PreRestorePrefix + stamp + ".snap" }

// IsSnapshot reports whether the object name (relative to the snapshots
// location) is a snapshot that "newest" may pick: not a pre-restore
// snapshot this action saved, not a dot file.
func IsSnapshot(name string) bool {
	base := name[strings.LastIndex(name, "/")+1:]
	return base != "" && !strings.HasPrefix(base, PreRestorePrefix) && !strings.HasPrefix(base, ".")
}

// LoadAWS returns the AWS configuration (awsconf.Load in production).
type LoadAWS func(ctx context.Context, region string) (aws.Config, error)

// Action is the restore-vault action.
type Action struct {
	cfg  *runbook.Config
	load LoadAWS
	// Now is the clock; TempDir holds the snapshots in flight ("" is the
	// system's).
	Now     func() time.Time
	TempDir string
	log     *slog.Logger

	// drills keeps a drill's integrity result from Execute for Verify
	// (keyed by stamp); a Verify after a restart fetches again.
	drills sync.Map
}

var (
	_ actions.Action    = (*Action)(nil)
	_ actions.Drillable = (*Action)(nil)
	_ actions.Transient = (*Action)(nil)
)

// New returns the restore-vault action.
func New(cfg *runbook.Config, load LoadAWS, log *slog.Logger) *Action {
	if log == nil {
		log = slog.Default()
	}
	return &Action{cfg: cfg, load: load, Now: time.Now, log: log}
}

// Kind implements actions.Action.
func (*Action) Kind() string { return Kind }

// TransientSpec implements actions.Transient: the stamp and the pre-restore
// name come from the planning time.
func (*Action) TransientSpec() []string { return []string{"stamp", "pre_restore"} }

// Spec is the pinned execution input. It holds no credentials.
type Spec struct {
	Service    string `json:"service"`
	AddressEnv string `json:"address_env"`
	TokenEnv   string `json:"token_env"`
	// Address is Vault's address when planned (from AddressEnv).
	Address  string         `json:"address"`
	Location string         `json:"location"`
	Snapshot storage.Object `json:"snapshot"`
	Stamp    string         `json:"stamp"`
	// PreRestore is the name (relative to Location) the current state is
	// saved as; empty in a drill.
	PreRestore string   `json:"pre_restore,omitempty"`
	Verify     []string `json:"verify,omitempty"`
	// Drill: fetch and check the snapshot only; nothing is saved or restored.
	Drill bool `json:"drill,omitempty"`
}

// SpecOf decodes a plan's spec.
func SpecOf(p actions.Plan) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(p.Spec, &s); err != nil {
		return Spec{}, fmt.Errorf("decode %s plan: %w", p.Kind, err)
	}
	if s.Location == "" || s.Snapshot.Key == "" || (!s.Drill && s.PreRestore == "") {
		return Spec{}, fmt.Errorf("decode %s plan: incomplete spec", p.Kind)
	}
	return s, nil
}

// SaveResult is the save-current step's recorded outcome.
type SaveResult struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	Index  uint64 `json:"index,omitempty"`
	// Existing: an earlier attempt had already stored it.
	Existing bool `json:"existing,omitempty"`
}

// RestoreResult is the restore step's recorded outcome.
type RestoreResult struct {
	Bytes int64 `json:"bytes"`
}

// env reads Vault's address and token from the variables cfg names; a
// missing one is a refusal naming the variable.
func env(addressEnv, tokenEnv string, needToken bool) (addr, token string, err error) {
	addr = strings.TrimSpace(os.Getenv(addressEnv))
	if addr == "" {
		return "", "", actions.Refusef("Vault's address is not set: the environment variable %s (vault.address_env) is empty or unset", addressEnv)
	}
	u, perr := url.Parse(addr)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", actions.Refusef("%s does not hold a Vault address such as https://vault.example:8200", addressEnv)
	}
	u.User = nil
	addr = strings.TrimRight(u.String(), "/")
	token = os.Getenv(tokenEnv)
	if needToken && token == "" {
		return "", "", actions.Refusef("no Vault token: the environment variable %s (vault.token_env) is empty or unset", tokenEnv)
	}
	return addr, token, nil
}

// client returns a Vault client of addr with token; timeout bounds each
// call (0: only ctx does).
func client(addr, token string, timeout time.Duration) (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client: %w", cfg.Error)
	}
	cfg.Address = addr
	cfg.Timeout = timeout
	cfg.MaxRetries = 0 // a snapshot is not re-sent behind our back
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.SetToken(token)
	c.SetClientTimeout(timeout)
	return c, nil
}

// service resolves the service and its vault block.
func (a *Action) service(p actions.Params) (*runbook.Service, *runbook.Vault, error) {
	svc, err := p.ServiceIn(a.cfg)
	if err != nil {
		return nil, nil, err
	}
	if svc.Vault == nil {
		return nil, nil, actions.Refusef("service %s has no vault in the runbook config", svc.Name)
	}
	if svc.Vault.Snapshots.IsZero() {
		return nil, nil, actions.Refusef("service %s has no vault.snapshots location in the runbook config", svc.Name)
	}
	return svc, svc.Vault, nil
}

// pick pins --backup NAME or the newest snapshot.
func pick(ctx context.Context, st storage.Store, name string) (storage.Object, error) {
	loc := st.Location().String()
	if name != "" {
		if strings.Contains(name, "..") {
			return storage.Object{}, actions.Refusef("%q is not a snapshot name", name)
		}
		obj, err := st.Stat(ctx, name)
		if errors.Is(err, storage.ErrNotFound) {
			return storage.Object{}, actions.Refusef("no snapshot %q in %s", name, loc)
		}
		if err != nil {
			return storage.Object{}, fmt.Errorf("stat %s in %s: %w", name, loc, err)
		}
		return obj, nil
	}
	objs, _, err := storage.Newest(ctx, st, 1, func(o storage.Object) bool { return IsSnapshot(o.Name) })
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Object{}, actions.Refusef("the snapshots location %s does not exist", loc)
	}
	if err != nil {
		return storage.Object{}, actions.Refusef("cannot list the snapshots in %s: %s", loc, firstLine(err))
	}
	if len(objs) == 0 {
		return storage.Object{}, actions.Refusef("no Vault snapshot in %s (pre-restore-* snapshots are only restored when named with --backup)", loc)
	}
	// Stat pins the version on a versioned bucket.
	obj, err := st.Stat(ctx, objs[0].Key)
	if err != nil {
		return storage.Object{}, fmt.Errorf("pin %s: %w", objs[0].Name, err)
	}
	return obj, nil
}

// Plan implements actions.Action.
func (a *Action) Plan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	return a.plan(ctx, p, false)
}

// DrillPlan implements actions.Drillable: the same snapshot pinned, fetched
// and checked for integrity; nothing saved, nothing restored, Vault not
// called.
func (a *Action) DrillPlan(ctx context.Context, p actions.Params) (actions.Plan, error) {
	return a.plan(ctx, p, true)
}

func (a *Action) plan(ctx context.Context, p actions.Params, drill bool) (actions.Plan, error) {
	svc, v, err := a.service(p)
	if err != nil {
		return actions.Plan{}, err
	}
	var addr, token string
	var health actions.CheckResult
	if !drill {
		if addr, token, err = env(v.AddressEnv, v.TokenEnv, true); err != nil {
			return actions.Plan{}, err
		}
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		h, herr := healthOf(hctx, addr, "")
		cancel()
		if herr != nil {
			return actions.Plan{}, actions.Refusef("cannot reach Vault at %s (%s): %s; nothing was planned", addr, v.AddressEnv, firstLine(herr))
		}
		switch {
		case !h.Initialized:
			return actions.Plan{}, actions.Refusef("Vault at %s is not initialized: initialize and unseal it (vault operator init), put its token in %s, then request the restore again", addr, v.TokenEnv)
		case h.Sealed:
			return actions.Plan{}, actions.Refusef("Vault at %s is sealed: unseal it (vault operator unseal), then request the restore again", addr)
		}
		health = healthCheck(addr, h, 0)
		if err := checkToken(ctx, addr, token, v.TokenEnv); err != nil {
			return actions.Plan{}, err
		}
	}
	st, err := a.open(ctx, v.Snapshots)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("restore-vault %s: %w", svc.Name, err)
	}
	obj, err := pick(ctx, st, flagBackup.String(p))
	if err != nil {
		return actions.Plan{}, err
	}
	now := a.Now().UTC()
	stamp := now.Format(StampFormat)
	s := Spec{
		Service: svc.Name, AddressEnv: v.AddressEnv, TokenEnv: v.TokenEnv, Address: addr,
		Location: v.Snapshots.String(), Snapshot: obj, Stamp: stamp, Verify: v.Verify, Drill: drill,
	}
	age := max(now.Sub(obj.LastModified), 0).Truncate(time.Second)
	ageFact := actions.HumanAge(age) + " old"
	var warnings []string
	if every := v.Every.Duration; every > 0 {
		ageFact += " (expected every " + actions.HumanAge(every) + ")"
		if age > every+every/10 {
			warnings = append(warnings, fmt.Sprintf("the snapshot is %s old, older than expected (every %s): secrets written since %s are not in it",
				actions.HumanAge(age), actions.HumanAge(every), obj.LastModified.Format(time.RFC3339)))
		}
	}
	if !IsSnapshot(obj.Name) {
		warnings = append(warnings, obj.Name+" is a snapshot drbot saved before an earlier restore")
	}
	version := obj.VersionID
	if version == "" {
		version = "ETag " + obj.ETag
	}
	plan := actions.Plan{
		Kind: Kind, Service: svc.Name,
		Facts: []actions.Fact{
			{Label: "Snapshot", Value: s.Location + " " + obj.Name},
			{Label: "Version", Value: version},
			{Label: "Size", Value: actions.HumanSize(obj.Size)},
			{Label: "Age", Value: ageFact},
		},
		Warnings: warnings,
	}
	if drill {
		plan.Target = "vault-drill:" + svc.Name + "/" + stamp
		plan.Summary = fmt.Sprintf("Drill: fetch Vault snapshot %s (%s old) and check its integrity; nothing is restored", obj.Name, actions.HumanAge(age))
		plan.Steps = []actions.Step{{Name: StepFetch, Description: fmt.Sprintf("stream %s (%s) and check its checksums (SHA256SUMS); nothing is written or restored", obj.Name, actions.HumanSize(obj.Size))}}
	} else {
		s.PreRestore = PreRestoreName(stamp)
		// The save never replaces a snapshot: a name already taken (an
		// undo planned within the second of the restore it undoes, whose
		// kept snapshot has exactly this name) would leave the current
		// state unsaved.
		if _, err := st.Stat(ctx, s.PreRestore); err == nil || s.PreRestore == obj.Name {
			return actions.Plan{}, actions.Refusef("%s already exists in %s (saved by a restore within this second): request the restore again in a second, so that Vault's current state is saved under a new name", s.PreRestore, s.Location)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return actions.Plan{}, fmt.Errorf("restore-vault %s: stat %s: %w", svc.Name, s.PreRestore, err)
		}
		plan.Target = "vault:" + svc.Name
		plan.Summary = fmt.Sprintf("Restore Vault of %s from %s (%s old)", svc.Name, obj.Name, actions.HumanAge(age))
		verify := "sys/health: initialized, unsealed, active"
		for _, path := range v.Verify {
			verify += "; " + path + " lists keys"
		}
		plan.Facts = append(plan.Facts,
			actions.Fact{Label: "Vault", Value: addr + " (address from " + v.AddressEnv + ", token from " + v.TokenEnv + ")"},
			actions.Fact{Label: "Vault now", Value: health.Observed},
			actions.Fact{Label: "Current state saved as (kept)", Value: st.url(s.PreRestore)},
			actions.Fact{Label: "Verified after", Value: verify},
		)
		if !health.OK {
			plan.Warnings = append(plan.Warnings, "Vault at "+addr+" is "+health.Observed+" now")
		}
		if len(v.Verify) == 0 {
			plan.Warnings = append(plan.Warnings, "no vault.verify paths are configured: only Vault's health is checked afterwards")
		}
		plan.Steps = []actions.Step{
			{Name: StepSave, Description: "save Vault's current state (sys/storage/raft/snapshot) as " + st.url(s.PreRestore) + "; kept, never deleted"},
			{Name: StepFetch, Description: fmt.Sprintf("stream %s (%s), pinned, and check its checksums (SHA256SUMS)", obj.Name, actions.HumanSize(obj.Size))},
			{Name: StepRestore, Description: "install it: sys/storage/raft/snapshot-force"},
		}
	}
	if plan.Spec, err = json.Marshal(s); err != nil {
		return actions.Plan{}, fmt.Errorf("restore-vault %s: encode plan: %w", svc.Name, err)
	}
	return plan, nil
}

// checkToken refuses a token Vault does not accept (auth/token/lookup-self,
// which every valid token may call), so a request bound to fail at its
// first step is not submitted for approval.
func checkToken(ctx context.Context, addr, token, tokenEnv string) error {
	vc, err := client(addr, token, 10*time.Second)
	if err != nil {
		return err
	}
	_, err = vc.Auth().Token().LookupSelfWithContext(ctx)
	var re *vault.ResponseError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re) && re.StatusCode == http.StatusForbidden:
		return actions.Refusef("Vault at %s refuses the token from %s (403 permission denied): put a valid token there; nothing was planned", addr, tokenEnv)
	default:
		return actions.Refusef("cannot check the token from %s with Vault at %s: %s; nothing was planned", tokenEnv, addr, firstLine(err))
	}
}

// run is one Execute's state: the verified snapshot kept on disk between
// the fetch and the restore step.
type run struct {
	a     *Action
	s     Spec
	j     actions.Journal
	st    *snapshots
	local string    // temporary file holding the fetched snapshot
	check Integrity // its integrity
}

func (r *run) cleanup() {
	if r.local != "" {
		_ = os.Remove(r.local)
	}
}

// Execute implements actions.Action.
func (a *Action) Execute(ctx context.Context, plan actions.Plan, j actions.Journal) error {
	s, err := SpecOf(plan)
	if err != nil {
		return err
	}
	loc, err := runbook.ParseLocation(s.Location)
	if err != nil {
		return fmt.Errorf("restore-vault: location %q: %w", s.Location, err)
	}
	st, err := a.open(ctx, loc)
	if err != nil {
		return fmt.Errorf("restore-vault %s: %w", s.Service, err)
	}
	r := &run{a: a, s: s, j: j, st: st}
	defer r.cleanup()
	if s.Drill {
		in, err := actions.RunStep(ctx, j, StepFetch, func(ctx context.Context, _ bool) (Integrity, error) {
			return r.fetch(ctx)
		})
		if err != nil {
			return err
		}
		a.drills.Store(s.Stamp+"/"+s.Snapshot.Key, in)
		return nil
	}

	addr, token, err := env(s.AddressEnv, s.TokenEnv, true)
	if err != nil {
		return err
	}
	if addr != s.Address {
		return actions.Refusef("%s now points at %s, but the approved plan is for %s: nothing was restored; request the restore again", s.AddressEnv, addr, s.Address)
	}
	vc, err := client(addr, token, 0)
	if err != nil {
		return err
	}

	saved, err := actions.RunStep(ctx, j, StepSave, func(ctx context.Context, resumed bool) (SaveResult, error) {
		return r.save(ctx, vc, resumed)
	})
	if err != nil {
		return err
	}
	verb := "saved as"
	if saved.Existing {
		verb = "already saved as"
	}
	j.Note(ctx, fmt.Sprintf("Vault's state before the restore is %s %s (%s); it is kept — `/dr restore-vault %s --backup %s` puts it back",
		verb, saved.URL, actions.HumanSize(saved.Bytes), s.Service, saved.Name))

	fetched, err := actions.RunStep(ctx, j, StepFetch, func(ctx context.Context, _ bool) (Integrity, error) {
		return r.fetch(ctx)
	})
	if err != nil {
		return err
	}
	_, err = actions.RunStep(ctx, j, StepRestore, func(ctx context.Context, resumed bool) (RestoreResult, error) {
		if r.local == "" { // resumed: the fetched file died with the process
			in, err := r.fetch(ctx)
			if err != nil {
				return RestoreResult{}, err
			}
			if in.SHA256 != fetched.SHA256 {
				return RestoreResult{}, actions.Refusef("the snapshot %s fetched again differs from the one checked before (sha256 %s, was %s): nothing was restored",
					s.Snapshot.Name, short(in.SHA256), short(fetched.SHA256))
			}
		}
		if resumed {
			j.Note(ctx, "Resumed: installing the snapshot again (installing it twice leaves the same state).")
		}
		return r.restore(ctx, vc, addr)
	})
	return err
}

// save takes Vault's current state, checks it and stores it as the
// pre-restore snapshot.
func (r *run) save(ctx context.Context, vc *vault.Client, resumed bool) (SaveResult, error) {
	name := r.s.PreRestore
	res := SaveResult{Name: name, URL: r.st.url(name)}
	if resumed {
		if obj, err := r.st.Stat(ctx, name); err == nil {
			res.Bytes, res.Existing = obj.Size, true
			return res, nil
		}
	}
	f, err := os.CreateTemp(r.a.TempDir, "drbot-vault-current-*.snap")
	if err != nil {
		return res, fmt.Errorf("temporary file: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	defer f.Close()
	pw := &progressWriter{ctx: ctx, j: r.j, step: StepSave, w: f}
	if err := vc.Sys().RaftSnapshotWithContext(ctx, pw); err != nil {
		return res, vaultErr(err, r.s, "saving Vault's current state", "nothing was restored")
	}
	if _, err := f.Seek(0, 0); err != nil {
		return res, err
	}
	in, err := CheckSnapshot(f)
	if err != nil {
		return res, actions.Refusef("the snapshot Vault gave of its current state is damaged (%v): nothing was restored", err)
	}
	wrote, err := r.st.put(ctx, name, f, in.Bytes)
	if err != nil {
		return res, fmt.Errorf("store the pre-restore snapshot %s: %w", res.URL, err)
	}
	if !wrote && !resumed {
		// Another snapshot holds the name: it is not this state.
		return res, actions.Refusef("%s already exists, so Vault's current state could not be saved under that name: nothing was restored; request the restore again", res.URL)
	}
	res.Bytes, res.SHA256, res.Index, res.Existing = in.Bytes, in.SHA256, in.Index, !wrote
	return res, nil
}

// fetch streams the pinned snapshot into a temporary file, checking its
// integrity on the way.
func (r *run) fetch(ctx context.Context) (Integrity, error) {
	rc, err := r.st.Open(ctx, r.s.Snapshot)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return Integrity{}, actions.Refusef("the pinned snapshot %s is gone from %s: nothing was restored", storage.Describe(r.s.Snapshot), r.s.Location)
	case errors.Is(err, storage.ErrChanged):
		return Integrity{}, actions.Refusef("the snapshot %s changed since it was approved (%s pinned): nothing was restored; request the restore again", r.s.Snapshot.Name, storage.Describe(r.s.Snapshot))
	case err != nil:
		return Integrity{}, fmt.Errorf("open %s: %w", r.s.Snapshot.Name, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(r.a.TempDir, "drbot-vault-restore-*.snap")
	if err != nil {
		return Integrity{}, fmt.Errorf("temporary file: %w", err)
	}
	keep := false
	defer func() {
		_ = f.Close()
		if !keep {
			_ = os.Remove(f.Name())
		}
	}()
	pw := &progressWriter{ctx: ctx, j: r.j, step: StepFetch, w: f, total: r.s.Snapshot.Size}
	in, err := CheckSnapshot(io.TeeReader(rc, pw))
	if err != nil {
		if errors.Is(err, storage.ErrChanged) {
			return Integrity{}, actions.Refusef("the snapshot %s changed while it was read: nothing was restored", r.s.Snapshot.Name)
		}
		return Integrity{}, actions.Refusef("the snapshot %s failed its integrity check: %v; nothing was restored", r.s.Snapshot.Name, err)
	}
	if err := f.Sync(); err != nil {
		return Integrity{}, err
	}
	if r.s.Drill {
		return in, nil // the file goes: a drill writes nothing that stays
	}
	keep = true
	r.cleanup()
	r.local, r.check = f.Name(), in
	return in, nil
}

// restore installs the fetched snapshot.
func (r *run) restore(ctx context.Context, vc *vault.Client, addr string) (RestoreResult, error) {
	f, err := os.Open(r.local)
	if err != nil {
		return RestoreResult{}, err
	}
	defer f.Close()
	// The file is seekable: the client streams it without buffering.
	if err := vc.Sys().RaftSnapshotRestoreWithContext(ctx, f, true); err != nil {
		undo := fmt.Sprintf("Vault's state before the restore is kept as %s: `/dr restore-vault %s --backup %s` puts it back",
			r.st.url(r.s.PreRestore), r.s.Service, r.s.PreRestore)
		var re *vault.ResponseError
		switch {
		case ctx.Err() != nil:
			return RestoreResult{}, fmt.Errorf("installing the snapshot: %w", err) // interrupted: resumed
		case !errors.As(err, &re):
			// The request may have reached Vault: the connection broke
			// before it answered.
			return RestoreResult{}, actions.Refusef("the connection to Vault at %s broke while installing the snapshot %s: whether Vault installed it is unknown (check with /dr diagnose %s). %s; /dr restore-vault %s --backup %s tries the restore again",
				r.s.Address, r.s.Snapshot.Name, r.s.Service, undo, r.s.Service, r.s.Snapshot.Name)
		}
		return RestoreResult{}, vaultErr(err, r.s, "installing the snapshot", "Vault reported the restore failed. "+undo)
	}
	r.j.Progress(ctx, actions.Progress{Step: StepRestore, Done: r.check.Bytes, Total: r.check.Bytes, Unit: "bytes"})
	return RestoreResult{Bytes: r.check.Bytes}, nil
}

// vaultErr turns a Vault API error into a user-safe refusal (Vault's own
// error strings carry no secrets; the token is never in them).
func vaultErr(err error, s Spec, doing, outcome string) error {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		detail := strings.Join(re.Errors, "; ")
		switch re.StatusCode {
		case http.StatusForbidden:
			return actions.Refusef("Vault at %s refused the token from %s while %s (403 permission denied): %s", s.Address, s.TokenEnv, doing, outcome)
		case http.StatusServiceUnavailable:
			return actions.Refusef("Vault at %s is sealed or unavailable (503%s) while %s: %s", s.Address, orEmpty(detail), doing, outcome)
		}
		return actions.Refusef("Vault at %s answered %d%s while %s: %s", s.Address, re.StatusCode, orEmpty(detail), doing, outcome)
	}
	if errors.Is(err, vault.ErrIncompleteSnapshot) {
		return actions.Refusef("Vault at %s gave an incomplete snapshot while %s: %s", s.Address, doing, outcome)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

func orEmpty(detail string) string {
	if detail == "" {
		return ""
	}
	return ": " + detail
}

// Verify implements actions.Action.
func (a *Action) Verify(ctx context.Context, plan actions.Plan) (actions.Report, error) {
	s, err := SpecOf(plan)
	if err != nil {
		return actions.Report{}, err
	}
	if s.Drill {
		return a.verifyDrill(ctx, s)
	}
	loc, err := runbook.ParseLocation(s.Location)
	if err != nil {
		return actions.Report{}, err
	}
	st, err := a.open(ctx, loc)
	if err != nil {
		return actions.Report{}, err
	}
	kept := st.url(s.PreRestore) + "; `/dr restore-vault " + s.Service + " --backup " + s.PreRestore + "` puts it back"
	var rep actions.Report
	addr, token, err := env(s.AddressEnv, s.TokenEnv, true)
	if err != nil {
		return actions.Report{}, err
	}
	vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	vc, err := client(addr, token, 0)
	if err != nil {
		return actions.Report{}, err
	}
	hc := a.health(vctx, addr)
	if !hc.OK {
		hc.Error = joinNote(hc.Error, "the state before the restore is kept as "+kept)
	}
	rep.Checks = append(rep.Checks, hc)
	for _, path := range s.Verify {
		c := listCheck(vctx, vc, path)
		if !c.OK {
			c.Error = joinNote(c.Error, "the state before the restore is kept as "+kept)
		}
		rep.Checks = append(rep.Checks, c)
	}
	c := actions.CheckResult{Name: "pre-restore snapshot kept", Kind: "snapshot", Target: st.url(s.PreRestore), Expected: "stored"}
	start := time.Now()
	obj, err := st.Stat(ctx, s.PreRestore)
	c.Latency = time.Since(start)
	if err != nil {
		c.Observed = "missing"
		c.Error = "cannot find the pre-restore snapshot: " + firstLine(err)
	} else {
		c.OK, c.Observed = true, actions.HumanSize(obj.Size)+" stored"
	}
	rep.Checks = append(rep.Checks, c)
	return rep, nil
}

func joinNote(msg, note string) string {
	if msg == "" {
		return note
	}
	return msg + "; " + note
}

// verifyDrill reports the drill's integrity check (fetching again after a
// restart).
func (a *Action) verifyDrill(ctx context.Context, s Spec) (actions.Report, error) {
	c := actions.CheckResult{Name: "snapshot integrity", Kind: "snapshot", Target: s.Location + " " + s.Snapshot.Name, Expected: "checksums match"}
	start := time.Now()
	var in Integrity
	if v, ok := a.drills.LoadAndDelete(s.Stamp + "/" + s.Snapshot.Key); ok {
		in = v.(Integrity)
	} else {
		loc, err := runbook.ParseLocation(s.Location)
		if err != nil {
			return actions.Report{}, err
		}
		st, err := a.open(ctx, loc)
		if err != nil {
			return actions.Report{}, err
		}
		r := &run{a: a, s: s, j: nopJournal{}, st: st}
		in, err = r.fetch(ctx)
		c.Latency = time.Since(start)
		if err != nil {
			c.Observed, c.Error = "not intact", firstLine(err)
			return actions.Report{Checks: []actions.CheckResult{c}}, nil
		}
	}
	c.OK = true
	c.Observed = fmt.Sprintf("%d files, checksums match, raft index %d, %s (sha256 %s)", len(in.Files), in.Index, actions.HumanSize(in.Bytes), short(in.SHA256))
	return actions.Report{Checks: []actions.CheckResult{c}}, nil
}

// listCheck is `vault kv list path`: it passes when the path lists keys.
func listCheck(ctx context.Context, vc *vault.Client, path string) actions.CheckResult {
	c := actions.CheckResult{Name: "vault kv list " + path, Kind: "vault", Target: path, Expected: "at least one key"}
	start := time.Now()
	keys, err := kvList(ctx, vc, path)
	c.Latency = time.Since(start)
	switch {
	case err != nil:
		c.Observed = "error"
		c.Error = firstLine(err)
	case len(keys) == 0:
		c.Observed = "no keys"
		c.Error = path + " lists nothing after the restore"
	default:
		c.OK = true
		c.Observed = fmt.Sprintf("%d keys", len(keys))
		if len(keys) == 1 {
			c.Observed = "1 key"
		}
	}
	return c
}

// kvList lists path as `vault kv list` does: it asks Vault which mount the
// path is on and its KV version (sys/internal/ui/mounts), and lists
// <mount>/metadata/<rest> on KV v2, the path itself otherwise.
func kvList(ctx context.Context, vc *vault.Client, path string) ([]string, error) {
	path = strings.Trim(path, "/")
	listPath := path
	if m, err := vc.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+path); err == nil && m != nil {
		mount, _ := m.Data["path"].(string)
		var version string
		if opts, ok := m.Data["options"].(map[string]any); ok {
			version, _ = opts["version"].(string)
		}
		if version == "2" && mount != "" {
			mount = strings.TrimSuffix(mount, "/")
			rest := strings.Trim(strings.TrimPrefix(path, mount), "/")
			listPath = mount + "/metadata/" + rest
		}
	}
	sec, err := vc.Logical().ListWithContext(ctx, listPath)
	if err != nil {
		var re *vault.ResponseError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("Vault answered %d listing %s: %s", re.StatusCode, path, strings.Join(re.Errors, "; ")) //nolint:staticcheck // Vault is a name
		}
		return nil, fmt.Errorf("list %s: %w", path, err)
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	raw, _ := sec.Data["keys"].([]any)
	out := make([]string, 0, len(raw))
	for _, k := range raw {
		if s, ok := k.(string); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// Health reads the health of the Vault cfg names (sys/health; no token
// needed): OK when it is initialized, unsealed and active. A missing
// address variable or an unreachable Vault is a failed check with a
// user-safe reason.
func Health(ctx context.Context, cfg *runbook.Vault) actions.CheckResult {
	if cfg == nil {
		return actions.CheckResult{Name: "vault health", Kind: "vault", Observed: "not configured", Error: "no vault in the runbook config"}
	}
	addr, _, err := env(cfg.AddressEnv, cfg.TokenEnv, false)
	if err != nil {
		c := actions.CheckResult{Name: "vault health", Kind: "vault", Target: cfg.AddressEnv, Expected: "initialized, unsealed, active", Observed: "not checked"}
		if rf, ok := usererr.As(err); ok {
			c.Error = rf.Msg
		} else {
			c.Error = err.Error()
		}
		return c
	}
	return (&Action{}).health(ctx, addr)
}

func (a *Action) health(ctx context.Context, addr string) actions.CheckResult {
	start := time.Now()
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	h, err := healthOf(hctx, addr, "")
	if err != nil {
		return actions.CheckResult{Name: "vault health", Kind: "vault", Target: addr, Expected: "initialized, unsealed, active",
			Observed: "unreachable", Error: firstLine(err), Latency: time.Since(start)}
	}
	return healthCheck(addr, h, time.Since(start))
}

func healthOf(ctx context.Context, addr, token string) (*vault.HealthResponse, error) {
	vc, err := client(addr, token, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return vc.Sys().HealthWithContext(ctx)
}

func healthCheck(addr string, h *vault.HealthResponse, latency time.Duration) actions.CheckResult {
	c := actions.CheckResult{Name: "vault health", Kind: "vault", Target: addr, Expected: "initialized, unsealed, active", Latency: latency}
	var parts []string
	ok := true
	add := func(good bool, yes, no string) {
		if good {
			parts = append(parts, yes)
		} else {
			parts = append(parts, no)
			ok = false
		}
	}
	add(h.Initialized, "initialized", "not initialized")
	add(!h.Sealed, "unsealed", "sealed")
	add(!h.Standby, "active", "standby")
	c.Observed = strings.Join(parts, ", ")
	if h.Version != "" {
		c.Observed += " (Vault " + h.Version + ")"
	}
	c.OK = ok
	return c
}

func firstLine(err error) string {
	if rf, ok := usererr.As(err); ok {
		return rf.Msg
	}
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// progressWriter reports bytes written as a step's progress.
type progressWriter struct {
	ctx   context.Context
	j     actions.Journal
	step  string
	w     io.Writer
	n     int64
	total int64
	last  time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if now := time.Now(); now.Sub(p.last) > 200*time.Millisecond || (p.total > 0 && p.n == p.total) {
		p.last = now
		p.j.Progress(p.ctx, actions.Progress{Step: p.step, Done: p.n, Total: p.total, Unit: "bytes"})
	}
	return n, err
}

// nopJournal is for a drill's Verify that fetches again.
type nopJournal struct{}

func (nopJournal) Begin(context.Context, string) (json.RawMessage, bool, bool, error) {
	return nil, false, false, nil
}
func (nopJournal) Finish(context.Context, string, any, error) error { return nil }
func (nopJournal) Progress(context.Context, actions.Progress)       {}
func (nopJournal) Note(context.Context, string)                     {}
