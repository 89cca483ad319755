package bot

import "github.com/drbot-dev/drbot/commands"

// mention renders a user id as a chat mention (commands.Mention).
func mention(id string) string { return commands.Mention(id) }
