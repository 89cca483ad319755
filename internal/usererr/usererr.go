// Package usererr holds drbot's one user-safe error type, shared by every
// layer (actions, approvals, commands, bot). A *Refusal says the bot will not
// do what was asked (a typo, an unknown database, a policy); its Msg is shown
// to the user verbatim. Any other error is an internal failure: it is logged
// and the user sees only a reference (house style 4).
//
// The package imports only the standard library so that every layer may use it.
package usererr

import (
	"errors"
	"fmt"
)

// Refusal is a user-safe error. Msg is shown to users: it never carries
// credentials, SQL, paths or stack traces.
type Refusal struct {
	Code string // optional stable reason code, for tests and metrics (approvals' policy codes)
	Msg  string
}

// Error returns the message for the user.
func (r *Refusal) Error() string { return r.Msg }

// UserMessage returns the message for the user.
func (r *Refusal) UserMessage() string { return r.Msg }

// Refusef returns a *Refusal whose message is fmt.Sprintf(format, a...). Do
// not use %w: a refusal wraps nothing.
func Refusef(format string, a ...any) error {
	return &Refusal{Msg: fmt.Sprintf(format, a...)}
}

// As reports whether err is, or wraps, a *Refusal (or an error that presents
// itself as one, see Into) and returns it.
func As(err error) (*Refusal, bool) {
	var r *Refusal
	if errors.As(err, &r) && r != nil {
		return r, true
	}
	return nil, false
}

// Into lets a typed error whose message is user-safe match *Refusal in
// errors.As (and so in As) while keeping its own type:
//
//	func (e *NotFoundError) As(target any) bool { return usererr.Into(target, e.Error()) }
//
// It sets target to a *Refusal with msg when target is a **Refusal.
func Into(target any, msg string) bool {
	p, ok := target.(**Refusal)
	if !ok {
		return false
	}
	*p = &Refusal{Msg: msg}
	return true
}
