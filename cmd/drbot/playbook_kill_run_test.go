package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/playbook"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/internal/fakeslack"
	"github.com/drbot-dev/drbot/store"
)

// sleepers returns the pids of processes whose argv is exactly argv.
func sleepers(argv ...string) []string {
	want := []byte(strings.Join(argv, "\x00") + "\x00")
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Equal(b, want) {
			out = append(out, e.Name())
		}
	}
	return out
}

// poll reports whether cond became true within wait, checking every 20ms
// (fakeslack's WaitFor only looks again when Slack changes).
func poll(cond func() bool) bool {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// TestKilledServeDuringRunStep: the real `drbot serve` is killed with
// SIGKILL while a playbook's run: step (a long sleep) runs. The command
// dies with it (no orphan keeps running while the next process starts);
// the next process resumes the request, says in the card's thread that the
// command was interrupted and runs again, runs it and the step after it
// once, and the playbook succeeds.
func TestKilledServeDuringRunStep(t *testing.T) {
	const steps = `          - name: slow
            run: [sleep, "4.321"]
          - name: after
            run: [mkdir, stage2]`
	w, dir := playbookWorld(t, steps)
	cfgFile := filepath.Join(t.TempDir(), "e2e.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(playbookYAML, steps)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(e2eBinary(t), "serve", "--config", cfgFile, "--log-format", "json")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"DATABASE_URL=" + w.url, "DRBOT_LISTEN=" + addr,
		"SLACK_BOT_TOKEN=" + w.slack.BotToken(), "SLACK_SIGNING_SECRET=" + e2eSecret, "SLACK_API_URL=" + w.slack.APIURL(),
		"DRBOT_E2E_ACTIONS_URL=" + w.url, "DRBOT_EXECUTION_LEASE=5s",
		playbook.DirEnv + "=" + dir,
	}
	srv := startServer(t, cmd, addr)
	form := fakeslack.SlashCommand{Text: "playbook cluster-recovery", UserID: alice, UserName: "alice", ChannelID: w.channel}.Form()
	signedPost(t, srv.base+"/slack/commands", form.Encode())
	probe := startProbe(t, w)
	card, id := w.card(t, probe, 0)
	signedPost(t, srv.base+"/slack/interactions", clickPayload(t, w, card, bob, chat.ActionApprove, id))
	if !poll(func() bool { return len(sleepers("sleep", "4.321")) == 1 }) {
		r, _ := probe.Request(context.Background(), id)
		t.Fatalf("step 1's command never ran: %s %+v", r.State, w.slack.Messages(w.channel))
	}
	srv.kill()
	if !poll(func() bool { return len(sleepers("sleep", "4.321")) == 0 }) {
		t.Fatalf("step 1's command outlived drbot: %v", sleepers("sleep", "4.321"))
	}
	if _, err := os.Stat(filepath.Join(dir, "stage2")); err == nil {
		t.Fatal("step 2 ran before step 1 finished")
	}

	in := startPlaybookInstance(t, w, dir)
	w.waitState(t, in.db, id, store.RequestSucceeded)
	w.waitCard(t, card.TS, "succeeded")
	if _, err := os.Stat(filepath.Join(dir, "stage2")); err != nil {
		t.Fatalf("step 2 did not run: %v", err)
	}
	started := map[string]int{}
	evs, err := in.db.AuditEvents(context.Background(), store.AuditFilter{RequestID: &id})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Kind == store.AuditStepStarted {
			var d actions.StepRecord
			if err := jsonUnmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			started[d.Step]++
		}
	}
	if started["1.run"] != 2 || started["2.run"] != 1 {
		t.Errorf("step.started per step = %v; want 1.run twice (killed, resumed), 2.run once", started)
	}
	if len(messagesWith(w, w.channel, "the command of step 1 (slow) was interrupted")) == 0 {
		t.Error("the thread was not told step 1's command was interrupted and runs again")
	}
}
