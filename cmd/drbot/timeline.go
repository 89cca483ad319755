package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/bot/slack"
)

// TimelineCmd works with incident timelines.
type TimelineCmd struct {
	Export TimelineExportCmd `cmd:"" help:"Write an incident's post-mortem in Markdown: achieved RTO and RPO, the timeline in words, actions, checklist. With SLACK_BOT_TOKEN set, people are named as Slack shows them."`
}

// TimelineExportCmd is `drbot timeline export INCIDENT`.
type TimelineExportCmd struct {
	StoreFlags
	Incident string `arg:"" help:"drbot's incident number or the PagerDuty incident id."`
	Output   string `short:"o" help:"Write to this file instead of standard output." type:"path" placeholder:"FILE"`
}

// Run exports the timeline.
func (c TimelineExportCmd) Run(ctx context.Context, logger *slog.Logger) error {
	db, closeStore, err := openStore(ctx, logger, c.StoreFlags)
	if err != nil {
		return err
	}
	defer closeStore()
	// With Slack settings, people are named as Slack shows them; without,
	// they are quoted by their user ids.
	var names chat.UserNames
	if tok := os.Getenv("SLACK_BOT_TOKEN"); tok != "" {
		client, err := slack.NewClient(slack.Options{Token: tok, APIURL: os.Getenv("SLACK_API_URL"), Logger: logger})
		if err != nil {
			return err
		}
		names = client
	}
	md, err := incident.ExportTimelineWith(ctx, db, c.Incident, time.Now(), names)
	if err != nil {
		return err
	}
	if c.Output == "" {
		_, err = fmt.Fprint(os.Stdout, md)
		return err
	}
	if err := os.WriteFile(c.Output, []byte(md), 0o644); err != nil { //nolint:gosec // a report for people to read
		return fmt.Errorf("write %s: %w", c.Output, err)
	}
	return nil
}
