package incident

import (
	"strconv"
	"strings"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// MaxChannelName is the longest channel name Slack accepts.
const MaxChannelName = 80

// ChannelName returns the incident channel name <prefix>-<service>-<yyyymmdd>
// for an incident triggered at t (its date in UTC), with "-<attempt>" appended
// for attempt ≥ 2 (after a name collision). The result is lowercase, uses only
// letters, digits, '-' and '_', and is at most MaxChannelName characters: a long
// service name is shortened, never the date or the suffix. An empty prefix means
// runbook.DefaultChannelPrefix.
func ChannelName(prefix, service string, t time.Time, attempt int) string {
	prefix = sanitizeName(prefix)
	if prefix == "" {
		prefix = runbook.DefaultChannelPrefix
	}
	service = sanitizeName(service)
	tail := "-" + t.UTC().Format("20060102")
	if attempt >= 2 {
		tail += "-" + strconv.Itoa(attempt)
	}
	if len(prefix) > MaxChannelName/2 {
		prefix = strings.TrimRight(prefix[:MaxChannelName/2], "-_")
	}
	head := prefix
	if service != "" {
		head += "-" + service
	}
	if room := MaxChannelName - len(tail); len(head) > room {
		head = strings.TrimRight(head[:room], "-_")
	}
	return head + tail
}

// sanitizeName lowercases s and replaces runs of characters that channel names
// cannot hold with one '-'.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}
