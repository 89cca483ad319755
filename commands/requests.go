package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/runner"
	"github.com/drbot-dev/drbot/approvals"
	"github.com/drbot-dev/drbot/bot/chat"
	"github.com/drbot-dev/drbot/store"
)

// Poster is how request cards and notes reach chat: the chat adapter
// provides it (chat.Adapter implements it).
type Poster interface {
	Post(ctx context.Context, channel string, m chat.Message) (chat.MessageRef, error)
	Update(ctx context.Context, ref chat.MessageRef, m chat.Message) error
}

// RequestCards is the chat side of approval-gated requests: it submits
// requests to the approval engine and posts their cards, answers the
// Approve, Deny and Cancel buttons, and keeps every card truthful (it
// implements Requests and runner.Cards). The request states live in
// approvals; nothing here calls back into the bot.
type RequestCards struct {
	reqs  *approvals.Requests
	chat  Poster
	log   *slog.Logger
	now   func() time.Time
	locks cardLocks

	threadMu sync.Mutex
	threads  map[string]chat.MessageRef // live thread messages by request/key (Thread)
}

var (
	_ Requests           = (*RequestCards)(nil)
	_ runner.Cards       = (*RequestCards)(nil)
	_ runner.ThreadCards = (*RequestCards)(nil)
	_ chat.CardMover     = (*RequestCards)(nil)
)

// RequestCardsOptions configure NewRequestCards.
type RequestCardsOptions struct {
	Requests *approvals.Requests // the requests' states
	Chat     Poster
	Logger   *slog.Logger
	Now      func() time.Time
}

// NewRequestCards returns the request lifecycle's chat side; Clicks are its
// button handlers, for the chat handler to route.
func NewRequestCards(o RequestCardsOptions) *RequestCards {
	if o.Requests == nil || o.Chat == nil {
		panic("commands.NewRequestCards: Requests and Chat are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &RequestCards{reqs: o.Requests, chat: o.Chat, log: o.Logger, now: o.Now}
}

// Clicks returns the Approve, Deny and Cancel button handlers by action id.
func (r *RequestCards) Clicks() map[string]func(context.Context, chat.Click) (chat.Message, error) {
	return map[string]func(context.Context, chat.Click) (chat.Message, error){
		chat.ActionApprove: r.clickApprove,
		chat.ActionDeny:    r.clickDeny,
		chat.ActionCancel:  r.clickCancel,
	}
}

// Submit implements Requests: it records the request (refusing a
// busy target), posts its card and links the card to it.
func (r *RequestCards) Submit(ctx context.Context, s Submission) (chat.Message, error) {
	planJSON, err := json.Marshal(s.Plan)
	if err != nil {
		return chat.Message{}, fmt.Errorf("encode plan: %w", err)
	}
	params, err := json.Marshal(s.Params)
	if err != nil {
		return chat.Message{}, fmt.Errorf("encode params: %w", err)
	}
	target := s.Plan.Target
	if target == "" {
		target = s.Kind + ":" + s.Service
	}
	req, pol, err := r.reqs.Submit(ctx, approvals.NewRequest{
		Service: s.Service, Kind: s.Kind, Target: target, Params: params, Plan: planJSON,
		RequestedBy: s.User.ID, Reason: s.Reason, Channel: s.Channel,
	})
	if err != nil {
		return chat.Message{}, err
	}
	card := RequestCard(CardInput{Request: req, Plan: s.Plan, Policy: pol, Now: r.now()})
	ref, err := r.chat.Post(ctx, s.Channel, card)
	if err != nil {
		// Without a card nobody can approve it: free the target.
		if _, cerr := r.reqs.Cancel(ctx, req.ID, req.RequestedBy); cerr != nil {
			r.log.ErrorContext(ctx, "cancel request whose card could not be posted", "request", req.ID, "err", cerr)
		}
		return chat.Message{}, fmt.Errorf("post card of request %d: %w", req.ID, err)
	}
	if err := r.reqs.Posted(ctx, req.ID, ref.Channel, ref.TS); err != nil {
		return chat.Message{}, err
	}
	if pol.Required == 0 {
		// Approved as it was made: it may have run already, so the card
		// shows the state as stored now.
		r.refresh(ctx, req.ID)
		return chat.Message{
			Text:      fmt.Sprintf("Request #%d needs no approval (%s) and is starting; its card shows its progress.", req.ID, approvals.NoApprovalReason(req.Kind, req.Service)),
			Ephemeral: true,
		}, nil
	}
	others := "another approver"
	if pol.Required > 1 {
		others = fmt.Sprintf("%d other approvers", pol.Required)
	}
	return chat.Message{
		Text:      fmt.Sprintf("Request #%d is waiting for approval from %s (it expires at %s). Cancel it with the card's Cancel button or `/dr cancel %d`.", req.ID, others, req.ExpiresAt.UTC().Format("15:04 MST"), req.ID),
		Ephemeral: true,
	}, nil
}

// Cancel implements Requests.
func (r *RequestCards) Cancel(ctx context.Context, user chat.User, id int64) (chat.Message, error) {
	req, err := r.reqs.Cancel(ctx, id, user.ID)
	if err != nil {
		return chat.Message{}, err
	}
	r.Show(ctx, req, runner.Status{})
	return chat.Message{Text: fmt.Sprintf("Request #%d cancelled; nothing was run.", id), Ephemeral: true}, nil
}

// Deny implements Requests: a denial with a reason, by command.
func (r *RequestCards) Deny(ctx context.Context, user chat.User, id int64, reason string) (chat.Message, error) {
	res, err := r.reqs.Decide(ctx, id, user.ID, store.DecisionDeny, reason)
	if err != nil {
		return chat.Message{}, err
	}
	r.Show(ctx, res.Request, runner.Status{})
	return chat.Message{Text: fmt.Sprintf("You denied request #%d; nothing will run.", id), Ephemeral: true}, nil
}

// Recent implements Requests.
func (r *RequestCards) Recent(ctx context.Context, service string, limit int) ([]store.ActionRequest, error) {
	return r.reqs.Recent(ctx, service, limit)
}

// Expire expires request id if it is still pending and updates its card.
func (r *RequestCards) Expire(ctx context.Context, id int64) error {
	req, changed, err := r.reqs.Expire(ctx, id)
	if err != nil {
		return err
	}
	if changed {
		r.Show(ctx, req, runner.Status{})
	}
	return nil
}

func requestOf(c chat.Click) (int64, error) {
	id, err := strconv.ParseInt(c.Value, 10, 64)
	if err != nil || id <= 0 {
		return 0, Refusef("This button does not name a request; run the command again.")
	}
	return id, nil
}

func (r *RequestCards) clickApprove(ctx context.Context, c chat.Click) (chat.Message, error) {
	return r.decide(ctx, c, store.DecisionApprove)
}

func (r *RequestCards) clickDeny(ctx context.Context, c chat.Click) (chat.Message, error) {
	return r.decide(ctx, c, store.DecisionDeny)
}

// decide records the clicker's decision. Identity is the click's user id,
// which adapters take from the signed payload only.
func (r *RequestCards) decide(ctx context.Context, c chat.Click, decision store.Decision) (chat.Message, error) {
	id, err := requestOf(c)
	if err != nil {
		return chat.Message{}, err
	}
	if err := r.fromItsCard(ctx, id, c); err != nil {
		return chat.Message{}, err
	}
	res, err := r.reqs.Decide(ctx, id, c.User.ID, decision, "")
	if err != nil {
		var rf *approvals.Refusal
		if errors.As(err, &rf) && rf.Code == approvals.CodeExpired {
			r.refresh(ctx, id) // the click found it expired: show that
		}
		return chat.Message{}, err
	}
	r.Show(ctx, res.Request, runner.Status{})
	return chat.Message{}, nil
}

func (r *RequestCards) clickCancel(ctx context.Context, c chat.Click) (chat.Message, error) {
	id, err := requestOf(c)
	if err != nil {
		return chat.Message{}, err
	}
	if err := r.fromItsCard(ctx, id, c); err != nil {
		return chat.Message{}, err
	}
	req, err := r.reqs.Cancel(ctx, id, c.User.ID)
	if err != nil {
		return chat.Message{}, err
	}
	r.Show(ctx, req, runner.Status{})
	return chat.Message{}, nil
}

// fromItsCard refuses a click on a card that is no longer request id's
// card: the request moved with its incident to a private channel (see
// MoveCard), and the old card (stale in a client that has not redrawn it)
// must not decide it. A click that names no message (the shell) passes.
func (r *RequestCards) fromItsCard(ctx context.Context, id int64, c chat.Click) error {
	if c.Message.TS == "" {
		return nil
	}
	cur, err := r.reqs.Request(ctx, id)
	if err != nil {
		return err
	}
	if cur.MessageTS == "" || (cur.Channel == c.Message.Channel && cur.MessageTS == c.Message.TS) {
		return nil
	}
	return Refusef("This card no longer decides request #%d: the request moved to a private channel with its incident; ask the incident's responders for access.", id)
}

// RepostCard implements chat.CardMover: request id's card as it stands,
// posted in channel (the request is not linked to it yet: MoveCard).
func (r *RequestCards) RepostCard(ctx context.Context, id int64, channel string) (chat.MessageRef, error) {
	unlock := r.locks.lock(strconv.FormatInt(id, 10))
	defer unlock()
	card, err := r.card(ctx, id)
	if err != nil {
		return chat.MessageRef{}, err
	}
	ref, err := r.chat.Post(ctx, channel, card)
	if err != nil {
		return chat.MessageRef{}, fmt.Errorf("post card of request %d in %s: %w", id, channel, err)
	}
	return ref, nil
}

// MoveCard implements chat.CardMover: request id is linked to its card at
// to, brought up to date there, and the card at from becomes pointer. Under
// the request's card lock, so no update of this process puts the plan back
// on the old card.
func (r *RequestCards) MoveCard(ctx context.Context, id int64, from, to chat.MessageRef, pointer chat.Message) error {
	unlock := r.locks.lock(strconv.FormatInt(id, 10))
	defer unlock()
	if err := r.reqs.Posted(ctx, id, to.Channel, to.TS); err != nil {
		return err
	}
	if card, err := r.card(ctx, id); err == nil {
		if err := r.chat.Update(ctx, to, card); err != nil {
			r.log.WarnContext(ctx, "update moved card", "request", id, "err", err)
		}
	}
	if err := r.chat.Update(ctx, from, pointer); err != nil {
		return fmt.Errorf("replace the old card of request %d: %w", id, err)
	}
	return nil
}

// card is request id's card as stored now (without a runner status).
func (r *RequestCards) card(ctx context.Context, id int64) (chat.Message, error) {
	cur, err := r.reqs.Request(ctx, id)
	if err != nil {
		return chat.Message{}, err
	}
	as, err := r.reqs.Approvals(ctx, id)
	if err != nil {
		return chat.Message{}, fmt.Errorf("approvals of request %d: %w", id, err)
	}
	var plan actions.Plan
	if err := json.Unmarshal(cur.Plan, &plan); err != nil {
		return chat.Message{}, fmt.Errorf("decode plan of request %d: %w", id, err)
	}
	return RequestCard(CardInput{Request: cur, Plan: plan, Approvals: as, Policy: r.reqs.PolicyOf(cur), Now: r.now()}), nil
}

func (r *RequestCards) refresh(ctx context.Context, id int64) {
	req, err := r.reqs.Request(ctx, id)
	if err != nil {
		r.log.WarnContext(ctx, "refresh card", "request", id, "err", err)
		return
	}
	r.Show(ctx, req, runner.Status{})
}

// Show implements runner.Cards: it updates the request's card in place. The
// card is rendered from the request as stored now (under a per-request lock,
// so concurrent changes in this process never leave an older card last); st
// applies only while the stored state is still req's.
func (r *RequestCards) Show(ctx context.Context, req store.ActionRequest, st runner.Status) {
	unlock := r.locks.lock(strconv.FormatInt(req.ID, 10))
	defer unlock()
	cur, err := r.reqs.Request(ctx, req.ID)
	if err != nil {
		r.log.WarnContext(ctx, "update card: read request", "request", req.ID, "err", err)
		return
	}
	if cur.State != req.State {
		st = runner.Status{Reason: st.Reason, Report: st.Report}
		if !store.Final(cur.State) {
			st = runner.Status{}
		}
	}
	if cur.Channel == "" || cur.MessageTS == "" {
		return // the card is not posted yet
	}
	as, err := r.reqs.Approvals(ctx, req.ID)
	if err != nil {
		r.log.WarnContext(ctx, "update card: read approvals", "request", req.ID, "err", err)
		return
	}
	var plan actions.Plan
	if err := json.Unmarshal(cur.Plan, &plan); err != nil {
		r.log.WarnContext(ctx, "update card: decode plan", "request", req.ID, "err", err)
		return
	}
	card := RequestCard(CardInput{Request: cur, Plan: plan, Approvals: as, Policy: r.reqs.PolicyOf(cur), Status: st, Now: r.now()})
	if err := r.chat.Update(ctx, chat.MessageRef{Channel: cur.Channel, TS: cur.MessageTS}, card); err != nil {
		r.log.WarnContext(ctx, "update card", "request", req.ID, "err", err)
	}
}

// Note implements runner.Cards: a line in the request's channel.
func (r *RequestCards) Note(ctx context.Context, req store.ActionRequest, text string) {
	req = r.current(ctx, req)
	if req.Channel == "" {
		return
	}
	if _, err := r.chat.Post(ctx, req.Channel, chat.Plain(text)); err != nil {
		r.log.WarnContext(ctx, "post request note", "request", req.ID, "err", err)
	}
}

// Thread implements runner.ThreadCards: a message in the thread of req's
// card, posted the first time key is seen in this process and updated in
// place afterwards (after a restart the next update posts a new one).
func (r *RequestCards) Thread(ctx context.Context, req store.ActionRequest, key, text string) {
	req = r.current(ctx, req)
	if req.Channel == "" {
		return
	}
	k := strconv.FormatInt(req.ID, 10) + "/" + key
	unlock := r.locks.lock("thread:" + k)
	defer unlock()
	m := chat.Plain(text)
	m.ThreadTS = req.MessageTS
	r.threadMu.Lock()
	ref, ok := r.threads[k]
	r.threadMu.Unlock()
	if ok && ref.Channel == req.Channel {
		err := r.chat.Update(ctx, ref, m)
		if err == nil {
			return
		}
		r.log.WarnContext(ctx, "update thread message", "request", req.ID, "err", err)
	}
	ref, err := r.chat.Post(ctx, req.Channel, m)
	if err != nil {
		r.log.WarnContext(ctx, "post thread message", "request", req.ID, "err", err)
		return
	}
	r.threadMu.Lock()
	if r.threads == nil || len(r.threads) >= maxThreadMessages {
		r.threads = map[string]chat.MessageRef{} // older ones get a new message if updated again
	}
	r.threads[k] = ref
	r.threadMu.Unlock()
}

// current is req with the card it has now: its card may have moved (with a
// security incident, to a private channel) since the caller read it.
func (r *RequestCards) current(ctx context.Context, req store.ActionRequest) store.ActionRequest {
	cur, err := r.reqs.Request(ctx, req.ID)
	if err != nil {
		r.log.WarnContext(ctx, "read the request's card", "request", req.ID, "err", err)
		return req
	}
	req.Channel, req.MessageTS = cur.Channel, cur.MessageTS
	return req
}

// maxThreadMessages bounds the live thread messages remembered.
const maxThreadMessages = 1000

// cardLocks serialises the card updates of one request in this process.
type cardLocks struct {
	mu    sync.Mutex
	locks map[string]*cardLock
}

type cardLock struct {
	mu   sync.Mutex
	refs int
}

func (k *cardLocks) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*cardLock{}
	}
	e := k.locks[key]
	if e == nil {
		e = &cardLock{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
