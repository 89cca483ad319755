package commands

import "github.com/drbot-dev/drbot/internal/usererr"

// Refusal is a user-safe error: the user asked for something the bot will not do
// as asked (a typo, a missing argument, an unknown service, a policy). Its Msg is
// shown to the user verbatim. Any other error a command returns is an internal
// failure: the bot logs it and shows the user only a reference id (house style 4).
// It is the one user-safe error type of every layer (internal/usererr), so
// actions' and approvals' refusals are the same type.
type Refusal = usererr.Refusal

// Refusef returns a *Refusal whose message is fmt.Sprintf(format, a...). The
// message is shown to users: never put internal details (SQL, paths, stack
// traces) in it, and do not use %w (a refusal wraps nothing).
var Refusef = usererr.Refusef

// AsRefusal reports whether err is, or wraps, a *Refusal (from any layer) and
// returns it.
func AsRefusal(err error) (*Refusal, bool) { return usererr.As(err) }
