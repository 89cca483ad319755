package vaultrestore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/vaultrestore"
	"github.com/drbot-dev/drbot/internal/fakevault"
	"github.com/drbot-dev/drbot/internal/usererr"
)

// TestRestoreVaultUndoWithKeptSnapshot: a restore whose verification fails
// (the snapshot lacks secret/prod) names the kept pre-restore snapshot and
// the exact command that puts it back; that command, planned a second
// later, pins the pre-restore snapshot (although "newest" never picks
// one), installs it, and the secrets from before are back and verified;
// the undo keeps its own pre-restore snapshot (the broken state) under a
// new name.
func TestRestoreVaultUndoWithKeptSnapshot(t *testing.T) {
	w := newWorld(t)
	w.vault.Put("secret/prod/db", map[string]string{"password": "p1"})
	w.put(t, prefix+"vault-20261130-020000.snap", fakevault.Archive(3, map[string]int{"secret": 2}, map[string]map[string]string{"secret/other/x": {"a": "b"}}))
	a := w.action(t)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(ctx(t), plan)
	if err != nil {
		t.Fatal(err)
	}
	kept := vaultrestore.PreRestoreName(w.now.Format(vaultrestore.StampFormat))
	undo := "/dr restore-vault inflow --backup " + kept
	if rep.OK() || len(rep.Failed()) != 1 || !strings.Contains(rep.Failed()[0].Error, "`"+undo+"`") {
		t.Fatalf("the failed verification does not suggest %q: %+v", undo, rep.Failed())
	}
	if _, ok := w.vault.Secrets()["secret/prod/db"]; ok {
		t.Fatal("the restore did not replace Vault's state")
	}

	// The suggested command, a second later.
	w.now = w.now.Add(time.Second)
	undoPlan, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Flags: map[string]string{"backup": kept}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fact(undoPlan, "Snapshot"); !strings.HasSuffix(got, " "+kept) {
		t.Fatalf("undo plans snapshot %q, want %s", got, kept)
	}
	if err := a.Execute(ctx(t), undoPlan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	if got := w.vault.Secrets()["secret/prod/db"]["password"]; got != "p1" {
		t.Fatalf("after the undo secret/prod/db = %v, want the state from before the restore", w.vault.Secrets())
	}
	if rep, err := a.Verify(ctx(t), undoPlan); err != nil || !rep.OK() {
		t.Fatalf("undo verification: %+v %v", rep, err)
	}
	broken, err := w.get(t, prefix+vaultrestore.PreRestoreName(w.now.Format(vaultrestore.StampFormat)))
	if err != nil {
		t.Fatalf("the undo did not keep the state it replaced: %v", err)
	}
	other := fakevault.New()
	defer other.Close()
	if err := other.Install(broken); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Secrets()["secret/other/x"]; !ok {
		t.Errorf("the undo's pre-restore snapshot is not the state it replaced: %v", other.Secrets())
	}
}

// TestRestoreVaultUndoSameSecond: the undo planned within the second of
// the restore would save Vault's current state under the very name it
// restores from. It is refused at plan time (nothing is overwritten or
// passed off as saved), and a save that finds its name taken at execution
// fails before anything is restored instead of claiming the other
// snapshot as the current state.
func TestRestoreVaultUndoSameSecond(t *testing.T) {
	w := newWorld(t)
	w.vault.Put("secret/prod/db", map[string]string{"password": "p1"})
	w.put(t, prefix+"vault-20261130-020000.snap", fakevault.Archive(3, map[string]int{"secret": 2}, map[string]map[string]string{"secret/other/x": {"a": "b"}}))
	a := w.action(t)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	// Planned twice in the same second: the second plan is approved after
	// the first ran.
	plan2, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Execute(ctx(t), plan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	kept := vaultrestore.PreRestoreName(w.now.Format(vaultrestore.StampFormat))
	_, err = a.Plan(ctx(t), actions.Params{Service: "inflow", Flags: map[string]string{"backup": kept}})
	if rf, ok := usererr.As(err); !ok || !strings.Contains(rf.Msg, kept+" already exists") {
		t.Fatalf("undo in the same second: err = %v, want a refusal naming %s", err, kept)
	}
	restores := w.vault.Restores()
	err = a.Execute(ctx(t), plan2, actiontest.NewJournal())
	if rf, ok := usererr.As(err); !ok || !strings.Contains(rf.Msg, "nothing was restored") {
		t.Fatalf("second execution with a taken pre-restore name: err = %v, want a refusal before the restore", err)
	}
	if w.vault.Restores() != restores {
		t.Fatal("Vault was restored although its current state was not saved")
	}
}

// TestRestoreVaultConnectionDropsDuringInstall: Vault installs the
// snapshot but the connection drops before it answers. The failure is
// user-safe and says that whether Vault installed it is unknown, and gives
// the command that puts the kept state back; that command works.
func TestRestoreVaultConnectionDropsDuringInstall(t *testing.T) {
	w := newWorld(t)
	w.vault.Put("secret/prod/db", map[string]string{"password": "p1"})
	w.put(t, prefix+"vault-20261130-020000.snap", fakevault.Archive(3, map[string]int{"secret": 2}, map[string]map[string]string{"secret/other/x": {"a": "b"}}))
	a := w.action(t)
	plan, err := a.Plan(ctx(t), actions.Params{Service: "inflow"})
	if err != nil {
		t.Fatal(err)
	}
	w.vault.DropRestore()
	err = a.Execute(ctx(t), plan, actiontest.NewJournal())
	kept := vaultrestore.PreRestoreName(w.now.Format(vaultrestore.StampFormat))
	undo := "`/dr restore-vault inflow --backup " + kept + "`"
	rf, ok := usererr.As(err)
	if !ok || !strings.Contains(rf.Msg, "whether Vault installed it is unknown") || !strings.Contains(rf.Msg, undo) {
		t.Fatalf("err = %v, want a refusal saying the outcome is unknown with %s", err, undo)
	}
	if _, ok := w.vault.Secrets()["secret/prod/db"]; ok {
		t.Fatal("the fake did not install the snapshot before dropping")
	}
	w.now = w.now.Add(time.Second)
	undoPlan, err := a.Plan(ctx(t), actions.Params{Service: "inflow", Flags: map[string]string{"backup": kept}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Execute(ctx(t), undoPlan, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	if got := w.vault.Secrets()["secret/prod/db"]["password"]; got != "p1" {
		t.Fatalf("after the undo Vault holds %v", w.vault.Secrets())
	}
}
