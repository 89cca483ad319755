package playbook_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/playbook"
	"github.com/drbot-dev/drbot/internal/usererr"
	"github.com/drbot-dev/drbot/runbook"
)

// terraform is the machine's real terraform; the tests need it.
func terraform(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("terraform"); err != nil {
		t.Fatalf("terraform is not on PATH: %v", err)
	}
}

// tfDir writes a configuration that needs no provider download
// (terraform_data is built in) into a fresh directory.
func tfDir(t *testing.T, main string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func config(t *testing.T, yaml string) *runbook.Config {
	t.Helper()
	cfg, err := runbook.Parse("playbook.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func params(t *testing.T, cfg *runbook.Config, service string, args map[string]string) actions.Params {
	t.Helper()
	svc, ok := cfg.Service(service)
	if !ok {
		t.Fatalf("no service %s", service)
	}
	return actions.Params{Service: service, Args: args, Flags: map[string]string{}, Resolved: svc}
}

func notes(j *actiontest.Journal) string { return strings.Join(j.Notes(), "\n") }

const tfConfig = `
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    playbooks:
      - name: cluster-recovery
        description: Complete cluster recovery (runbook section 3)
        steps:
          - name: init
            run: [terraform, init, -input=false, -no-color]
            timeout: 2m
          - name: provision infrastructure
            run: [terraform, apply, -auto-approve, -input=false, -no-color]
            timeout: 2m
            env_from: [TF_VAR_jwt_secret]
`

// TestRunStepsApplyTerraform: the real terraform inits (offline:
// terraform_data is built in) and applies; the output's tail reaches the
// thread, the env_from variable reaches terraform (its output is the
// variable) and its value never reaches the thread.
func TestRunStepsApplyTerraform(t *testing.T) {
	terraform(t)
	const secret = "jwt-4f1c9e0b-never-shown"
	dir := tfDir(t, `
variable "jwt_secret" { type = string }
resource "terraform_data" "cluster" {
  input = "lstm-pfd-${length(var.jwt_secret)}"
}
output "cluster" { value = terraform_data.cluster.output }
output "jwt" { value = var.jwt_secret }
`)
	cfg := config(t, tfConfig)
	env := map[string]string{"TF_VAR_jwt_secret": secret}
	a := playbook.New(opts(cfg, dir, func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	ctx := context.Background()
	plan, err := a.Plan(ctx, params(t, cfg, "lstm-pfd", map[string]string{"name": "cluster-recovery"}))
	if err != nil {
		t.Fatal(err)
	}
	facts := ""
	for _, f := range plan.Facts {
		facts += f.Label + ": " + f.Value + "\n"
	}
	if !strings.Contains(facts, "env TF_VAR_jwt_secret (values not shown)") || strings.Contains(facts+string(plan.Spec), secret) {
		t.Fatalf("plan facts/spec must name the variable, never its value:\n%s\n%s", facts, plan.Spec)
	}
	if got := []string{plan.Steps[0].Name, plan.Steps[1].Name}; got[0] != "1.run" || got[1] != "2.run" {
		t.Fatalf("steps = %v", got)
	}
	j := actiontest.NewJournal()
	if err := a.Execute(ctx, plan, j); err != nil {
		t.Fatalf("execute: %v\n%s", err, notes(j))
	}
	out := notes(j)
	if !strings.Contains(out, "Apply complete! Resources: 1 added") || !strings.Contains(out, `cluster = "lstm-pfd-24"`) {
		t.Errorf("the thread did not get terraform's output:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Fatalf("the env_from value reached the thread:\n%s", out)
	}
	if !strings.Contains(out, `jwt = "[redacted]"`) {
		t.Errorf("terraform printed the variable, redacted; want jwt = \"[redacted]\" in:\n%s", out)
	}
	st, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate"))
	if err != nil || !strings.Contains(string(st), "terraform_data") {
		t.Fatalf("no state with terraform_data: %v", err)
	}
	if got := j.Finished(); strings.Join(got, ",") != "1.run,2.run" {
		t.Errorf("finished = %v", got)
	}
	rep, err := a.Verify(ctx, plan)
	if err != nil || !rep.OK() || len(rep.Checks) != 2 {
		t.Errorf("verify = %+v, %v", rep, err)
	}
	// Run again on the same journal: both steps are done, nothing reruns.
	if err := a.Execute(ctx, plan, j); err != nil {
		t.Fatal(err)
	}
	if got := j.Skipped(); strings.Join(got, ",") != "1.run,2.run" {
		t.Errorf("second execution skipped %v, want both", got)
	}
}

// TestRunStepMissingEnvRefusedAtPlan: a missing env_from variable refuses
// the plan, naming the variable.
func TestRunStepMissingEnvRefusedAtPlan(t *testing.T) {
	cfg := config(t, tfConfig)
	a := playbook.New(opts(cfg, t.TempDir(), func(string) (string, bool) { return "", false }))
	_, err := a.Plan(context.Background(), params(t, cfg, "lstm-pfd", map[string]string{"name": "cluster-recovery"}))
	rf, ok := usererr.As(err)
	if !ok || !strings.Contains(rf.Msg, "TF_VAR_jwt_secret") || !strings.Contains(rf.Msg, "step 2 (provision infrastructure)") {
		t.Fatalf("err = %v, want a refusal naming the variable and the step", err)
	}
}

// TestRunStepGetsMinimalEnvAndRedactsKnownSecrets: the command's
// environment is the minimal one plus exactly env_from; drbot's own secrets
// are not passed, and one the command prints anyway is redacted.
func TestRunStepGetsMinimalEnvAndRedactsKnownSecrets(t *testing.T) {
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-bot-token-very-secret")
	t.Setenv("SHOP_DATABASE_URL", "postgres://app:pw-db-secret@db/shop")
	t.Setenv("DB_PASSWORD", "hunter2-db-password")
	cfg := config(t, `
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    playbooks:
      - name: show-env
        steps:
          - run: [env]
            env_from: [DB_PASSWORD]
          - name: print
            run: [echo, leaked, xoxb-bot-token-very-secret]
`)
	a := playbook.New(opts(cfg, t.TempDir(), nil))
	ctx := context.Background()
	plan, err := a.Plan(ctx, params(t, cfg, "lstm-pfd", map[string]string{"name": "show-env"}))
	if err != nil {
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	if err := a.Execute(ctx, plan, j); err != nil {
		t.Fatal(err)
	}
	out := notes(j)
	for _, s := range []string{"xoxb-bot-token-very-secret", "pw-db-secret", "hunter2-db-password", "SLACK_BOT_TOKEN", "SHOP_DATABASE_URL"} {
		if strings.Contains(out, s) {
			t.Errorf("%q reached the thread:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "DB_PASSWORD=[redacted]") || !strings.Contains(out, "leaked [redacted]") || !strings.Contains(out, "PATH=") {
		t.Errorf("want the env_from variable passed (value redacted) and the printed token redacted:\n%s", out)
	}
}

// TestRunStepTimeoutKillsProcessGroup: terraform runs a local-exec
// provisioner that sleeps; the step's timeout kills terraform and what it
// started (the shell and its sleep), fails the step with a clear message
// and the playbook stops there.
func TestRunStepTimeoutKillsProcessGroup(t *testing.T) {
	terraform(t)
	dir := tfDir(t, `
resource "terraform_data" "slow" {
  provisioner "local-exec" {
    command = "sleep 37.25"
  }
}
`)
	cfg := config(t, `
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    playbooks:
      - name: slow
        steps:
          - run: [terraform, init, -input=false, -no-color]
          - name: provision
            run: [terraform, apply, -auto-approve, -input=false, -no-color]
            timeout: 3s
          - run: [echo, never]
`)
	a := playbook.New(opts(cfg, dir, nil))
	ctx := context.Background()
	plan, err := a.Plan(ctx, params(t, cfg, "lstm-pfd", map[string]string{"name": "slow"}))
	if err != nil {
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	start := time.Now()
	err = a.Execute(ctx, plan, j)
	took := time.Since(start)
	rf, ok := usererr.As(err)
	if !ok {
		t.Fatalf("err = %v, want a refusal", err)
	}
	for _, want := range []string{"stopped at step 2 of 3 (provision)", "did not finish within its timeout of 3s", "process group were killed", "Ran: 1 terraform init", "Not run: 3 echo never"} {
		if !strings.Contains(rf.Msg, want) {
			t.Errorf("message lacks %q:\n%s", want, rf.Msg)
		}
	}
	if took > 20*time.Second {
		t.Errorf("took %s: the timeout did not stop it", took)
	}
	if f := j.Failed(); len(f) != 1 || f[0] != "2.run" {
		t.Errorf("failed steps = %v", f)
	}
	if !strings.Contains(notes(j), "killed after 3s (timeout)") {
		t.Errorf("thread lacks the kill:\n%s", notes(j))
	}
	if pids := procsWith(t, "sleep 37.25"); len(pids) > 0 {
		t.Fatalf("the provisioner's sleep survived the timeout: pids %v", pids)
	}
}

// procsWith returns the pids whose command line contains s.
func procsWith(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(2 * time.Second)
	for {
		out = nil
		ms, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, m := range ms {
			b, err := os.ReadFile(m)
			if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) {
				out = append(out, filepath.Base(filepath.Dir(m)))
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunStepExitStatusAndMissingProgram: a non-zero exit fails the step
// with its status; a program that is not installed is a refusal naming it.
func TestRunStepExitStatusAndMissingProgram(t *testing.T) {
	cfg := config(t, `
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    playbooks:
      - name: fails
        steps:
          - run: [ls, /nonexistent-drbot-path]
      - name: missing
        steps:
          - run: [drbot-no-such-program, apply]
`)
	a := playbook.New(opts(cfg, t.TempDir(), nil))
	ctx := context.Background()
	for name, want := range map[string]string{"fails": "ls exited with status 2", "missing": "drbot-no-such-program could not be started"} {
		plan, err := a.Plan(ctx, params(t, cfg, "lstm-pfd", map[string]string{"name": name}))
		if err != nil {
			t.Fatal(err)
		}
		j := actiontest.NewJournal()
		err = a.Execute(ctx, plan, j)
		if rf, ok := usererr.As(err); !ok || !strings.Contains(rf.Msg, want) {
			t.Errorf("%s: err = %v, want %q", name, err, want)
		}
	}
}

func opts(cfg *runbook.Config, dir string, env func(string) (string, bool)) playbook.Options {
	return playbook.Options{Config: cfg, Dir: dir, LookupEnv: env, TailEvery: 100 * time.Millisecond, TailLines: 20}
}

// TestRunStepOutputIsInert: output cannot close its code block or mention
// anyone in the thread.
func TestRunStepOutputIsInert(t *testing.T) {
	cfg := config(t, `
services:
  - name: lstm-pfd
    pagerduty:
      service_ids: [PLSTMPF]
    playbooks:
      - name: loud
        steps:
          - name: shout
            run: [echo, "`+"```"+` <!channel> <@U123> <#C1>"]
`)
	a := playbook.New(opts(cfg, t.TempDir(), nil))
	ctx := context.Background()
	plan, err := a.Plan(ctx, params(t, cfg, "lstm-pfd", map[string]string{"name": "loud"}))
	if err != nil {
		t.Fatal(err)
	}
	j := actiontest.NewJournal()
	if err := a.Execute(ctx, plan, j); err != nil {
		t.Fatal(err)
	}
	out := notes(j)
	body := out[strings.Index(out, "```\n")+4:]
	body = body[:strings.LastIndex(body, "\n```")]
	if strings.Contains(body, "```") || strings.Contains(body, "<!") || strings.Contains(body, "<@") || strings.Contains(body, "<#") {
		t.Errorf("output not inert:\n%s", out)
	}
}
