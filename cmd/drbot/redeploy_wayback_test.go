package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/playbook"
	"github.com/drbot-dev/drbot/actions/redeploy"
	"github.com/drbot-dev/drbot/actions/redeploy/redeploytest"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/slack"
	"github.com/drbot-dev/drbot/runbook"
	"github.com/drbot-dev/drbot/store"
	"github.com/drbot-dev/drbot/store/postgres"
)

// TestRedeployFailureSuggestsTheWayBack: v1 is redeployed; v2 (a new
// commit on main) is planned — its card names v1 as the commit of the last
// successful redeploy — and its rollout never completes: the request fails
// and the card suggests `/dr redeploy inflow --ref <v1>`. Pasted and
// approved, it redeploys v1 (the card says the ref overrides the config's),
// and v1's image is live again. Hostile --ref values are refused before
// anything is fetched.
func TestRedeployFailureSuggestsTheWayBack(t *testing.T) {
	rw := newRedeployWorld(t)
	rw.action.Timeout = 2 * time.Second
	in := serveWith(t, rw.world, func(ctx context.Context, log *slog.Logger, db *postgres.DB, client *slack.Client) *runtime {
		rw.action.History = db
		reg := actions.Registry{}
		reg.Register(rw.action)
		return newRuntimeWith(ctx, log, rw.cfg, db, client, reg)
	})
	v1 := rw.repo.Git("rev-parse", "HEAD")

	in.command(t, rw.world, alice, "redeploy inflow")
	card, id1 := rw.card(t, in.db, 0)
	in.click(t, clickPayload(t, rw.world, card, bob, chat.ActionApprove, id1))
	rw.waitState(t, in.db, id1, store.RequestSucceeded)

	rw.repo.Commit("inflow v2", redeploytest.App("inflow-api", redeployNS, "v2", 2))
	rw.cluster.Hang(redeployNS, "inflow-api", true)
	in.command(t, rw.world, alice, "redeploy inflow")
	card2, id2 := rw.card(t, in.db, id1)
	if b := unescape(card2.Blocks); !strings.Contains(b, fmt.Sprintf("%s (request #%d)", v1, id1)) {
		t.Errorf("the v2 card does not name v1 as the last successful redeploy:\n%s", b)
	}
	in.click(t, clickPayload(t, rw.world, card2, bob, chat.ActionApprove, id2))
	rw.waitState(t, in.db, id2, store.RequestFailed)
	back := "/dr redeploy inflow --ref " + v1
	if !rw.slack.WaitFor(wait, func() bool { return slices.Contains(rw.suggested(), back) }) {
		t.Fatalf("the failed redeploy does not suggest %q; suggested %q; card:\n%s", back, rw.suggested(), unescape(rw.waitCard(t, card2.TS, "failed").Blocks))
	}
	if got := rw.image(t); got != "registry.example.com/inflow-api:v2" {
		t.Fatalf("image after the failed redeploy: %q", got)
	}

	rw.cluster.Hang(redeployNS, "inflow-api", false)
	in.command(t, rw.world, alice, strings.TrimPrefix(back, "/dr "))
	card3, id3 := rw.card(t, in.db, id2)
	if b := unescape(card3.Blocks); !strings.Contains(b, v1+" (--ref; kubernetes.source.ref is main)") {
		t.Errorf("the way-back card does not say it overrides the ref:\n%s", b)
	}
	in.click(t, clickPayload(t, rw.world, card3, bob, chat.ActionApprove, id3))
	rw.waitState(t, in.db, id3, store.RequestSucceeded)
	if got := rw.image(t); got != "registry.example.com/inflow-api:v1" {
		t.Fatalf("image after the way back: %q", got)
	}

	for _, bad := range []string{"--upload-pack=/bin/sh", "-x", "main..v1", "main~1", "refs/heads/../../x", "a@{0}", "HEAD:secret", "/etc/passwd", "main.lock"} {
		in.command(t, rw.world, alice, "redeploy inflow --ref="+bad)
		rw.waitEphemeral(t, alice, fmt.Sprintf("%q is not a git branch, tag or commit", bad))
	}
	if rs, err := in.db.RecentRequests(context.Background(), "inflow", 10); err != nil || len(rs) != 3 {
		t.Fatalf("requests %d (want 3), %v", len(rs), err)
	}
}

// TestRedeployWayBackAfterPlaybook: v1 went out through a playbook's
// redeploy step; a plain redeploy of v2 that fails suggests v1 (the
// playbook's request) as the way back.
func TestRedeployWayBackAfterPlaybook(t *testing.T) {
	rw := newRedeployWorld(t)
	cfg, err := runbook.Parse("redeploy.yaml", []byte(rw.cfgText+`    playbooks:
      - name: rebuild
        steps:
          - action: redeploy
`))
	if err != nil {
		t.Fatal(err)
	}
	rw.cfg = cfg
	rw.action = redeploy.New(cfg, rw.cluster)
	rw.action.Poll = 10 * time.Millisecond
	rw.action.Timeout = 2 * time.Second
	in := serveWith(t, rw.world, func(ctx context.Context, log *slog.Logger, db *postgres.DB, client *slack.Client) *runtime {
		rw.action.History = db
		reg := actions.Registry{}
		reg.Register(rw.action)
		reg.Register(playbook.New(playbook.Options{Config: cfg, Lookup: func(k string) actions.Action { return reg[k] }, Store: db, Logger: log}))
		return newRuntimeWith(ctx, log, cfg, db, client, reg)
	})
	v1 := rw.repo.Git("rev-parse", "HEAD")
	in.command(t, rw.world, alice, "playbook rebuild inflow")
	card, id1 := rw.card(t, in.db, 0)
	in.click(t, clickPayload(t, rw.world, card, bob, chat.ActionApprove, id1))
	rw.waitState(t, in.db, id1, store.RequestSucceeded)

	rw.repo.Commit("inflow v2", redeploytest.App("inflow-api", redeployNS, "v2", 2))
	rw.cluster.Hang(redeployNS, "inflow-api", true)
	in.command(t, rw.world, alice, "redeploy inflow")
	card2, id2 := rw.card(t, in.db, id1)
	if b := unescape(card2.Blocks); !strings.Contains(b, fmt.Sprintf("%s (request #%d)", v1, id1)) {
		t.Errorf("the v2 card does not name the playbook's v1 as the last successful redeploy:\n%s", b)
	}
	in.click(t, clickPayload(t, rw.world, card2, bob, chat.ActionApprove, id2))
	rw.waitState(t, in.db, id2, store.RequestFailed)
	back := "/dr redeploy inflow --ref " + v1
	if !rw.slack.WaitFor(wait, func() bool { return slices.Contains(rw.suggested(), back) }) {
		t.Fatalf("the failed redeploy does not suggest %q; suggested %q", back, rw.suggested())
	}
}
