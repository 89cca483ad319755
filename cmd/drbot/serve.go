package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/drbot-dev/drbot/bot/httpapi"
	"github.com/drbot-dev/drbot/bot/pagerduty"
	"github.com/drbot-dev/drbot/bot/slack"
)

// ServeCmd runs the bot against Slack and PagerDuty.
type ServeCmd struct {
	ConfigFlags
	StoreFlags
	Listen        string        `help:"HTTP listen address (Slack, PagerDuty webhooks, health, metrics)." default:":8080" env:"DRBOT_LISTEN"`
	PagerDutyPoll time.Duration `name:"pagerduty-poll" help:"Poll PagerDuty for incidents this often instead of (or as well as) taking webhooks; needs PAGERDUTY_API_TOKEN. 0 = off." default:"0s" env:"DRBOT_PAGERDUTY_POLL"`

	// now is the clock of timers and jobs (escalations, the incident header's
	// countdowns); nil = time.Now. Only tests that run serve in process set
	// it, to move time instead of sleeping.
	now func() time.Time `kong:"-"`
}

// serveEnv is the environment serve reads, gathered in one place so that a
// missing setting is reported before anything starts.
type serveEnv struct {
	slackToken, slackSecret, slackAppToken, slackAPIURL string
	pdSecrets                                           []string
	pdToken, pdAPIURL, pdFrom                           string
}

func readServeEnv() serveEnv {
	return serveEnv{
		slackToken:    os.Getenv("SLACK_BOT_TOKEN"),
		slackSecret:   os.Getenv("SLACK_SIGNING_SECRET"),
		slackAppToken: os.Getenv("SLACK_APP_TOKEN"),
		slackAPIURL:   os.Getenv("SLACK_API_URL"),
		pdSecrets:     pagerduty.ParseSecrets(os.Getenv("PAGERDUTY_WEBHOOK_SECRET")),
		pdToken:       os.Getenv("PAGERDUTY_API_TOKEN"),
		pdAPIURL:      os.Getenv("PAGERDUTY_API_URL"),
		pdFrom:        os.Getenv("PAGERDUTY_FROM_EMAIL"),
	}
}

// check reports every missing or contradictory setting at once.
func (e serveEnv) check(poll time.Duration) error {
	var errs []error
	if e.slackToken == "" {
		errs = append(errs, errors.New("SLACK_BOT_TOKEN is unset: the bot cannot post to Slack (for a local chat use `drbot shell`)"))
	}
	if e.slackAppToken == "" && e.slackSecret == "" {
		errs = append(errs, errors.New("set SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode): without one no Slack request can be verified"))
	}
	if poll < 0 {
		errs = append(errs, fmt.Errorf("--pagerduty-poll %s: must be positive or 0 (off)", poll))
	}
	if poll > 0 && e.pdToken == "" {
		errs = append(errs, errors.New("--pagerduty-poll (DRBOT_PAGERDUTY_POLL) needs PAGERDUTY_API_TOKEN"))
	}
	return errors.Join(errs...)
}

// Run serves until SIGTERM/SIGINT, then stops taking requests, lets in-flight
// ones finish, stops the job runner and the store, in that order.
func (c ServeCmd) Run(ctx context.Context, logger *slog.Logger) error {
	cfg, source, err := c.load(false)
	if err != nil {
		return err
	}
	env := readServeEnv()
	if err := env.check(c.PagerDutyPoll); err != nil {
		return err
	}
	// Listen before starting anything heavy: a taken port is the commonest
	// start-up failure and should not cost a PostgreSQL start.
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (DRBOT_LISTEN): %w", c.Listen, err)
	}
	defer ln.Close()

	client, err := slack.NewClient(slack.Options{Token: env.slackToken, APIURL: env.slackAPIURL, Logger: logger})
	if err != nil {
		return err
	}
	db, closeStore, err := openStore(ctx, logger, c.StoreFlags, c.now)
	if err != nil {
		return err
	}
	defer closeStore()

	var (
		opts  []runtimeOption
		pdAPI *pagerduty.API
	)
	if c.now != nil {
		opts = append(opts, withClock(c.now))
	}
	if env.pdToken != "" {
		if pdAPI, err = pagerduty.NewAPI(pagerduty.APIOptions{Token: env.pdToken, BaseURL: env.pdAPIURL, FromEmail: env.pdFrom, Logger: logger}); err != nil {
			return err
		}
		opts = append(opts, withPagerDuty(pdAPI))
	} else {
		logger.Info("PAGERDUTY_API_TOKEN is unset: no on-call invites, PagerDuty notes, /dr ack or /dr resolve in PagerDuty")
	}
	rt := newRuntime(ctx, logger, cfg, db, client, opts...)
	// Jobs, audit verification and store health on /metrics (the chart's alerts).
	rt.metrics.MustRegister(db.Collector())
	if err := rt.startJobs(ctx); err != nil {
		return err
	}
	defer rt.stopJobs(logger)

	srv := httpapi.New(httpapi.Options{Ready: storeReady(db.Ping), Logger: logger, Metrics: rt.metrics})
	ingest := rt.incidents.HandleIncidentEvent
	if len(env.pdSecrets) > 0 {
		srv.Handle("POST /webhooks/pagerduty", pagerduty.WebhookHandler(pagerduty.WebhookOptions{
			Secrets: env.pdSecrets, Ingest: ingest, Logger: logger,
		}))
	} else {
		logger.Warn("PAGERDUTY_WEBHOOK_SECRET is unset: /webhooks/pagerduty is not served (unsigned webhooks are never accepted)")
	}

	g, gctx := errgroup.WithContext(ctx)
	var handlers *slack.HTTPHandlers
	if env.slackAppToken != "" {
		g.Go(func() error {
			return slack.RunSocketMode(gctx, slack.Options{AppToken: env.slackAppToken, Client: client, Handler: rt.bot, Logger: logger, Deliver: rt.incidents.Deliver})
		})
	}
	if env.slackAppToken != "" && env.slackSecret != "" {
		// Socket Mode is the no-ingress install: nothing of Slack's is
		// served over HTTP, even when a shared secret also holds the
		// signing secret.
		logger.Info("SLACK_APP_TOKEN is set (Socket Mode): SLACK_SIGNING_SECRET is ignored and /slack/* is not served")
	}
	if env.slackSecret != "" && env.slackAppToken == "" {
		handlers, err = slack.NewHTTPHandlers(slack.Options{SigningSecret: env.slackSecret, Client: client, Handler: rt.bot, Logger: logger, Deliver: rt.incidents.Deliver})
		if err != nil {
			return err
		}
		srv.Handle("POST /slack/commands", handlers.Commands())
		srv.Handle("POST /slack/interactions", handlers.Interactions())
		srv.Handle("POST /slack/events", handlers.Events())
	}
	if c.PagerDutyPoll > 0 {
		api := pdAPI
		var serviceIDs []string
		for _, name := range cfg.ServiceNames() {
			svc, _ := cfg.Service(name)
			serviceIDs = append(serviceIDs, svc.PagerDuty.ServiceIDs...)
		}
		g.Go(func() error { return pagerduty.Poll(gctx, api, serviceIDs, c.PagerDutyPoll, ingest, logger) })
	}
	g.Go(func() error { return srv.Serve(gctx, ln) })

	logger.Info("drbot serving", "config", source, "listen", ln.Addr().String(),
		"slack_mode", slackMode(env), "pagerduty_poll", c.PagerDutyPoll.String())
	err = g.Wait()
	if handlers != nil {
		handlers.Wait() // replies to commands already acked still go out
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("drbot stopped")
	return nil
}

func slackMode(e serveEnv) string {
	switch {
	case e.slackAppToken != "":
		return "socket"
	default:
		return "http"
	}
}

// storeReady is the readiness check: the store answers and is migrated. A
// failure is published on /readyz as "store unreachable or not migrated"
// (the error itself, which may name hosts, goes to the log only).
func storeReady(ping func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := ping(ctx); err != nil {
			return &httpapi.NotReadyError{Reason: "store unreachable or not migrated", Err: err}
		}
		return nil
	}
}
