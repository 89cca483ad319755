package redeploy

import "github.com/drbot-dev/drbot/actions"

// Command declares /dr redeploy.
var Command = actions.Command{
	Name:    KindRedeploy,
	Summary: "Apply the service's manifests from git (kubectl apply -k), then wait for the rollouts",
	Description: "Fetches kubernetes.source (repo, ref, path) and builds its kustomization in process, pinning the commit: " +
		"the plan names the commit SHA and lists each object as create, change or unchanged. " +
		"After approval every object is server-side applied (field manager drbot), the rollouts are awaited and the pods checked. " +
		"A commit pushed after the approval is not applied: the request stops and asks for a new plan.",
	Approval: true,
	Examples: []string{"/dr redeploy inflow --dry-run", `/dr redeploy inflow --reason "cluster rebuilt"`},
}

// Command implements actions.Action.
func (*Action) Command() actions.Command { return Command }
