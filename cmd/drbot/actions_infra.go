package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/client-go/dynamic"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/backups"
	"github.com/drbot-dev/drbot/actions/diagnose"
	"github.com/drbot-dev/drbot/actions/failover"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/models"
	"github.com/drbot-dev/drbot/actions/redeploy"
	"github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/runbook"
)

// kubeClient is the process's one Kubernetes client (KUBECONFIG, ~/.kube/config
// or in-cluster), built on first use; err says why there is none.
var kubeClient = sync.OnceValues(kube.NewFromEnv)

// dynamicClient is the process's one dynamic Kubernetes client (redeploy's
// server-side apply), from the same configuration as kubeClient.
var dynamicClient = sync.OnceValues(func() (dynamic.Interface, error) {
	rc, err := kube.RESTConfig()
	if err != nil {
		return nil, err
	}
	d, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	return d, nil
})

// buildRedeploy: redeploy applies through the dynamic client.
func buildRedeploy(_ context.Context, env actionEnv) (actions.Procedure, error) {
	dc, err := dynamicClient()
	if err != nil {
		return nil, fmt.Errorf("redeploy needs Kubernetes access (KUBECONFIG or in-cluster): %w", err)
	}
	a := redeploy.New(env.cfg, dc)
	if env.history != nil {
		a.History = env.history
	}
	return a, nil
}

// loadAWS reads the SDK's own configuration chain with a per-call region.
func loadAWS(ctx context.Context, region string) (aws.Config, error) {
	return awsconf.Load(ctx, region)
}

// verify: pod readiness checks need Kubernetes; without it they are
// reported as not run.
func buildVerify(_ context.Context, env actionEnv) (actions.Procedure, error) {
	kc, err := kubeClient()
	if err != nil {
		env.logger.Info("verify: no Kubernetes access; pod readiness checks are reported as not run", "err", err)
		kc = nil
	}
	return verify.New(env.cfg, verify.Deps{Kube: kc}), nil
}

// needKube builds rollout-restart and scale, which need Kubernetes access.
func needKube(kind string, build func(*runbook.Config, *kube.Client) actions.Action) ActionFactory {
	return func(_ context.Context, env actionEnv) (actions.Procedure, error) {
		kc, err := kubeClient()
		if err != nil {
			return nil, fmt.Errorf("%s needs Kubernetes access (KUBECONFIG or in-cluster): %w", kind, err)
		}
		if kc == nil {
			return nil, errors.New(kind + ": no Kubernetes client")
		}
		return build(env.cfg, kc), nil
	}
}

func buildFailover(_ context.Context, env actionEnv) (actions.Procedure, error) {
	return failover.New(env.cfg, loadAWS), nil
}

func buildModels(_ context.Context, env actionEnv) (actions.Procedure, error) {
	kc, err := kubeClient()
	if err != nil {
		env.logger.Info("restore-models: no Kubernetes access; services whose models need a restart cannot restore them", "err", err)
		kc = nil
	}
	return models.New(env.cfg, loadAWS, kc), nil
}

// backups opens locations with S3 clients from the environment.
func buildBackups(_ context.Context, env actionEnv) (actions.Procedure, error) {
	return backups.New(env.cfg, backups.DefaultOpener), nil
}

// diagnose works with whatever parts this bot has: without Kubernetes
// access its report says so instead of the command failing.
func buildDiagnose(_ context.Context, env actionEnv) (actions.Procedure, error) {
	deps := diagnose.Deps{AWS: loadAWS}
	if kc, err := kubeClient(); err != nil {
		deps.KubeErr = err
	} else if kc != nil {
		deps.Kube = kc.Clientset()
	}
	return diagnose.New(env.cfg, deps), nil
}
