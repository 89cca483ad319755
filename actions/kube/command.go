package kube

import "github.com/drbot-dev/drbot/actions"

// The positional arguments of rollout-restart and scale, declared once:
// the command parser binds them by these names and the actions read them.
var (
	argDeployment = actions.Arg{Name: ArgDeployment, Help: "Kubernetes deployment (name or deployment/name)."}
	argReplicas   = actions.Arg{Name: ArgReplicas, Help: "Desired replica count."}
)

// RolloutRestartCommand declares /dr rollout-restart.
var RolloutRestartCommand = actions.Command{
	Name:        KindRolloutRestart,
	Summary:     "Restart a deployment's pods and wait for the rollout",
	Description: "Like kubectl rollout restart, then waits for the rollout as kubectl rollout status does.",
	Approval:    true,
	Args:        []actions.Arg{argDeployment},
	Examples:    []string{"/dr rollout-restart lstm-pfd lstm-pfd-dashboard"},
}

// ScaleCommand declares /dr scale.
var ScaleCommand = actions.Command{
	Name:        KindScale,
	Summary:     "Scale a deployment and wait for the rollout",
	Description: "Sets the deployment's replica count and waits until the replicas are ready.",
	Approval:    true,
	Args:        []actions.Arg{argDeployment, argReplicas},
	Examples:    []string{"/dr scale inflow inflow-api 6"},
}

// Command implements actions.Action.
func (a *RolloutAction) Command() actions.Command { return RolloutRestartCommand }

// Command implements actions.Action.
func (a *ScaleAction) Command() actions.Command { return ScaleCommand }
