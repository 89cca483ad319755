package store

import (
	"crypto/rand"
	"encoding/hex"
)

// NewRef returns a short random reference id such as 3f9a1c: what a user is
// shown instead of an internal error (the log line carries it too), and a
// nonce where a short unique-enough token will do.
func NewRef() string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
