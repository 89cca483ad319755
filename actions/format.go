package actions

import (
	"time"

	"github.com/drbot-dev/drbot/internal/human"
)

// HumanSize formats a byte count in binary units: "512 B", "1.5 KiB", "3.2 GiB".
func HumanSize(n int64) string { return human.Size(n) }

// HumanAge formats an age compactly: "42s", "17m", "3h12m", "2d4h".
func HumanAge(d time.Duration) string { return human.Age(d) }
