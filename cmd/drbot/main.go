// Command drbot is the disaster-recovery ChatOps bot: `drbot serve` runs it against
// Slack and PagerDuty, `drbot shell` runs it in a local terminal chat.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// CLI is the whole command line. Each subcommand lives in its own file.
type CLI struct {
	LogLevel  string `help:"Log level: debug, info, warn or error (default info; warn in the shell, so logs do not drown the chat)." enum:",debug,info,warn,error" default:"" env:"DRBOT_LOG_LEVEL"`
	LogFormat string `help:"Log format: text or json." enum:"text,json" default:"text" env:"DRBOT_LOG_FORMAT"`

	Serve    ServeCmd    `cmd:"" help:"Run the bot: HTTP endpoints for Slack and PagerDuty, jobs and timers."`
	Shell    ShellCmd    `cmd:"" help:"Chat with the bot in this terminal (no Slack workspace needed)."`
	Migrate  MigrateCmd  `cmd:"" help:"Apply the store's database migrations and exit."`
	Config   ConfigCmd   `cmd:"" help:"Work with runbook configuration files."`
	Audit    AuditCmd    `cmd:"" help:"Check and export the tamper-evident audit log."`
	Timeline TimelineCmd `cmd:"" help:"Export incident timelines (post-mortems)."`
	Drills   DrillsCmd   `cmd:"" help:"Report disaster-recovery drills (last tested, next due)."`
	Slack    SlackCmd    `cmd:"" help:"Slack app setup: print the app manifest."`
	Version  VersionCmd  `cmd:"" help:"Print the version and exit."`
}

// exitError carries an exit code for failures that already told the user why.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	var cli CLI
	kctx := kong.Parse(&cli,
		kong.Name("drbot"),
		kong.Description("drbot turns disaster-recovery runbooks into ChatOps: incident channels, two-person approvals, verified recovery actions and a tamper-evident audit log."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	level := slog.LevelInfo
	if cli.LogLevel == "" && kctx.Command() == "shell" {
		level = slog.LevelWarn
	} else if cli.LogLevel != "" {
		_ = level.UnmarshalText([]byte(cli.LogLevel)) // kong's enum already checked it
	}
	logger := newLogger(os.Stderr, level, cli.LogFormat)
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	kctx.BindTo(ctx, (*context.Context)(nil))
	err := kctx.Run(logger)
	stop()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintf(os.Stderr, "drbot: %v\n", err)
		os.Exit(1)
	}
}

func newLogger(w *os.File, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
