package commands

import (
	"errors"
	"fmt"
)

// Refusal is a user-safe error: the user asked for something the bot will not do
// as asked (a typo, a missing argument, an unknown service, a policy). Its Msg is
// shown to the user verbatim. Any other error a command returns is an internal
// failure: the bot logs it and shows the user only a reference id (house style 4).
type Refusal struct{ Msg string }

// Error returns the message for the user.
func (r *Refusal) Error() string { return r.Msg }

// Refusef returns a *Refusal whose message is fmt.Sprintf(format, a...). The
// message is shown to users: never put internal details (SQL, paths, stack
// traces) in it, and do not use %w (a refusal wraps nothing).
func Refusef(format string, a ...any) error {
	return &Refusal{Msg: fmt.Sprintf(format, a...)}
}

// userSafe is implemented by lower layers' refusals (actions.Refusal,
// approvals' policy refusals), which cannot import this package.
type userSafe interface{ UserMessage() string }

// AsRefusal reports whether err is, or wraps, a *Refusal or another user-safe
// refusal (an error with a UserMessage method), and returns it as a *Refusal.
func AsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	if errors.As(err, &r) && r != nil {
		return r, true
	}
	var u userSafe
	if errors.As(err, &u) && u != nil {
		return &Refusal{Msg: u.UserMessage()}, true
	}
	return nil, false
}
