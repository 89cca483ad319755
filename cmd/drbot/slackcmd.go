package main

import (
	"os"

	"github.com/drbot-dev/drbot/bot/slack"
)

// SlackCmd groups the Slack app subcommands.
type SlackCmd struct {
	Manifest SlackManifestCmd `cmd:"" help:"Print the Slack app manifest (create the app from it at https://api.slack.com/apps)."`
}

// SlackManifestCmd prints the app manifest for HTTP mode or Socket Mode.
type SlackManifestCmd struct {
	SocketMode bool   `name:"socket-mode" help:"Socket Mode app: no request URLs, no inbound ingress (run with SLACK_APP_TOKEN)."`
	URL        string `name:"url" help:"The bot's public https:// base URL in HTTP mode (Slack posts to URL/slack/commands, /slack/interactions, /slack/events)." placeholder:"https://…"`
}

// Run prints the manifest on stdout.
func (c SlackManifestCmd) Run() error {
	b, err := slack.Manifest(slack.ManifestOptions{SocketMode: c.SocketMode, URL: c.URL})
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}
