// Package chat is drbot's platform-neutral message model: what commands and the
// incident lifecycle say, and what a chat adapter (Slack, the local shell) must be
// able to do with it. Only adapters turn these values into a platform's wire format.
//
// It is a leaf package (standard library only) so that both bot and commands can
// use it without an import cycle; bot re-exports its types.
package chat

import (
	"context"
	"errors"
	"time"
)

// User is a chat identity. ID is the only field that may be trusted for
// authorisation: it comes from a signed platform payload (or the shell's --as).
type User struct {
	ID   string
	Name string
}

// Style is a button's emphasis.
type Style string

// Button styles.
const (
	StyleDefault Style = ""
	StylePrimary Style = "primary"
	StyleDanger  Style = "danger"
)

// Button is an interactive button. ActionID is one of the constants in actionids.go;
// Value carries the id of the object the button acts on (a request id, a checklist item).
type Button struct {
	ActionID string
	Label    string
	Value    string
	Style    Style
}

// Block is one part of a message. The concrete types below are the whole set;
// renderers switch on them.
type Block interface{ isBlock() }

// Header is a message's title line.
type Header struct{ Text string }

// Text is a paragraph of plain text. Renderers may apply light markup (*bold*).
type Text struct{ Text string }

// Field is a label and a value, shown side by side where the platform can.
type Field struct{ Label, Value string }

// Fields is a group of label/value pairs.
type Fields struct{ Fields []Field }

// Actions is a row of buttons.
type Actions struct{ Buttons []Button }

// CheckItem is one item of a checklist; Value identifies it in a click.
type CheckItem struct {
	Value string
	Label string
	Done  bool
}

// Checklist is a list of items that can be ticked; ticking one is a Click with
// ActionID set to the list's ActionID and Value set to the item's Value.
type Checklist struct {
	ActionID string
	Title    string
	Items    []CheckItem
}

// Progress shows work done of a total (bytes, objects, replicas, steps).
type Progress struct {
	Label string
	Done  int64
	Total int64
	Unit  string // "bytes", "objects", "steps", …
}

// Context is small print under a message (timestamps, ids).
type Context struct{ Text string }

// Alert is a line that must not be missed: a safety check the requester
// overrode (e.g. a forced failover). Renderers show it in red where the
// platform can, and at least marked as a danger where it cannot.
type Alert struct{ Text string }

func (Header) isBlock()    {}
func (Text) isBlock()      {}
func (Fields) isBlock()    {}
func (Actions) isBlock()   {}
func (Checklist) isBlock() {}
func (Progress) isBlock()  {}
func (Context) isBlock()   {}
func (Alert) isBlock()     {}

// Message is what the bot says. Text is always set: it is the notification text and
// the fallback for clients that cannot render blocks.
type Message struct {
	Text   string
	Blocks []Block
	// Ephemeral messages are shown only to the user who caused them.
	Ephemeral bool
	// ThreadTS, when set, posts the message as a reply in the thread of the
	// channel's message with that timestamp (a request card's thread);
	// adapters without threads post it in the channel.
	ThreadTS string
}

// Plain returns a message of one paragraph.
func Plain(text string) Message {
	return Message{Text: text, Blocks: []Block{Text{Text: text}}}
}

// MessageRef identifies a posted message so that it can be updated in place.
type MessageRef struct {
	Channel string
	TS      string
}

// Command is a `/dr …` invocation from a user in a channel. Text is what follows
// `/dr ` (for example `restore-db lstm-pfd --backup x`).
type Command struct {
	User       User
	Channel    string
	Text       string
	ReceivedAt time.Time
}

// Click is a button press or checklist tick.
type Click struct {
	User     User
	Channel  string
	Message  MessageRef
	ActionID string
	Value    string
}

// Poster is the outbound half of a chat adapter.
type Poster interface {
	// Post posts m in channel and returns a reference for later updates.
	Post(ctx context.Context, channel string, m Message) (MessageRef, error)
	// Update replaces a posted message.
	Update(ctx context.Context, ref MessageRef, m Message) error
	// PostEphemeral shows m to one user in channel.
	PostEphemeral(ctx context.Context, channel, userID string, m Message) error
}

// Handler is the inbound half: what an adapter hands to the bot. The returned
// message is the reply for the user who acted (already user-safe); a zero Message
// means no reply.
type Handler interface {
	HandleCommand(ctx context.Context, c Command) Message
	HandleClick(ctx context.Context, c Click) Message
}

// ErrNameTaken is returned by CreateChannel when the name is in use.
var ErrNameTaken = errors.New("channel name taken")

// ErrUserNotFound is returned by LookupByEmail when no user has the address.
var ErrUserNotFound = errors.New("user not found")

// Channels is what the incident lifecycle needs from a platform besides posting.
type Channels interface {
	// CreateChannel creates a public channel and returns its id; ErrNameTaken when
	// the name is in use.
	CreateChannel(ctx context.Context, name string) (string, error)
	SetTopic(ctx context.Context, channel, topic string) error
	Invite(ctx context.Context, channel string, userIDs ...string) error
	// LookupByEmail resolves an e-mail address; ErrUserNotFound when nobody has it.
	LookupByEmail(ctx context.Context, email string) (User, error)
}

// ChannelFinder is implemented by adapters that can look a channel up by name.
// The incident lifecycle uses it when CreateChannel answers ErrNameTaken, to
// adopt the channel an attempt that crashed before linking it to its incident
// had created; with adapters that lack it, the next suffix (-2, …) is used.
type ChannelFinder interface {
	// FindChannel returns the id of the unarchived public channel called name
	// and whether the bot itself created it; found is false when there is none.
	FindChannel(ctx context.Context, name string) (id string, createdByBot bool, found bool, err error)
}

// Adapter is a whole chat platform binding.
type Adapter interface {
	Poster
	Channels
}

// Pinner is implemented by adapters that can pin a message in its channel
// (the incident header). Pinning a message already pinned is not an error.
type Pinner interface {
	Pin(ctx context.Context, ref MessageRef) error
}

// Unpinner is implemented by adapters that can unpin a message (the header
// left in a public channel by an incident that moved to a private one).
// Unpinning a message that is not pinned is not an error.
type Unpinner interface {
	Unpin(ctx context.Context, ref MessageRef) error
}

// CardMover moves a request's card to another channel: the request cards
// (commands.RequestCards) implement it, and cmd/drbot hands them to the
// incident lifecycle, which moves the cards of a security incident's
// requests to its private channel (bot/incident does not import commands).
type CardMover interface {
	// RepostCard posts request id's card, as it stands now, in channel;
	// the request stays linked to its current card.
	RepostCard(ctx context.Context, id int64, channel string) (MessageRef, error)
	// MoveCard links request id to its card at to (updated there, and its
	// buttons answered there, from now on) and replaces the card at from
	// with pointer, which has no buttons. Doing it again changes nothing.
	MoveCard(ctx context.Context, id int64, from, to MessageRef, pointer Message) error
}
