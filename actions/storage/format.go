package storage

import (
	"time"

	"github.com/drbot-dev/drbot/actions"
)

// HumanSize is actions.HumanSize (kept for the storage callers).
func HumanSize(n int64) string { return actions.HumanSize(n) }

// HumanAge is actions.HumanAge (kept for the storage callers).
func HumanAge(d time.Duration) string { return actions.HumanAge(d) }
