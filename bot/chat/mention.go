package chat

import "strings"

// Mention is the neutral markup for a user (<@U…>), which adapters render as
// the user's name; "" reads as "someone".
func Mention(userID string) string {
	if userID == "" {
		return "someone"
	}
	return "<@" + userID + ">"
}

// People renders config entries naming people for a message: users as
// <@U…>, user groups as <!subteam^S…> (adapters render both as names) and
// e-mail addresses as they are.
func People(entries []string) string {
	parts := make([]string, 0, len(entries))
	for _, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
			continue
		case strings.Contains(e, "@"):
			parts = append(parts, e)
		case strings.HasPrefix(e, "S"):
			parts = append(parts, "<!subteam^"+e+">")
		default:
			parts = append(parts, Mention(e))
		}
	}
	return strings.Join(parts, ", ")
}
