// Package slack binds drbot's platform-neutral chat model (bot/chat) to Slack.
// It is the only package that imports slack-go: it renders Block Kit, calls the
// Web API (with per-channel pacing and 429 handling), verifies signed HTTP
// requests and runs Socket Mode, and turns Slack's inbound payloads into
// chat.Command and chat.Click values for a chat.Handler.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/drbot-dev/drbot/bot/chat"
)

// DefaultAPIURL is Slack's Web API base URL (SLACK_API_URL overrides it).
const DefaultAPIURL = "https://slack.com/api/"

// Options configures the Slack binding. One struct serves NewClient (Token,
// APIURL, HTTPClient, Logger, ChannelLimit, ChannelBurst, MaxRetries),
// NewHTTPHandlers (SigningSecret, Handler, Client, Logger, Now, HandlerTimeout)
// and RunSocketMode (AppToken, Client, Handler, Logger, HandlerTimeout, Command).
type Options struct {
	// Token is the bot token (xoxb-…), SLACK_BOT_TOKEN.
	Token string
	// APIURL is the Web API base, SLACK_API_URL; default DefaultAPIURL. It must end in "/".
	APIURL string
	// HTTPClient makes the Web API calls; default a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger receives operational logs; default slog.Default().
	Logger *slog.Logger
	// ChannelLimit paces posts and updates per channel; default 1 per second
	// (Slack's guidance for chat.postMessage). Other channels are never blocked.
	ChannelLimit rate.Limit
	// ChannelBurst is how many messages a quiet channel may take at once; default 1.
	ChannelBurst int
	// MaxRetries is how often a call answered with HTTP 429 is retried after
	// its Retry-After; default 3, negative disables retries.
	MaxRetries int

	// SigningSecret verifies HTTP-mode requests, SLACK_SIGNING_SECRET.
	SigningSecret string
	// AppToken (xapp-…) selects Socket Mode, SLACK_APP_TOKEN.
	AppToken string
	// Handler receives commands and clicks.
	Handler chat.Handler
	// Client delivers the handler's replies.
	Client *Client
	// Now stamps received commands; default time.Now.
	Now func() time.Time
	// HandlerTimeout bounds one background handler run; default 5 minutes.
	HandlerTimeout time.Duration
	// Command is the slash command handled in Socket Mode; default "/dr".
	Command string
	// Deliver, when set, delivers handler replies instead of Client (user
	// set = ephemeral); incident.(*Lifecycle).Deliver hands a failed post to a retrying job.
	Deliver func(ctx context.Context, channel, user string, m chat.Message) error
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// Client is the Slack Web API side of the binding. It implements chat.Adapter.
type Client struct {
	opts  Options
	api   *slack.Client
	log   *slog.Logger
	limit rate.Limit
	burst int

	mu       sync.Mutex
	limiters map[string]*channelLimiter
	botUser  string // the bot's user id from auth.test, once known
}

var (
	_ chat.Adapter       = (*Client)(nil)
	_ chat.ChannelFinder = (*Client)(nil)
	_ chat.Pinner        = (*Client)(nil)
	_ chat.Unpinner      = (*Client)(nil)
)

type channelLimiter struct {
	lim      *rate.Limiter
	lastUsed time.Time
}

// NewClient builds a Web API client from opts. It makes no network call.
func NewClient(opts Options) (*Client, error) {
	if opts.Token == "" {
		return nil, errors.New("slack: bot token is empty: set SLACK_BOT_TOKEN")
	}
	if opts.APIURL == "" {
		opts.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(opts.APIURL, "/") {
		opts.APIURL += "/"
	}
	if opts.HTTPClient == nil {
		// All calls go to one host: keep enough idle connections for the
		// concurrent replies and incident jobs (the default keeps 2).
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	if opts.ChannelLimit == 0 {
		opts.ChannelLimit = 1
	}
	if opts.ChannelBurst <= 0 {
		opts.ChannelBurst = 1
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 3
	}
	c := &Client{
		opts:     opts,
		log:      opts.logger(),
		limit:    opts.ChannelLimit,
		burst:    opts.ChannelBurst,
		limiters: map[string]*channelLimiter{},
	}
	c.api = c.newAPI()
	return c, nil
}

// newAPI builds a slack-go client; extra options come last.
func (c *Client) newAPI(extra ...slack.Option) *slack.Client {
	o := []slack.Option{
		slack.OptionAPIURL(c.opts.APIURL),
		slack.OptionHTTPClient(c.opts.HTTPClient),
	}
	if c.opts.MaxRetries > 0 {
		// After OptionHTTPClient, so that the retry wrapper wraps our client.
		o = append(o, slack.OptionRetryConfig(slack.RetryConfig{
			MaxRetries:         c.opts.MaxRetries,
			RetryAfterDuration: 5 * time.Second, // when a 429 has no Retry-After
			RetryAfterJitter:   250 * time.Millisecond,
		}))
	}
	return slack.New(c.opts.Token, append(o, extra...)...)
}

// wait paces calls per channel without blocking other channels.
func (c *Client) wait(ctx context.Context, channel string) error {
	if c.limit == rate.Inf {
		return nil
	}
	now := time.Now()
	c.mu.Lock()
	l := c.limiters[channel]
	if l == nil {
		if len(c.limiters) >= 1024 {
			for k, v := range c.limiters {
				if now.Sub(v.lastUsed) > time.Minute {
					delete(c.limiters, k)
				}
			}
		}
		l = &channelLimiter{lim: rate.NewLimiter(c.limit, c.burst)}
		c.limiters[channel] = l
	}
	l.lastUsed = now
	c.mu.Unlock()
	if err := l.lim.Wait(ctx); err != nil {
		return fmt.Errorf("wait for the message rate of channel %s: %w", channel, err)
	}
	return nil
}

// apiError wraps a slack-go error and keeps the token out of its text.
type apiError struct {
	op    string
	err   error
	token []string
}

func (e *apiError) Error() string {
	msg := "slack " + e.op + ": " + e.err.Error()
	for _, t := range e.token {
		if t != "" {
			msg = strings.ReplaceAll(msg, t, "[redacted]")
		}
	}
	return msg
}

func (e *apiError) Unwrap() error { return e.err }

func (c *Client) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return &apiError{op: op, err: err, token: []string{c.opts.Token, c.opts.AppToken}}
}

// ErrorCode returns the Slack error code in err ("name_taken", "channel_not_found",
// …), "ratelimited" for an exhausted 429, or "" when err carries none.
func ErrorCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return "ratelimited"
	}
	return ""
}

// AuthTest checks the bot token and returns the bot's user id and team id.
func (c *Client) AuthTest(ctx context.Context) (userID, teamID string, err error) {
	r, err := c.api.AuthTestContext(ctx)
	if err != nil {
		return "", "", c.wrap("auth.test", err)
	}
	c.mu.Lock()
	c.botUser = r.UserID
	c.mu.Unlock()
	return r.UserID, r.TeamID, nil
}

// botUserID is the bot's user id, from auth.test on first use, then cached.
func (c *Client) botUserID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.botUser
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	id, _, err := c.AuthTest(ctx)
	return id, err
}

// Post posts m in channel, paced per channel, and returns its reference. When
// the bot is not a member of a public channel it joins and posts once more.
func (c *Client) Post(ctx context.Context, channel string, m chat.Message) (chat.MessageRef, error) {
	if err := c.wait(ctx, channel); err != nil {
		return chat.MessageRef{}, err
	}
	opts := []slack.MsgOption{slack.MsgOptionText(fallbackText(m), true), slack.MsgOptionBlocks(render(m)...)}
	if m.ThreadTS != "" {
		opts = append(opts, slack.MsgOptionTS(m.ThreadTS))
	}
	ch, ts, err := c.api.PostMessageContext(ctx, channel, opts...)
	if ErrorCode(err) == "not_in_channel" {
		if _, _, _, jerr := c.api.JoinConversationContext(ctx, channel); jerr != nil {
			return chat.MessageRef{}, c.wrap("conversations.join "+channel, jerr)
		}
		ch, ts, err = c.api.PostMessageContext(ctx, channel, opts...)
	}
	if err != nil {
		return chat.MessageRef{}, c.wrap("chat.postMessage in "+channel, err)
	}
	return chat.MessageRef{Channel: ch, TS: ts}, nil
}

// Update replaces the message at ref, paced with the channel's posts.
func (c *Client) Update(ctx context.Context, ref chat.MessageRef, m chat.Message) error {
	if err := c.wait(ctx, ref.Channel); err != nil {
		return err
	}
	_, _, _, err := c.api.UpdateMessageContext(ctx, ref.Channel, ref.TS,
		slack.MsgOptionText(fallbackText(m), true), slack.MsgOptionBlocks(render(m)...))
	if err != nil {
		return c.wrap(fmt.Sprintf("chat.update %s in %s", ref.TS, ref.Channel), err)
	}
	return nil
}

// Pin pins the message ref in its channel (pins.add); a message already
// pinned is not an error.
func (c *Client) Pin(ctx context.Context, ref chat.MessageRef) error {
	if err := c.wait(ctx, ref.Channel); err != nil {
		return err
	}
	err := c.api.AddPinContext(ctx, ref.Channel, slack.NewRefToMessage(ref.Channel, ref.TS))
	if err != nil && err.Error() != "already_pinned" {
		return c.wrap(fmt.Sprintf("pins.add %s in %s", ref.TS, ref.Channel), err)
	}
	return nil
}

// Unpin implements chat.Unpinner (pins.remove); a message not pinned is
// not an error.
func (c *Client) Unpin(ctx context.Context, ref chat.MessageRef) error {
	if err := c.wait(ctx, ref.Channel); err != nil {
		return err
	}
	err := c.api.RemovePinContext(ctx, ref.Channel, slack.NewRefToMessage(ref.Channel, ref.TS))
	if err != nil && err.Error() != "no_pin" {
		return c.wrap(fmt.Sprintf("pins.remove %s in %s", ref.TS, ref.Channel), err)
	}
	return nil
}

// PostEphemeral shows m to userID in channel. It is not paced: replies to a
// user's own action must be prompt, and Slack rates them separately.
func (c *Client) PostEphemeral(ctx context.Context, channel, userID string, m chat.Message) error {
	_, err := c.api.PostEphemeralContext(ctx, channel, userID,
		slack.MsgOptionText(fallbackText(m), true), slack.MsgOptionBlocks(render(m)...))
	if err != nil {
		return c.wrap(fmt.Sprintf("chat.postEphemeral to %s in %s", userID, channel), err)
	}
	return nil
}

// CreateChannel creates a public channel and returns its id; the error wraps
// chat.ErrNameTaken when the name is in use.
func (c *Client) CreateChannel(ctx context.Context, name string) (string, error) {
	ch, err := c.api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: name})
	if err != nil {
		if ErrorCode(err) == "name_taken" {
			return "", fmt.Errorf("create channel #%s: %w: %w", name, chat.ErrNameTaken, c.wrap("conversations.create", err))
		}
		return "", fmt.Errorf("create channel #%s: %w", name, c.wrap("conversations.create", err))
	}
	return ch.ID, nil
}

// listPageSize is how many channels one conversations.list call asks for:
// Slack's maximum, since a lookup by name reads the list to its end.
const listPageSize = 1000

// FindChannel looks up the unarchived public channel called name, reading
// conversations.list page by page (Slack has no lookup by name), and reports
// whether the bot created it: its creator is the bot user auth.test names.
// It implements chat.ChannelFinder.
func (c *Client) FindChannel(ctx context.Context, name string) (id string, createdByBot, found bool, err error) {
	params := &slack.GetConversationsParameters{Types: []string{"public_channel"}, ExcludeArchived: true, Limit: listPageSize}
	for {
		chans, next, err := c.api.GetConversationsContext(ctx, params)
		if err != nil {
			return "", false, false, fmt.Errorf("find channel #%s: %w", name, c.wrap("conversations.list", err))
		}
		for _, ch := range chans {
			if ch.Name != name {
				continue
			}
			bot, err := c.botUserID(ctx)
			if err != nil {
				return "", false, false, fmt.Errorf("find channel #%s: %w", name, err)
			}
			return ch.ID, ch.Creator == bot, true, nil
		}
		if next == "" || next == params.Cursor {
			return "", false, false, nil
		}
		params.Cursor = next
	}
}

// SetTopic sets a channel's topic.
func (c *Client) SetTopic(ctx context.Context, channel, topic string) error {
	if _, err := c.api.SetTopicOfConversationContext(ctx, channel, topic); err != nil {
		return c.wrap("conversations.setTopic "+channel, err)
	}
	return nil
}

// Invite adds users to channel. Users already there are fine; a user Slack does
// not know fails the call with an error naming that user (the others are still
// invited).
func (c *Client) Invite(ctx context.Context, channel string, userIDs ...string) error {
	if len(userIDs) == 0 {
		return nil
	}
	_, err := c.api.InviteUsersToConversationContext(ctx, channel, userIDs...)
	if err == nil || ErrorCode(err) == "already_in_channel" && len(userIDs) == 1 {
		return nil
	}
	if len(userIDs) == 1 {
		return c.inviteErr(channel, userIDs[0], err)
	}
	code := ErrorCode(err)
	if code != "already_in_channel" && code != "user_not_found" && code != "cant_invite_self" {
		return c.wrap("conversations.invite "+channel, err)
	}
	// Slack refuses the whole batch for one bad user: invite one by one.
	var errs []error
	for _, u := range userIDs {
		_, err := c.api.InviteUsersToConversationContext(ctx, channel, u)
		if err != nil && ErrorCode(err) != "already_in_channel" {
			errs = append(errs, c.inviteErr(channel, u, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Client) inviteErr(channel, user string, err error) error {
	switch ErrorCode(err) {
	case "user_not_found":
		return fmt.Errorf("invite user %s to %s: no such Slack user: %w", user, channel, c.wrap("conversations.invite", err))
	case "cant_invite_self":
		return nil
	}
	return fmt.Errorf("invite user %s to %s: %w", user, channel, c.wrap("conversations.invite", err))
}

// LookupByEmail resolves an e-mail address; the error wraps chat.ErrUserNotFound
// when nobody in the workspace has it.
func (c *Client) LookupByEmail(ctx context.Context, email string) (chat.User, error) {
	u, err := c.api.GetUserByEmailContext(ctx, email)
	if err != nil {
		if ErrorCode(err) == "users_not_found" {
			return chat.User{}, fmt.Errorf("look up Slack user %s: %w", email, chat.ErrUserNotFound)
		}
		return chat.User{}, fmt.Errorf("look up Slack user %s: %w", email, c.wrap("users.lookupByEmail", err))
	}
	name := u.Name
	if u.RealName != "" {
		name = u.RealName
	}
	return chat.User{ID: u.ID, Name: name}, nil
}

// GroupMembers returns the user ids in a user group (S…), for approver groups.
func (c *Client) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	users, err := c.api.GetUserGroupMembersContext(ctx, groupID)
	if err != nil {
		return nil, fmt.Errorf("members of user group %s: %w", groupID, c.wrap("usergroups.users.list", err))
	}
	return users, nil
}
