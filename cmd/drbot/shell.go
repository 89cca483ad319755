package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/bot/pagerduty"
	"github.com/drbot-dev/drbot/bot/shell"
)

// ShellCmd runs the bot in this terminal: the local chat adapter, the same bot core
// and store as `serve`.
type ShellCmd struct {
	ConfigFlags
	StoreFlags
	Demo bool   `help:"Use the embedded demo runbook (the default when no --config is given)."`
	As   string `help:"Who you are in the chat; switch later with /as NAME." default:"alice"`
}

// Run starts the store and the shell and returns on /quit, EOF or a signal.
func (c ShellCmd) Run(ctx context.Context, logger *slog.Logger) error {
	if err := shell.ValidUserName(c.As); err != nil {
		return fmt.Errorf("--as: %w", err)
	}
	flags := c.ConfigFlags
	if c.Demo {
		flags.Config = ""
	}
	cfg, source, err := flags.load(true)
	if err != nil {
		return err
	}
	db, closeStore, err := openStore(ctx, logger, c.StoreFlags)
	if err != nil {
		return err
	}
	defer closeStore()
	if flags.Config == "" { // the embedded demo runbook: its database and backups (demo.go)
		if err := prepareDemo(ctx, logger, db, c.DataDir); err != nil {
			return err
		}
	}

	sh := shell.New(shell.Options{In: os.Stdin, Out: os.Stdout, User: c.As, Now: time.Now})
	// The shell's chat lives in this process; bring back the channels earlier
	// runs created so their names stay taken and their incidents reachable.
	incidents, err := db.ListIncidents(ctx, false)
	if err != nil {
		return fmt.Errorf("list incidents: %w", err)
	}
	for _, inc := range incidents {
		sh.Restore(inc.Channel)
	}
	rt := newRuntime(ctx, logger, cfg, db, sh)
	sh.SetHandler(rt.bot)
	sh.SetTrigger(func(ctx context.Context, service, title string) error {
		svc, ok := cfg.Service(service)
		if !ok {
			return fmt.Errorf("unknown service %q; configured services: %s", service, strings.Join(cfg.ServiceNames(), ", "))
		}
		if len(svc.PagerDuty.ServiceIDs) == 0 {
			return fmt.Errorf("service %q has no pagerduty.service_ids in %s, so no alert can name it", service, source)
		}
		// Build and decode a real v3 webhook body so /trigger takes the webhook's path.
		ev, err := pagerduty.Decode(pagerduty.SyntheticTrigger(svc.PagerDuty.ServiceIDs[0], title, time.Now()))
		if err != nil {
			return fmt.Errorf("build alert: %w", err)
		}
		if err := rt.incidents.HandleIncidentEvent(ctx, ev); err != nil {
			return err
		}
		// The channel is set up by a job; wait for it so the shell moves there.
		return rt.incidents.WaitSetUp(ctx, ev.PagerDutyID, 30*time.Second)
	})
	if err := rt.startJobs(ctx); err != nil {
		return err
	}
	defer rt.stopJobs(logger)

	_, _ = fmt.Fprintf(os.Stdout, "drbot shell — runbook: %s (services: %s)\nYou are %q. Type /help for the shell's commands, /dr help for the bot's.\n",
		source, strings.Join(cfg.ServiceNames(), ", "), c.As)
	return sh.Run(ctx)
}
