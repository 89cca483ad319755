package runbook

import (
	"strings"
	"testing"
)

// TestPlaybookModelValidation: every way to write a playbook, drill plan,
// git source or vault block wrongly is reported at load, with its line.
func TestPlaybookModelValidation(t *testing.T) {
	_, err := Parse("drbot.yaml", []byte(`services:
  - name: inflow
    kubernetes:
      source:
        repo: https://user:hunter2@github.com/example/infra.git
        ref: --upload-pack=evil
        path: ../../etc
        token_env: "ghp_abc-123"
    vault:
      address_env: https://vault:8200
      snapshots: ftp://x/
      verify: [/secret/prod]
    playbooks:
      - name: restore-db
        steps:
          - action: restore-db
      - name: recover
        steps:
          - action: nuke
          - run: terraform apply -auto-approve
          - run: [terraform, apply]
            args: [x]
            env_from: [JWT_SECRET, "s3cr3t value"]
            drill: sometimes
          - action: restore-models
            timeout: 5m
          - action: redeploy
          - {}
      - name: empty
    drills:
      plan:
        - quarter: 5
          procedure: restore-db
        - quarter: 2
          procedure: cleanup
        - quarter: 2
          procedure: recover
`))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`drbot.yaml:5: services[0].kubernetes.source.repo: the repository URL must not carry credentials`,
		`drbot.yaml:6: services[0].kubernetes.source.ref: "--upload-pack=evil" is not a git branch, tag or commit`,
		`drbot.yaml:7: services[0].kubernetes.source.path: "../../etc" must be a folder inside the repository`,
		`drbot.yaml:8: services[0].kubernetes.source.token_env: "ghp_abc-123" is not an environment variable name`,
		`drbot.yaml:9: services[0].vault.token_env: missing`,
		`drbot.yaml:10: services[0].vault.address_env: "https://vault:8200" is not an environment variable name`,
		`drbot.yaml:11: services[0].vault.snapshots: unknown scheme "ftp"`,
		`drbot.yaml:12: services[0].vault.verify[0]: "/secret/prod" is not a KV path`,
		`drbot.yaml:14: services[0].playbooks[0].name: "restore-db" is an action's name`,
		`drbot.yaml:19: services[0].playbooks[1].steps[0].action: "nuke" is not an action a playbook can run`,
		`drbot.yaml:20: services[0].playbooks[1].steps[1].run: want the command as a list of words`,
		`drbot.yaml:22: services[0].playbooks[1].steps[2].args: only action: steps take args`,
		`drbot.yaml:23: services[0].playbooks[1].steps[2].env_from[1]: "s3cr3t value" is not an environment variable name`,
		`drbot.yaml:24: services[0].playbooks[1].steps[2].drill: want true or false, got "sometimes"`,
		`drbot.yaml:26: services[0].playbooks[1].steps[3].timeout: only run: steps take timeout`,
		`drbot.yaml:28: services[0].playbooks[1].steps[5]: missing action: (one of restore-db,`,
		`drbot.yaml:29: services[0].playbooks[2].steps: missing`,
		`drbot.yaml:17: services[0].playbooks[1]: step "restore-models" runs restore-models, but this service has no models:`,
		`drbot.yaml:32: services[0].drills.plan[0].quarter: want 1, 2, 3 or 4, got 5`,
		`drbot.yaml:35: services[0].drills.plan[1].procedure: "cleanup" is neither an action nor one of this service's playbooks`,
		`drbot.yaml:36: services[0].drills.plan[2].quarter: quarter 2 is already planned (line 34)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%s", want, err)
		}
	}
	for _, leak := range []string{"hunter2"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("the report repeats a credential %q:\n%s", leak, err)
		}
	}
	if strings.Contains(err.Error(), `"redeploy", but this service has no`) {
		t.Errorf("redeploy has a kubernetes.source here:\n%s", err)
	}
}

// TestPlaybookDefaults: names default from the action or the command, the
// ref defaults to main, a run step's timeout to DefaultStepTimeout.
func TestPlaybookDefaults(t *testing.T) {
	cfg, err := Parse("drbot.yaml", []byte(`services:
  - name: lstm-pfd
    kubernetes:
      source: {repo: "file:///srv/git/infra", path: prod}
    health: [{name: api, http: "http://x/health"}]
    playbooks:
      - name: recover
        steps:
          - run: [terraform, apply]
            drill: true
          - action: rollout-restart
            args: [deployment/api]
          - action: verify
`))
	if err != nil {
		t.Fatal(err)
	}
	s := &cfg.Services[0]
	if got := s.Kubernetes.Source; got.Ref != "main" || got.Path != "prod" || got.Repo != "file:///srv/git/infra" {
		t.Errorf("source = %+v", got)
	}
	pb, ok := s.Playbook("recover")
	if !ok {
		t.Fatal("no playbook recover")
	}
	var names []string
	for _, st := range pb.Steps {
		names = append(names, st.Name)
	}
	if got := strings.Join(names, "|"); got != "terraform apply|rollout-restart deployment/api|verify" {
		t.Errorf("step names = %q", got)
	}
	if !pb.Steps[0].Drill || pb.Steps[0].StepTimeout().Duration != DefaultStepTimeout {
		t.Errorf("step 0 = %+v", pb.Steps[0])
	}
	if _, ok := s.Playbook("nope"); ok {
		t.Error("found a playbook that is not there")
	}
}
