package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/drbot-dev/drbot/bot/incident"
)

// TimelineCmd works with incident timelines.
type TimelineCmd struct {
	Export TimelineExportCmd `cmd:"" help:"Write an incident's timeline as a Markdown post-mortem skeleton."`
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
	md, err := incident.ExportTimeline(ctx, db, c.Incident, time.Now())
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
