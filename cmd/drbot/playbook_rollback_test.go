package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/store"
)

// TestPlaybookRestoreIsRolledBack: a playbook whose restore-db step swaps
// the backup in and then fails its checks on live stops failed with the
// restored copy live. `/dr rollback inflow` (and the command the step
// suggested) finds that step although it was journaled under the
// playbook's request, names it on the card as the playbook's step, and once
// approved the previous database is live again; asked again by the
// playbook's request number it says who rolled it back.
func TestPlaybookRestoreIsRolledBack(t *testing.T) {
	w := newRestoreDBWorldWith(t, "", `    playbooks:
      - name: cluster-recovery
        steps:
          - name: prepare
            run: ["true"]
          - name: restore database
            action: restore-db
`)
	in := startServeInstance(t, w.world)

	in.command(t, w.world, alice, "playbook cluster-recovery")
	card, id := w.card(t, in.db, 0)
	in.click(t, clickPayload(t, w.world, card, bob, chat.ActionApprove, id))
	w.waitState(t, in.db, id, store.RequestFailed)
	w.waitCard(t, card.TS, "stopped at step 2 of 2 (restore database)")
	if w.marker(t) {
		t.Fatal("the row written after the backup is still live: the step's swap did not happen")
	}
	var suggestedRollback bool
	for _, c := range w.suggested() {
		if strings.HasPrefix(c, "/dr rollback inflow") {
			suggestedRollback = true
		}
	}
	if !suggestedRollback {
		t.Errorf("no rollback suggested; suggested: %q", w.suggested())
	}

	// The playbook's request number names the restore too.
	in.command(t, w.world, alice, fmt.Sprintf("rollback inflow %d", id))
	named, namedID := w.card(t, in.db, id)
	want := fmt.Sprintf("restore-db step 2 of playbook cluster-recovery, request #%d", id)
	if body := unescape(named.Blocks); !strings.Contains(body, want) {
		t.Errorf("rollback card (by number) lacks %q:\n%s", want, body)
	}
	in.command(t, w.world, alice, fmt.Sprintf("cancel %d", namedID))
	w.waitState(t, in.db, namedID, store.RequestCancelled)

	in.command(t, w.world, alice, "rollback")
	rbCard, rbID := w.card(t, in.db, namedID)
	body := unescape(rbCard.Blocks)
	for _, s := range []string{"Rolls back", want + ": from orders-20261201.dump", "(failed)", "kept by " + want} {
		if !strings.Contains(body, s) {
			t.Errorf("rollback card lacks %q:\n%s", s, body)
		}
	}
	in.click(t, clickPayload(t, w.world, rbCard, bob, chat.ActionApprove, rbID))
	w.waitState(t, in.db, rbID, store.RequestSucceeded)
	if !w.marker(t) {
		t.Fatal("after the rollback the data from before the playbook's restore is not live")
	}

	in.command(t, w.world, alice, fmt.Sprintf("rollback inflow %d", id))
	w.waitEphemeral(t, alice, fmt.Sprintf("%s was already rolled back by request #%d", want, rbID))
	in.command(t, w.world, alice, "rollback")
	w.waitEphemeral(t, alice, "nothing to roll back")
}

// TestPlaybookResumeAfterRollbackIsRefused: a playbook's restore-db step
// succeeds (swapped and verified) and a later step fails. `/dr rollback`
// finds the step and puts the previous database back. Resuming the
// playbook then would skip the restore (done) and go on with the database
// from before it: refused, naming the rollback.
func TestPlaybookResumeAfterRollbackIsRefused(t *testing.T) {
	w := newRestoreDBWorldWith(t, "SELECT count(*) FROM orders", `    playbooks:
      - name: cluster-recovery
        steps:
          - name: restore database
            action: restore-db
          - name: wait for go-ahead
            run: [test, -e, /nonexistent/go-ahead]
`)
	in := startServeInstance(t, w.world)
	in.command(t, w.world, alice, "playbook cluster-recovery")
	card, id := w.card(t, in.db, 0)
	in.click(t, clickPayload(t, w.world, card, bob, chat.ActionApprove, id))
	w.waitState(t, in.db, id, store.RequestFailed)
	w.waitCard(t, card.TS, "stopped at step 2 of 2 (wait for go-ahead)")
	if w.marker(t) {
		t.Fatal("the restore step did not swap")
	}

	in.command(t, w.world, alice, "rollback")
	rbCard, rbID := w.card(t, in.db, id)
	want := fmt.Sprintf("restore-db step 1 of playbook cluster-recovery, request #%d", id)
	if body := unescape(rbCard.Blocks); !strings.Contains(body, want) || !strings.Contains(body, "(failed)") {
		t.Errorf("rollback card lacks %q:\n%s", want, body)
	}
	in.click(t, clickPayload(t, w.world, rbCard, bob, chat.ActionApprove, rbID))
	w.waitState(t, in.db, rbID, store.RequestSucceeded)
	if !w.marker(t) {
		t.Fatal("after the rollback the previous database is not live")
	}

	in.command(t, w.world, alice, fmt.Sprintf("playbook resume %d", id))
	w.waitEphemeral(t, alice, fmt.Sprintf("step 1 (restore database) of request #%d was rolled back by request #%d", id, rbID))
}
