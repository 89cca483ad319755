package redeploy

import "github.com/drbot-dev/drbot/actions"

// flagRef redeploys another ref than kubernetes.source.ref: the way back
// to a known-good commit after a redeploy broke the service.
var flagRef = actions.Flag{
	Name:  "ref",
	Help:  "A branch, tag or full commit SHA to redeploy instead of kubernetes.source.ref (the way back: the commit of the last successful redeploy).",
	Value: "REF",
}

// Command declares /dr redeploy.
var Command = actions.Command{
	Name:    KindRedeploy,
	Summary: "Apply the service's manifests from git (kubectl apply -k), then wait for the rollouts",
	Description: "Fetches kubernetes.source (repo, ref, path) and builds its kustomization in process, pinning the commit: " +
		"the plan names the commit SHA and lists each object as create, change or unchanged. " +
		"After approval every object is server-side applied (field manager drbot), the rollouts are awaited and the pods checked. " +
		"A commit pushed after the approval is not applied: the request stops and asks for a new plan.",
	Approval: true,
	Flags:    []actions.Flag{flagRef},
	Examples: []string{"/dr redeploy inflow --dry-run", `/dr redeploy inflow --reason "cluster rebuilt"`,
		"/dr redeploy inflow --ref 3f2c5e1d9a7b4c8e6f0a1b2c3d4e5f60718293a4"},
}

// Command implements actions.Action.
func (*Action) Command() actions.Command { return Command }
