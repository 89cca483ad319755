package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/awsconf"
	"github.com/drbot-dev/drbot/actions/failover"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/models"
	"github.com/drbot-dev/drbot/actions/verify"
	"github.com/drbot-dev/drbot/runbook"
)

// kubeClient is the process's one Kubernetes client (KUBECONFIG, ~/.kube/config
// or in-cluster), built on first use; err says why there is none.
var kubeClient = sync.OnceValues(kube.NewFromEnv)

// loadAWS reads the SDK's own configuration chain with a per-call region.
func loadAWS(ctx context.Context, region string) (aws.Config, error) {
	return awsconf.Load(ctx, region)
}

// verify, rollout-restart, scale, failover and restore-models.
func init() {
	registerAction("verify", func(_ context.Context, env actionEnv) (actions.Action, error) {
		cfg, logger := env.cfg, env.logger
		kc, err := kubeClient()
		if err != nil {
			logger.Info("verify: no Kubernetes access; pod readiness checks are reported as not run", "err", err)
			kc = nil
		}
		return verify.New(cfg, verify.Deps{Kube: kc}), nil
	})
	needKube := func(kind string, build func(*runbook.Config, *kube.Client) actions.Action) ActionFactory {
		return func(_ context.Context, env actionEnv) (actions.Action, error) {
			cfg := env.cfg
			kc, err := kubeClient()
			if err != nil {
				return nil, fmt.Errorf("%s needs Kubernetes access (KUBECONFIG or in-cluster): %w", kind, err)
			}
			if kc == nil {
				return nil, errors.New(kind + ": no Kubernetes client")
			}
			return build(cfg, kc), nil
		}
	}
	registerAction("rollout-restart", needKube("rollout-restart", func(cfg *runbook.Config, kc *kube.Client) actions.Action {
		return kube.NewRolloutRestart(cfg, kc)
	}))
	registerAction("scale", needKube("scale", func(cfg *runbook.Config, kc *kube.Client) actions.Action {
		return kube.NewScale(cfg, kc)
	}))
	registerAction("failover", func(_ context.Context, env actionEnv) (actions.Action, error) {
		return failover.New(env.cfg, loadAWS), nil
	})
	registerAction("restore-models", func(_ context.Context, env actionEnv) (actions.Action, error) {
		cfg, logger := env.cfg, env.logger
		kc, err := kubeClient()
		if err != nil {
			logger.Info("restore-models: no Kubernetes access; services whose models need a restart cannot restore them", "err", err)
			kc = nil
		}
		return models.New(cfg, loadAWS, kc), nil
	})
}
