// Package shell is drbot's local terminal chat adapter, like Hubot's shell
// adapter: a real chat.Adapter with in-memory channels and users that renders
// messages as text and turns typed lines into commands and clicks for a
// chat.Handler. `drbot shell` runs the whole bot against it, no Slack needed.
package shell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drbot-dev/drbot/bot/chat"
)

// GeneralID and GeneralName identify the channel the shell starts in.
const (
	GeneralID   = "C0000"
	GeneralName = "general"
)

// DefaultUser is the user the shell acts as when Options.User is empty.
const DefaultUser = "me"

// ErrChannelNotFound is returned when a channel id or name does not exist.
var ErrChannelNotFound = errors.New("channel not found")

// ErrMessageNotFound is returned by Update for an unknown message reference.
var ErrMessageNotFound = errors.New("message not found")

var (
	userNameRE    = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,31}$`)
	channelNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,79}$`)
)

// Options configures a Shell.
type Options struct {
	In  io.Reader // typed lines; a terminal gets a prompt
	Out io.Writer // rendered conversation
	// User is who the shell acts as (drbot shell --as); lowercase name, default "me".
	User string
	// Handler receives commands and clicks; it may be set later with SetHandler.
	Handler chat.Handler
	// Trigger simulates a PagerDuty alert for /trigger; nil disables /trigger
	// (it may be set later with SetTrigger).
	Trigger func(ctx context.Context, service, title string) error
	// Now is the clock for timestamps; nil = time.Now.
	Now func() time.Time
}

type channel struct {
	id, name string
	topic    string
	members  []string
}

// clickable is one numbered button or checklist item.
type clickable struct {
	ref      chat.MessageRef
	actionID string
	value    string
	label    string
}

type posted struct {
	ref     chat.MessageRef
	msg     chat.Message
	numbers []int // the clickables' numbers, in render order
}

// Shell is a terminal chat adapter. It is safe for concurrent use: posts may
// arrive from other goroutines while Run reads input.
type Shell struct {
	in  io.Reader
	now func() time.Time
	tty bool

	mu         sync.Mutex // guards everything below and writes to out
	out        io.Writer
	handler    chat.Handler
	trigger    func(ctx context.Context, service, title string) error
	user       string
	current    string // channel id
	channels   map[string]*channel
	order      []string // channel ids in creation order
	messages   map[string]*posted
	clicks     []clickable // number N is clicks[N-1]
	seq        int
	created    int // channels created, for /trigger's auto-join
	lastCreate string
	prompted   bool // a prompt is on screen without a newline after it
}

// New returns a shell adapter. It panics if opts.User is not a valid name
// (callers validate --as with ValidUserName first).
func New(opts Options) *Shell {
	user := strings.ToLower(strings.TrimSpace(opts.User))
	if user == "" {
		user = DefaultUser
	}
	if err := ValidUserName(user); err != nil {
		panic(fmt.Sprintf("shell.New: %v", err))
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	in := opts.In
	if in == nil {
		in = strings.NewReader("")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Shell{
		in:       in,
		trigger:  opts.Trigger,
		now:      now,
		tty:      isTerminal(in),
		out:      out,
		handler:  opts.Handler,
		user:     user,
		current:  GeneralID,
		channels: map[string]*channel{},
		messages: map[string]*posted{},
	}
	s.channels[GeneralID] = &channel{id: GeneralID, name: GeneralName, members: []string{user}} // like Slack's #general: everyone
	s.order = append(s.order, GeneralID)
	return s
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// ValidUserName reports whether name can be a shell user (lowercase letters,
// digits, '.', '_' or '-', starting with a letter, at most 32 characters).
func ValidUserName(name string) error {
	if !userNameRE.MatchString(name) {
		return fmt.Errorf("%q is not a valid user name: use lowercase letters, digits, '.', '_' or '-', starting with a letter (at most 32)", name)
	}
	return nil
}

// SetHandler sets the handler that receives commands and clicks.
func (s *Shell) SetHandler(h chat.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = h
}

// SetTrigger sets the function /trigger calls (see Options.Trigger).
func (s *Shell) SetTrigger(fn func(ctx context.Context, service, title string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trigger = fn
}

// User returns the current user id.
func (s *Shell) User() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// CurrentChannel returns the current channel's id and name.
func (s *Shell) CurrentChannel() (id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[s.current]
	return c.id, c.name
}

// ChannelByName returns the id of the channel called name (with or without '#').
func (s *Shell) ChannelByName(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byNameLocked(name)
	if c == nil {
		return "", false
	}
	return c.id, true
}

// ChannelInfo describes a channel.
type ChannelInfo struct {
	ID, Name, Topic string
	Members         []string
}

// channelIDPrefix starts the id of every channel the bot creates. The id embeds
// the name, which is unique, so ids stay stable across restarts of the shell and
// Restore can rebuild the channel list from the ids kept in the store.
const channelIDPrefix = "C-"

// Restore re-creates, silently, channels a previous run created, from their ids
// (the store keeps each incident's channel id). Ids the shell did not hand out
// are ignored. It makes a restarted shell number the next channel of the day
// -2 instead of handing out a name, and an id, that an incident already owns.
func (s *Shell) Restore(channelIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range channelIDs {
		name, ok := strings.CutPrefix(id, channelIDPrefix)
		if !ok || !channelNameRE.MatchString(name) || s.channels[id] != nil {
			continue
		}
		s.channels[id] = &channel{id: id, name: name}
		s.order = append(s.order, id)
	}
}

// Channels returns every channel in creation order.
func (s *Shell) Channels() []ChannelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ChannelInfo, 0, len(s.order))
	for _, id := range s.order {
		c := s.channels[id]
		out = append(out, ChannelInfo{ID: c.id, Name: c.name, Topic: c.topic, Members: slices.Clone(c.members)})
	}
	return out
}

func (s *Shell) byNameLocked(name string) *channel {
	name = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(name), "#"))
	for _, id := range s.order {
		if c := s.channels[id]; c.name == name {
			return c
		}
	}
	return nil
}

// resolveLocked finds a channel by id, or by name as a convenience.
func (s *Shell) resolveLocked(ch string) (*channel, error) {
	if c, ok := s.channels[ch]; ok {
		return c, nil
	}
	if c := s.byNameLocked(ch); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("shell: channel %q: %w", ch, ErrChannelNotFound)
}

// Post implements chat.Poster.
func (s *Shell) Post(_ context.Context, ch string, m chat.Message) (chat.MessageRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.resolveLocked(ch)
	if err != nil {
		return chat.MessageRef{}, err
	}
	ref := s.storeLocked(c.id, m)
	s.renderLocked(c, s.messages[ref.TS], "drbot", "")
	return ref, nil
}

func (s *Shell) storeLocked(channelID string, m chat.Message) chat.MessageRef {
	s.seq++
	ref := chat.MessageRef{Channel: channelID, TS: fmt.Sprintf("%d.%06d", s.now().Unix(), s.seq)}
	p := &posted{ref: ref, msg: m}
	s.numberLocked(p, nil)
	s.messages[ref.TS] = p
	return ref
}

// numberLocked gives each clickable of p.msg a number, reusing prev's numbers
// by position so that an updated message keeps its buttons' numbers.
func (s *Shell) numberLocked(p *posted, prev []int) {
	p.numbers = p.numbers[:0]
	i := 0
	add := func(actionID, value, label string) {
		cl := clickable{ref: p.ref, actionID: actionID, value: value, label: label}
		if i < len(prev) {
			s.clicks[prev[i]-1] = cl
			p.numbers = append(p.numbers, prev[i])
		} else {
			s.clicks = append(s.clicks, cl)
			p.numbers = append(p.numbers, len(s.clicks))
		}
		i++
	}
	for _, b := range p.msg.Blocks {
		switch b := b.(type) {
		case chat.Actions:
			for _, btn := range b.Buttons {
				add(btn.ActionID, btn.Value, btn.Label)
			}
		case chat.Checklist:
			for _, it := range b.Items {
				add(b.ActionID, it.Value, it.Label)
			}
		}
	}
	// Buttons that disappeared in an update can no longer be pressed.
	for _, n := range prev[min(i, len(prev)):] {
		s.clicks[n-1] = clickable{}
	}
}

// Update implements chat.Poster.
func (s *Shell) Update(_ context.Context, ref chat.MessageRef, m chat.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.messages[ref.TS]
	if !ok || p.ref.Channel != ref.Channel {
		return fmt.Errorf("shell: update message %s in %s: %w", ref.TS, ref.Channel, ErrMessageNotFound)
	}
	prev := slices.Clone(p.numbers)
	p.msg = m
	s.numberLocked(p, prev)
	s.renderLocked(s.channels[ref.Channel], p, "drbot", "(updated) ")
	return nil
}

// PostEphemeral implements chat.Poster.
func (s *Shell) PostEphemeral(_ context.Context, ch, userID string, m chat.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.resolveLocked(ch)
	if err != nil {
		return err
	}
	m.Ephemeral = true
	ref := s.storeLocked(c.id, m)
	who := "(only you)"
	if userID != s.user {
		who = "(only " + userID + ")"
	}
	s.renderLocked(c, s.messages[ref.TS], "drbot", who+" ")
	return nil
}

// CreateChannel implements chat.Channels.
func (s *Shell) CreateChannel(_ context.Context, name string) (string, error) {
	if !channelNameRE.MatchString(name) {
		return "", fmt.Errorf("shell: create channel %q: names are lowercase letters, digits, '-' and '_', at most 80", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byNameLocked(name) != nil {
		return "", fmt.Errorf("shell: create channel %q: %w", name, chat.ErrNameTaken)
	}
	id := channelIDPrefix + name
	s.channels[id] = &channel{id: id, name: name}
	s.order = append(s.order, id)
	s.created++
	s.lastCreate = id
	s.noticeLocked(fmt.Sprintf("drbot created #%s", name))
	return id, nil
}

var _ chat.ChannelFinder = (*Shell)(nil)

// FindChannel implements chat.ChannelFinder: the bot created the channels
// whose ids the shell handed out (or Restore brought back), not #general.
func (s *Shell) FindChannel(_ context.Context, name string) (id string, createdByBot, found bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byNameLocked(name)
	if c == nil {
		return "", false, false, nil
	}
	return c.id, strings.HasPrefix(c.id, channelIDPrefix), true, nil
}

// SetTopic implements chat.Channels.
func (s *Shell) SetTopic(_ context.Context, ch, topic string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.resolveLocked(ch)
	if err != nil {
		return err
	}
	c.topic = topic
	s.noticeLocked(fmt.Sprintf("drbot set the topic of #%s: %s", c.name, topic))
	return nil
}

// Invite implements chat.Channels.
func (s *Shell) Invite(_ context.Context, ch string, userIDs ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.resolveLocked(ch)
	if err != nil {
		return err
	}
	var added []string
	for _, u := range userIDs {
		if !slices.Contains(c.members, u) {
			c.members = append(c.members, u)
			added = append(added, u)
		}
	}
	if len(added) > 0 {
		s.noticeLocked(fmt.Sprintf("drbot invited %s to #%s", strings.Join(added, ", "), c.name))
	}
	return nil
}

// LookupByEmail implements chat.Channels: name@anything is the local user name.
func (s *Shell) LookupByEmail(_ context.Context, email string) (chat.User, error) {
	local, _, ok := strings.Cut(strings.TrimSpace(email), "@")
	local = strings.ToLower(local)
	if !ok || ValidUserName(local) != nil {
		return chat.User{}, fmt.Errorf("shell: lookup %q: %w", email, chat.ErrUserNotFound)
	}
	return chat.User{ID: local, Name: local}, nil
}

// Run reads lines from In and acts on them until EOF, /quit or ctx is done.
// It returns nil on EOF and /quit, ctx.Err() when ctx ends, and an error when
// reading fails.
func (s *Shell) Run(ctx context.Context) error {
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(s.in)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()
	s.mu.Lock()
	s.promptLocked()
	s.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			s.mu.Lock()
			if s.prompted {
				s.printfLocked("\n")
			}
			s.mu.Unlock()
			if err != nil {
				return fmt.Errorf("shell: read input: %w", err)
			}
			return nil
		case line := <-lines:
			s.mu.Lock()
			s.prompted = false
			s.mu.Unlock()
			if quit := s.Exec(ctx, line); quit {
				return nil
			}
			s.mu.Lock()
			s.promptLocked()
			s.mu.Unlock()
		}
	}
}

// Exec acts on one input line as if typed; it reports whether the line was /quit.
func (s *Shell) Exec(ctx context.Context, line string) (quit bool) {
	line = strings.TrimSpace(line)
	if line == "" {
		return false
	}
	if !strings.HasPrefix(line, "/") {
		s.say(line)
		return false
	}
	cmd, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(cmd) {
	case "/dr":
		s.command(ctx, rest)
	case "/as":
		s.as(rest)
	case "/click":
		s.click(ctx, rest)
	case "/trigger":
		s.doTrigger(ctx, rest)
	case "/channels":
		s.listChannels()
	case "/join":
		s.join(rest)
	case "/help":
		s.help()
	case "/quit", "/exit":
		return true
	default:
		s.errorf("unknown shell command %s; /help lists them (drbot's commands start with /dr)", cmd)
	}
	return false
}

func (s *Shell) say(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[s.current]
	s.renderLocked(c, &posted{msg: chat.Message{Text: text}}, s.user, "")
}

func (s *Shell) command(ctx context.Context, text string) {
	s.mu.Lock()
	h, user, ch := s.handler, s.user, s.current
	s.mu.Unlock()
	if h == nil {
		s.errorf("drbot is not connected to this shell yet")
		return
	}
	reply := h.HandleCommand(ctx, chat.Command{
		User:       chat.User{ID: user, Name: user},
		Channel:    ch,
		Text:       text,
		ReceivedAt: s.now(),
	})
	s.reply(ctx, ch, user, reply)
}

func (s *Shell) reply(ctx context.Context, ch, user string, m chat.Message) {
	if m.Text == "" && len(m.Blocks) == 0 {
		return
	}
	var err error
	if m.Ephemeral {
		err = s.PostEphemeral(ctx, ch, user, m)
	} else {
		_, err = s.Post(ctx, ch, m)
	}
	if err != nil {
		s.errorf("could not show drbot's reply: %v", err)
	}
}

func (s *Shell) as(name string) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		s.errorf("usage: /as NAME (for example /as bob)")
		return
	}
	if err := ValidUserName(name); err != nil {
		s.errorf("%v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user = name
	s.joinLocked(GeneralID)
	s.printfLocked("* you are now %s\n", name)
}

func (s *Shell) click(ctx context.Context, arg string) {
	n, err := strconv.Atoi(strings.TrimSpace(arg))
	s.mu.Lock()
	h, user, total := s.handler, s.user, len(s.clicks)
	var cl clickable
	if err == nil && n >= 1 && n <= total {
		cl = s.clicks[n-1]
	}
	s.mu.Unlock()
	switch {
	case err != nil || arg == "":
		s.errorf("usage: /click N, where N is the number shown in brackets next to a button, e.g. [3]")
		return
	case total == 0:
		s.errorf("there is no button %d: no buttons have been shown yet", n)
		return
	case n < 1 || n > total:
		s.errorf("there is no button %d: buttons shown so far are numbered 1 to %d", n, total)
		return
	case cl.actionID == "":
		s.errorf("button %d is gone: its message was updated", n)
		return
	case h == nil:
		s.errorf("drbot is not connected to this shell yet")
		return
	}
	reply := h.HandleClick(ctx, chat.Click{
		User:     chat.User{ID: user, Name: user},
		Channel:  cl.ref.Channel,
		Message:  cl.ref,
		ActionID: cl.actionID,
		Value:    cl.value,
	})
	s.reply(ctx, cl.ref.Channel, user, reply)
}

func (s *Shell) doTrigger(ctx context.Context, arg string) {
	service, title, _ := strings.Cut(arg, " ")
	title = strings.TrimSpace(title)
	if service == "" || title == "" {
		s.errorf("usage: /trigger SERVICE TITLE… (for example /trigger lstm-pfd Dashboard down)")
		return
	}
	s.mu.Lock()
	before, trigger := s.created, s.trigger
	s.mu.Unlock()
	if trigger == nil {
		s.errorf("/trigger is not available in this shell")
		return
	}
	if err := trigger(ctx, service, title); err != nil {
		s.errorf("trigger failed: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.created != before {
		s.current = s.lastCreate
		s.joinLocked(s.current)
		s.printfLocked("* you are now in #%s\n", s.channels[s.current].name)
	}
}

func (s *Shell) listChannels() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.order {
		c := s.channels[id]
		mark := " "
		if id == s.current {
			mark = "*"
		}
		line := fmt.Sprintf("%s #%s (%s)", mark, c.name, c.id)
		if c.topic != "" {
			line += " — " + c.topic
		}
		s.printfLocked("%s\n", line)
	}
}

func (s *Shell) join(name string) {
	if strings.TrimSpace(name) == "" {
		s.errorf("usage: /join NAME (see /channels)")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byNameLocked(name)
	if c == nil {
		s.errorfLocked("there is no channel #%s; /channels lists them", strings.TrimPrefix(strings.TrimSpace(name), "#"))
		return
	}
	s.current = c.id
	s.joinLocked(c.id)
	s.printfLocked("* you are now in #%s\n", c.name)
}

const helpText = `Shell commands:
  /dr COMMAND…           run a drbot command (/dr help lists them)
  /as NAME               act as another user (e.g. /as bob, to approve your own request as someone else)
  /click N               press button or tick checklist item [N]
  /trigger SERVICE TITLE simulate a PagerDuty alert for a runbook service
  /channels              list channels (* = current)
  /join NAME             switch to a channel
  /help                  show this help
  /quit                  leave the shell
Anything else is said in the current channel.
`

func (s *Shell) help() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.printfLocked("%s", helpText)
}

func (s *Shell) errorf(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errorfLocked(format, a...)
}

func (s *Shell) errorfLocked(format string, a ...any) {
	s.printfLocked("! %s\n", fmt.Sprintf(format, a...))
}

func (s *Shell) noticeLocked(text string) {
	s.printfLocked("* %s\n", text)
}

// printfLocked writes output, first ending a prompt line that is on screen so
// that output from other goroutines does not land after "alice@#general> ".
func (s *Shell) printfLocked(format string, a ...any) {
	if s.prompted {
		_, _ = io.WriteString(s.out, "\n")
		s.prompted = false
	}
	_, _ = fmt.Fprintf(s.out, format, a...)
}

func (s *Shell) promptLocked() {
	if !s.tty {
		return
	}
	_, _ = fmt.Fprintf(s.out, "%s@#%s> ", s.user, s.channels[s.current].name)
	s.prompted = true
}

// renderLocked prints one message. Output from another goroutine re-prints the
// prompt afterwards.
// mentionRE matches the chat model's mention markup, <@user>, <#channel>
// and <!subteam^group>.
var mentionRE = regexp.MustCompile(`<([@#]|!subteam\^)([A-Za-z0-9._-]+)>`)

// readableMentions shows <@bob> as @bob and <#C-incident-x> as #incident-x: in
// the terminal, user ids are the names people typed after /as.
func readableMentions(s string) string {
	return mentionRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := mentionRE.FindStringSubmatch(m)
		if sub[1] == "!subteam^" {
			return "@" + sub[2]
		}
		return sub[1] + strings.TrimPrefix(sub[2], channelIDPrefix)
	})
}

func (s *Shell) renderLocked(c *channel, p *posted, author, mark string) {
	hadPrompt := s.prompted
	var b strings.Builder
	fmt.Fprintf(&b, "%s[#%s %s] %s:", mark, c.name, s.now().Format("15:04"), author)
	body := readableMentions(Render(p.msg, p.numbers))
	if !strings.Contains(body, "\n") {
		b.WriteString(" " + body + "\n")
	} else {
		b.WriteString("\n")
		for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
			b.WriteString("  " + line + "\n")
		}
	}
	if c.id != s.current {
		fmt.Fprintf(&b, "  (in #%s; /join %s to switch)\n", c.name, c.name)
	}
	s.printfLocked("%s", b.String())
	if hadPrompt {
		s.promptLocked()
	}
}
