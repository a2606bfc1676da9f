package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/sdp"
)

// Chat sessions toward phones (OMA CPM / GSMA RCS 1-to-1 chat, RFC 4975,
// RFC 4028), with sessions.outbound: chat and listen.msrp set.
//
// A message for a phone whose OPTIONS answer advertised cpm.session
// (gateway.OutboundRCS.ChatSession) goes in the chat session the phone
// opened to us for that conversation (session.go: same phone, our number
// it called, Conversation-ID) while it lasts and its MSRP side is bound,
// since RCS clients expect the answer in the session they opened. When
// there is none, or the message could not be sent in it (a session whose
// MSRP side failed, or timed out, is ended by our BYE), it goes in the
// chat session the edge holds with that phone for that conversation: one
// per (our number, the phone's number, Conversation-ID). The first message
// opens it: an INVITE
// over TCP (TLS when the outbound proxy is TLS) through the outbound proxy
// with cpm.session in Accept-Contact, Contact and P-Preferred-Service,
// Conversation-ID and Contribution-ID (the first message's), Supported:
// timer and Session-Expires; an SDP offer m=message TCP/MSRP, sendrecv,
// a=setup:actpass, our a=path on listen.msrp, accept-types message/cpim and
// isComposing, wrapped text, IMDNs and FT-HTTP. On the 200 the MSRP session
// is set up, the ACK sent, and the session bound (we connect when the
// answer makes us active, else we wait for the phone's binding SEND).
//
// Each message is the CPIM a pager-mode MESSAGE would carry, sent as MSRP
// SEND (chunked by sip/msrp) with Failure-Report yes; the 200 to its last
// chunk is the network's acceptance, as a MESSAGE's 2xx is. Messages of a
// session go one at a time, in the order they were handed over, from a
// queue of sessions.queue_length. What the phone sends in the session
// (IMDNs, replies) goes through sessionHandler, as in the sessions phones
// open: IMDNs become status reports.
//
// When the session cannot be opened (a non-2xx answer, no final answer
// within sessions.setup_timeout, an SDP answer we cannot use, no MSRP
// binding), when the message cannot be sent in it (no 200 within
// sessions.send_timeout, an MSRP error, the session lost), when the queue
// is full or sessions.max_outbound sessions are open, SendRCS sends the
// message by pager mode instead (and large message mode where pager mode
// cannot carry it); the gateway falls back to SMS when that fails too. A
// message whose 200 was lost may so arrive twice, as after a pager-mode
// MESSAGE whose answer was lost.
// After a session with a phone failed to open, its messages go by pager
// mode without a new INVITE for sessions.idle_timeout.
//
// A session ends with our BYE after sessions.idle_timeout without a message
// either way, when its MSRP side fails, when a session refresh fails, and
// on shutdown; a BYE from the phone ends it at once. Either way it leaves
// the reuse table, and the next message opens a new one. Session timers
// (RFC 4028): when the phone's 200 makes us the refresher we send UPDATE
// at half the interval; when the phone refreshes, its UPDATE gets 200 and
// a session it stopped refreshing is ended by our BYE shortly before
// expiry.
//
// An INVITE unanswered when sessions.setup_timeout ends is CANCELled if a
// provisional answer came (RFC 3261 section 9.1), in the background; if
// none came, the transaction is abandoned, and a 200 that comes later gets
// no ACK, so that the phone ends the dialog itself.
//
// The IMDNs the gateway sends a phone about its messages (Notify) go in
// the phone's session for the conversation, or in ours when one is open
// (RCS clients expect the IMDNs of session messages in the session), else
// by pager mode as without sessions: no session is opened for them.
//
// With sessions.msrps our offers are TCP/TLS/MSRP on listen.msrps
// (outboundLocal): an answer without a=fingerprint, or an MSRP connection
// whose certificate does not match it, fails the setup as any other
// failure does, and the message goes by pager mode.
//
// A re-INVITE or an UPDATE with an offer from the phone (a refresh by a
// phone that is the session's refresher) is answered as in a session the
// phone opened (session.go, answerOffer): an offer repeating the session
// gets 200 with our offer restated as an answer (restate), another 488.
//
// With sessions.relay, every MSRP-over-TCP session goes through the
// edge's own relay (session.go, relayFor): our a=path starts with its
// Use-Path, and our offers say a=setup:active, so that the phone listens
// (or is behind a relay of its own): the relay has no way back to a phone
// that connected to it.
//
// Not done: Digest credentials in the relay's AUTH, msrps through the
// relay, a BYE or UPDATE from the phone over UDP (our Contact says TCP;
// over UDP they get 481), and sessions kept across a restart (open ones
// end with the process, by BYE when it shuts down).

// chatKey names the session of a conversation with a phone.
type chatKey struct {
	from, to     uri.Number // ours, the phone's
	conversation string
}

// chatSession is one chat session the edge opens toward a phone. run owns
// it; senders meet it through queue, result and done.
type chatSession struct {
	key          chatKey
	contribution string
	queue        chan *chatSend
	activity     chan struct{} // a message from the phone: the session is not idle
	refreshed    chan time.Duration
	done         chan struct{} // closed once the session ended and its queue was answered
	err          error         // why it ended; set before done is closed
	ended        bool          // guarded by chatTable.mu

	dlg     *sipgo.DialogClientSession // set by open, before the dialog is in the table
	sess    *msrp.Session
	maxSize int64 // the phone's a=max-size, 0 when none
	// inForce answers the phone's new offers in the dialog; nil until the
	// session is set up.
	inForce atomic.Pointer[offerAnswer]
}

// chatSend is one message waiting for a session.
type chatSend struct {
	ctx    context.Context
	body   []byte
	result chan error // buffered: run never waits for the sender
}

// chatTable holds the sessions the edge opened toward phones.
type chatTable struct {
	ctx    context.Context // ends at shutdown
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // one per session's run

	mu       sync.Mutex
	byKey    map[chatKey]*chatSession
	byDialog map[string]*chatSession // SIP dialog ID as the UAC sees it
	// failed holds the phones a session could not be opened with, and
	// until when their messages go by pager mode without trying again
	// (sessions.idle_timeout after the failure): a phone that refuses
	// chat, or does not answer, is not sent an INVITE per message.
	failed map[chatPair]time.Time
	// phones holds the sessions phones opened toward us (session.go) that
	// our messages may go in, by conversation: the latest one of a
	// conversation, until it ends.
	phones map[chatKey]*sessionDialog
	closed bool
}

// chatPair is one of our numbers and a phone's.
type chatPair struct{ from, to uri.Number }

func newChatTable() *chatTable {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &chatTable{ctx: ctx, cancel: cancel, byKey: map[chatKey]*chatSession{}, byDialog: map[string]*chatSession{},
		failed: map[chatPair]time.Time{}, phones: map[chatKey]*sessionDialog{}}
}

// close ends every session (each sends its BYE, bounded by
// timeouts.request) and waits for them. An INVITE still unanswered is
// abandoned at once.
func (t *chatTable) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cancel(sipgo.WaitAnswerForceCancelErr)
	t.wg.Wait()
}

// Errors a chat session ends with or refuses a message with. All lead to
// pager mode.
var (
	errChatClosed   = errors.New("edge shutting down")
	errChatLimit    = errors.New("chat session limit reached")
	errChatQueue    = errors.New("chat session queue full")
	errChatEnded    = errors.New("chat session ended")
	errChatIdle     = errors.New("chat session idle")
	errChatByPhone  = errors.New("chat session ended by the phone")
	errChatTooLarge = errors.New("over the phone's a=max-size")
	errChatFailed   = errors.New("a chat session with the phone failed to open recently")
	errNoChat       = errors.New("no chat session open")
)

// chatOn reports whether messages to phones that take chat sessions go in
// them.
func (e *Edge) chatOn() bool {
	return e.cfg.Sessions.Outbound == OutboundChat && e.sessionsOn()
}

// chatAcceptContact asks the network for the phone's chat client.
var chatAcceptContact = "*;" + tagICSI + `="` + encodeURN(icsiSession) + `"`

// chatAcceptTypes are the top-level media types of our chat offer: CPIM,
// and isComposing, which phones send bare in a session.
var chatAcceptTypes = []string{sdp.TypeCPIM, sdp.TypeIsComposing}

// sendChat sends body, a CPIM message, in the chat session of key and
// returns once the phone's MSRP side answered its last chunk 200, or with
// the reason it could not be sent. The session is the one the phone opened
// for the conversation when it is bound; when there is none, or the
// message could not be sent in it, the edge's own, opened if need be when
// open is set (else errNoChat when there is none).
func (e *Edge) sendChat(ctx context.Context, key chatKey, contribution string, body []byte, open bool) error {
	if d := e.chats.phoneSession(key); d != nil {
		err := e.sendInSession(ctx, d.sess, d.maxSize, body)
		if err == nil || ctx.Err() != nil {
			return err
		}
		e.log.Info("sip: message not sent in the phone's session, trying one of ours", "number", key.to, "call_id", d.callID, "err", err)
		if !chatKeeps(err) {
			go e.endSession(d, "message not sent: "+err.Error())
		}
	}
	cs, err := e.chatSession(key, contribution, open)
	if err != nil {
		return err
	}
	r := &chatSend{ctx: ctx, body: body, result: make(chan error, 1)}
	select {
	case cs.queue <- r:
	default:
		e.m.chatMessages.WithLabelValues("queue_full").Inc()
		return fmt.Errorf("%w (%d messages)", errChatQueue, cap(cs.queue))
	}
	select {
	case err := <-r.result:
		return err
	case <-cs.done:
		select {
		case err := <-r.result:
			return err
		default:
		}
		return cs.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addPhoneSession indexes d, a session the phone opened, when our messages
// may go in it.
func (t *chatTable) addPhoneSession(d *sessionDialog) {
	if d.replies == (chatKey{}) {
		return
	}
	t.mu.Lock()
	t.phones[d.replies] = d
	t.mu.Unlock()
}

// dropPhoneSession takes d, which ended, out of the index.
func (t *chatTable) dropPhoneSession(d *sessionDialog) {
	if d.replies == (chatKey{}) {
		return
	}
	t.mu.Lock()
	if t.phones[d.replies] == d {
		delete(t.phones, d.replies)
	}
	t.mu.Unlock()
}

// phoneSession is the session the phone opened for key, when it lasts and
// its MSRP side is bound; nil otherwise.
func (t *chatTable) phoneSession(key chatKey) *sessionDialog {
	t.mu.Lock()
	d := t.phones[key]
	t.mu.Unlock()
	if d == nil || !d.sess.Bound() || d.sess.Context().Err() != nil {
		return nil
	}
	return d
}

// chatSession returns the open session of key, or starts opening one when
// open is set.
func (e *Edge) chatSession(key chatKey, contribution string, open bool) (*chatSession, error) {
	t := e.chats
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errChatClosed
	}
	if cs := t.byKey[key]; cs != nil {
		return cs, nil
	}
	if !open {
		return nil, errNoChat
	}
	pair := chatPair{key.from, key.to}
	if until, ok := t.failed[pair]; ok {
		if time.Now().Before(until) {
			e.m.chatSetups.WithLabelValues("held_off").Inc()
			return nil, fmt.Errorf("%w (until %s)", errChatFailed, until.UTC().Format(time.RFC3339))
		}
		delete(t.failed, pair)
	}
	if len(t.byKey) >= e.cfg.Sessions.MaxOutbound {
		e.m.chatSetups.WithLabelValues("limit").Inc()
		return nil, fmt.Errorf("%w (%d)", errChatLimit, e.cfg.Sessions.MaxOutbound)
	}
	cs := &chatSession{
		key:          key,
		contribution: contribution,
		queue:        make(chan *chatSend, e.cfg.Sessions.QueueLength),
		activity:     make(chan struct{}, 1),
		refreshed:    make(chan time.Duration, 1),
		done:         make(chan struct{}),
	}
	t.byKey[key] = cs
	t.wg.Add(1)
	e.m.chatOpen.Inc()
	go e.runChat(cs)
	return cs, nil
}

// endChat takes cs out of the table, so that the next message opens a new
// session, and answers what waits in its queue.
func (e *Edge) endChat(cs *chatSession, why error) {
	t := e.chats
	t.mu.Lock()
	if cs.ended {
		t.mu.Unlock()
		return
	}
	cs.ended = true
	if t.byKey[cs.key] == cs {
		delete(t.byKey, cs.key)
	}
	if cs.dlg != nil && cs.dlg.ID != "" && t.byDialog[cs.dlg.ID] == cs {
		delete(t.byDialog, cs.dlg.ID)
	}
	t.mu.Unlock()
	cs.err = why
	for {
		select {
		case r := <-cs.queue:
			r.result <- why
		default:
			close(cs.done)
			e.m.chatOpen.Dec()
			return
		}
	}
}

// holdOff records that a session with a phone could not be opened. The
// record is bounded by sessions.max_outbound entries: expired ones go
// first, then any.
func (e *Edge) holdOff(p chatPair) {
	t := e.chats
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.failed) >= e.cfg.Sessions.MaxOutbound {
		for k, until := range t.failed {
			if now.After(until) {
				delete(t.failed, k)
			}
		}
		for k := range t.failed {
			if len(t.failed) < e.cfg.Sessions.MaxOutbound {
				break
			}
			delete(t.failed, k)
		}
	}
	t.failed[p] = now.Add(e.cfg.Sessions.IdleTimeout)
}

// runChat opens cs and sends its messages until it ends.
func (e *Edge) runChat(cs *chatSession) {
	defer e.chats.wg.Done()
	if err := e.openChat(cs); err != nil {
		e.log.Info("sip: chat session not opened", "number", cs.key.to, "err", err)
		if !errors.Is(err, errChatClosed) {
			e.holdOff(chatPair{cs.key.from, cs.key.to})
		}
		e.endChat(cs, err)
		return
	}
	callID := cs.dlg.InviteRequest.CallID().Value()
	why := e.chatLoop(cs)
	e.log.Info("sip: chat session ending", "number", cs.key.to, "call_id", callID, "reason", why.Error())
	// Out of the table first: a message handed over from now on opens a
	// new session instead of waiting for this one's BYE.
	e.endChat(cs, why)
	cs.sess.Close()
	if errors.Is(why, errChatByPhone) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeouts.Request)
	defer cancel()
	if err := cs.dlg.Bye(ctx); err != nil {
		e.log.Info("sip: BYE of a chat session", "call_id", callID, "err", err)
	}
}

// chatLoop sends the messages of an open session one at a time, and says
// why the session ends.
func (e *Edge) chatLoop(cs *chatSession) error {
	cfg := e.cfg.Sessions
	idle := time.NewTimer(cfg.IdleTimeout)
	defer idle.Stop()
	// The session timer: refresh when we are the refresher, else the
	// expiry of what the phone last granted.
	var timer *time.Timer
	var timerC <-chan time.Time
	refresher, interval := sessionTimer(cs.dlg.InviteResponse)
	if refresher == "" {
		// RFC 4028 section 9 has the phone name the refresher; one that
		// did not is refreshed by us, which is harmless either way.
		refresher = "uac"
	}
	arm := func(d time.Duration) {
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		timerC = timer.C
	}
	switch {
	case interval <= 0:
	case refresher == "uac":
		arm(interval / 2)
	default:
		arm(expiryMargin(interval))
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case r := <-cs.queue:
			err := e.chatSend(cs, r)
			r.result <- err
			if err != nil && !chatKeeps(err) {
				return fmt.Errorf("%w: %w", errChatEnded, err)
			}
			idle.Reset(cfg.IdleTimeout)
		case <-cs.activity:
			idle.Reset(cfg.IdleTimeout)
		case <-idle.C:
			return fmt.Errorf("%w for %s", errChatIdle, cfg.IdleTimeout)
		case <-cs.dlg.Context().Done():
			return errChatByPhone
		case <-cs.sess.Done():
			return fmt.Errorf("%w: msrp: %v", errChatEnded, cs.sess.Err())
		case <-e.chats.ctx.Done():
			return errChatClosed
		case d := <-cs.refreshed:
			if refresher != "uac" {
				arm(expiryMargin(d))
			}
		case <-timerC:
			if refresher != "uac" {
				return fmt.Errorf("%w: the phone did not refresh the session", errChatEnded)
			}
			next, err := e.refreshChat(cs, interval)
			if err != nil {
				return fmt.Errorf("%w: session refresh: %w", errChatEnded, err)
			}
			interval = next
			arm(interval / 2)
		}
	}
}

// chatKeeps reports whether the session stays after a message failed: the
// phone refused that message (413, 415 and the like) or it was too large
// for it, but the session is sound.
func chatKeeps(err error) bool {
	var refused *msrp.StatusError
	if errors.As(err, &refused) {
		return refused.Code >= 400 && refused.Code < 500 && refused.Code != 408 && refused.Code != 481
	}
	return errors.Is(err, errChatTooLarge) || errors.Is(err, context.Canceled)
}

// chatSend sends one queued message.
func (e *Edge) chatSend(cs *chatSession, r *chatSend) error {
	if err := r.ctx.Err(); err != nil {
		return err // the sender gave up: not sent
	}
	return e.sendInSession(r.ctx, cs.sess, cs.maxSize, r.body)
}

// sendInSession sends body, a CPIM message, in a bound chat session,
// ours or the phone's, whose far end takes at most maxSize bytes (0: no
// limit), and returns once the last chunk was answered 200. It gives up
// after sessions.send_timeout, or as soon as the session ends.
func (e *Edge) sendInSession(ctx context.Context, sess *msrp.Session, maxSize int64, body []byte) error {
	if maxSize > 0 && int64(len(body)) > maxSize {
		e.m.chatMessages.WithLabelValues("failed").Inc()
		return fmt.Errorf("%w: %d bytes, a=max-size %d", errChatTooLarge, len(body), maxSize)
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Sessions.SendTimeout)
	defer cancel()
	defer context.AfterFunc(sess.Context(), cancel)()
	if err := sess.Send(ctx, typeCPIM, body); err != nil {
		e.m.chatMessages.WithLabelValues("failed").Inc()
		if ended := sess.Err(); ended != nil {
			return fmt.Errorf("msrp: %w", ended)
		}
		return fmt.Errorf("msrp: %w", err)
	}
	e.m.chatMessages.WithLabelValues("sent").Inc()
	return nil
}

// openChat sends the INVITE of cs, and on its 200 sets up the MSRP
// session, ACKs and binds it.
func (e *Edge) openChat(cs *chatSession) (err error) {
	result := "failed"
	defer func() {
		if err == nil {
			result = "ok"
		}
		e.m.chatSetups.WithLabelValues(result).Inc()
	}()
	out, err := e.outboundLocal(e.chats.ctx)
	if err != nil {
		return err
	}
	if out.pool == nil {
		return errors.New("no MSRP listener")
	}
	offer, err := sdp.Offer(sdp.OfferOptions{
		Mode:               sdp.ModeChat,
		Path:               out.path,
		Setup:              out.setup,
		Fingerprints:       out.fps,
		AcceptTypes:        chatAcceptTypes,
		AcceptWrappedTypes: sessionAcceptWrappedTypes,
		MaxSize:            e.cfg.Sessions.MaxMessageSize,
	})
	if err != nil {
		return fmt.Errorf("sdp offer: %w", err)
	}
	req, contact := e.chatInvite(cs, offer)

	// The setup context ends at setup_timeout or shutdown. With no
	// provisional answer yet there is nothing to CANCEL (RFC 3261 section
	// 9.1), and sipgo is told to give up at once rather than wait for one.
	cfg := e.cfg.Sessions
	setup, cancel := context.WithCancelCause(e.chats.ctx)
	defer cancel(nil)
	var provisional atomic.Bool
	expire := time.AfterFunc(cfg.SetupTimeout, func() {
		if provisional.Load() {
			// The CANCEL and the wait for its 487 go on in the background;
			// the messages waiting go by pager mode now.
			cancel(context.DeadlineExceeded)
			e.holdOff(chatPair{cs.key.from, cs.key.to})
			e.endChat(cs, fmt.Errorf("INVITE: %w within %s", errNoAnswer, cfg.SetupTimeout))
		} else {
			cancel(sipgo.WaitAnswerForceCancelErr)
		}
	})
	defer expire.Stop()
	ua := sipgo.DialogUA{Client: e.cli, ContactHDR: contact}
	start := time.Now()
	dlg, err := ua.WriteInvite(setup, req)
	if err != nil {
		e.m.outbound.WithLabelValues("INVITE", "transport_error").Inc()
		return fmt.Errorf("INVITE to %s:%d: %w", e.proxy.host, e.proxy.port, err)
	}
	err = dlg.WaitAnswer(setup, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
		if r.IsProvisional() {
			provisional.Store(true)
		}
		return nil
	}})
	e.m.outSeconds.WithLabelValues("INVITE").Observe(time.Since(start).Seconds())
	if err != nil {
		var refused *sipgo.ErrDialogResponse
		switch {
		case errors.As(err, &refused):
			e.m.outbound.WithLabelValues("INVITE", codeLabel(uint16(refused.Res.StatusCode))).Inc()
			result = "refused"
			return fmt.Errorf("INVITE: %w", answerError(refused.Res))
		case dlg.InviteResponse != nil && dlg.InviteResponse.IsSuccess():
			// The 200 crossed our CANCEL: confirm and end the dialog.
			e.m.outbound.WithLabelValues("INVITE", "200").Inc()
			e.abandonChat(dlg)
		case setup.Err() != nil:
			e.m.outbound.WithLabelValues("INVITE", "timeout").Inc()
			result = "no_answer"
			if errors.Is(context.Cause(e.chats.ctx), sipgo.WaitAnswerForceCancelErr) {
				return fmt.Errorf("INVITE: %w", errChatClosed)
			}
			return fmt.Errorf("INVITE: %w within %s", errNoAnswer, cfg.SetupTimeout)
		default:
			e.m.outbound.WithLabelValues("INVITE", "transport_error").Inc()
		}
		return fmt.Errorf("INVITE: %w", err)
	}
	e.m.outbound.WithLabelValues("INVITE", codeLabel(uint16(dlg.InviteResponse.StatusCode))).Inc()
	expire.Stop() // what follows is bounded by the bind below
	e.chats.mu.Lock()
	ended := cs.ended
	if !ended {
		cs.dlg = dlg
		e.chats.byDialog[dlg.ID] = cs
	}
	e.chats.mu.Unlock()
	if ended { // the 200 came as setup_timeout ended
		e.abandonChat(dlg)
		return fmt.Errorf("INVITE: %w within %s", errNoAnswer, cfg.SetupTimeout)
	}

	// The dialog is in the table before the ACK, so that a BYE right after
	// it is matched; the session exists before the ACK, so that a phone
	// that connects as soon as it sent its 200 finds it.
	sess, maxSize, sessErr := e.chatMSRP(out, offer, dlg.InviteResponse, cs)
	if err := dlg.Ack(setup); err != nil {
		if sess != nil {
			sess.Close()
		}
		return fmt.Errorf("ACK: %w", err)
	}
	if sessErr != nil {
		e.byeChat(dlg)
		return sessErr
	}
	cs.sess, cs.maxSize = sess, maxSize
	bind, cancelBind := context.WithTimeout(e.chats.ctx, max(cfg.SetupTimeout-time.Since(start), 100*time.Millisecond))
	err = sess.Connect(bind)
	cancelBind()
	if err != nil {
		sess.Close()
		e.byeChat(dlg)
		return fmt.Errorf("msrp not bound: %w", err)
	}
	return nil
}

// chatInvite builds the INVITE that opens a chat session, and its Contact.
func (e *Edge) chatInvite(cs *chatSession, offer *sdp.Session) (*sip.Request, sip.ContactHeader) {
	transport := e.proxy.transport
	if transport == "udp" {
		transport = "tcp"
	}
	req := e.newRequest(sip.INVITE, cs.key.from, cs.key.to, transport)
	req.AppendHeader(sip.NewHeader("Accept-Contact", chatAcceptContact))
	req.AppendHeader(sip.NewHeader("P-Preferred-Service", icsiSession))
	if cs.contribution != "" {
		req.AppendHeader(sip.NewHeader("Contribution-ID", cs.contribution))
	}
	if cs.key.conversation != "" {
		req.AppendHeader(sip.NewHeader("Conversation-ID", cs.key.conversation))
	}
	contact := sip.ContactHeader{
		Address: sip.Uri{Scheme: "sip", User: e.numberURI(cs.key.from).User, Host: e.advHost, Port: e.advertisedPort(transport),
			UriParams: sip.HeaderParams{{K: "transport", V: transport}}},
		Params: sip.HeaderParams{{K: tagICSI, V: `"` + encodeURN(icsiSession) + `"`}},
	}
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Allow", allowedSessions))
	if se := e.cfg.Sessions.Expires; se > 0 {
		req.AppendHeader(sip.NewHeader("Supported", "timer"))
		req.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(int(se/time.Second))+";refresher=uac"))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", sdp.ContentType))
	req.SetBody(offer.Bytes())
	return req, contact
}

// chatMSRP negotiates the 200's answer against our offer and sets up the
// MSRP session it describes; what the phone sends in it goes through
// sessionHandler, as in a session the phone opened.
func (e *Edge) chatMSRP(out outboundMSRP, offer *sdp.Session, res *sip.Response, cs *chatSession) (*msrp.Session, int64, error) {
	if ct := res.ContentType(); ct == nil || mediaType(ct.Value()) != sdp.ContentType || len(res.Body()) == 0 {
		return nil, 0, errors.New("200 without an SDP answer")
	}
	answer, err := sdp.Parse(res.Body())
	if err != nil {
		return nil, 0, fmt.Errorf("SDP answer: %w", err)
	}
	neg, err := sdp.Negotiate(offer, answer, sdp.Offerer)
	if err != nil {
		return nil, 0, fmt.Errorf("SDP answer: %w", err)
	}
	if neg.Hold {
		return nil, 0, errors.New("SDP answer: holdconn")
	}
	if neg.Remote.Direction == sdp.SendOnly || neg.Remote.Direction == sdp.Inactive {
		return nil, 0, fmt.Errorf("SDP answer: the phone takes nothing (%s)", neg.Remote.Direction)
	}
	restated, err := restate(offer, neg.Active)
	if err != nil {
		return nil, 0, err
	}
	cs.inForce.Store(&offerAnswer{offered: offerOf(len(answer.Media), neg.Remote), answer: restated})
	scfg := neg.SessionConfig()
	scfg.MaxMessage = e.cfg.Sessions.MaxMessageSize
	handle := e.sessionHandler(inbound{from: cs.key.to, to: cs.key.from, conversationID: cs.key.conversation})
	scfg.Handler = func(ctx context.Context, m *msrp.Message) error {
		select {
		case cs.activity <- struct{}{}:
		default:
		}
		return handle(ctx, m)
	}
	scfg.Relay = out.relay
	sess, err := out.pool.NewSession(scfg)
	if err != nil {
		return nil, 0, fmt.Errorf("msrp session: %w", err)
	}
	return sess, neg.Remote.MaxSize, nil
}

// byeChat ends a dialog whose session could not be set up.
func (e *Edge) byeChat(dlg *sipgo.DialogClientSession) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeouts.Request)
	defer cancel()
	if err := dlg.Bye(ctx); err != nil {
		e.log.Info("sip: BYE of a chat session not set up", "call_id", dlg.InviteRequest.CallID().Value(), "err", err)
	}
}

// abandonChat confirms and ends a dialog whose 200 came after we gave up.
func (e *Edge) abandonChat(dlg *sipgo.DialogClientSession) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeouts.Request)
	defer cancel()
	if err := dlg.Ack(ctx); err != nil {
		return
	}
	e.byeChat(dlg)
}

// refreshChat sends the UPDATE that refreshes the session (RFC 4028
// section 7.4, we are the refresher) and returns the interval the answer
// granted.
func (e *Edge) refreshChat(cs *chatSession, interval time.Duration) (time.Duration, error) {
	res := cs.dlg.InviteResponse
	target := cs.dlg.InviteRequest.Recipient
	if c := res.Contact(); c != nil {
		target = c.Address
	}
	req := sip.NewRequest(sip.UPDATE, target)
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	req.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(int(interval/time.Second))+";refresher=uac"))
	ctx, cancel := context.WithTimeout(e.chats.ctx, e.cfg.Timeouts.Request)
	defer cancel()
	start := time.Now()
	ans, err := cs.dlg.Do(ctx, req)
	e.m.outSeconds.WithLabelValues("UPDATE").Observe(time.Since(start).Seconds())
	if err != nil {
		e.m.outbound.WithLabelValues("UPDATE", "timeout").Inc()
		return 0, err
	}
	e.m.outbound.WithLabelValues("UPDATE", codeLabel(uint16(ans.StatusCode))).Inc()
	if !ans.IsSuccess() {
		return 0, answerError(ans)
	}
	if _, d := sessionExpires(ans.GetHeader("Session-Expires")); d > 0 {
		return d, nil
	}
	return interval, nil
}

// sessionTimer reads the session timer a 2xx set up: who refreshes
// ("uac": us, "uas": the phone) and the interval; none without
// Session-Expires.
func sessionTimer(res *sip.Response) (refresher string, interval time.Duration) {
	if res == nil {
		return "", 0
	}
	return sessionExpires(res.GetHeader("Session-Expires"))
}

// sessionExpires parses "1800;refresher=uac". The interval is taken as the
// phone granted it (RFC 4028 has the granting side enforce Min-SE), with a
// floor of two seconds so that a broken peer cannot make us refresh in a
// loop.
func sessionExpires(h sip.Header) (refresher string, interval time.Duration) {
	if h == nil {
		return "", 0
	}
	v, params, _ := strings.Cut(h.Value(), ";")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return "", 0
	}
	for _, p := range strings.Split(params, ";") {
		k, val, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(val))
		}
	}
	return refresher, max(time.Duration(n)*time.Second, 2*time.Second)
}

// expiryMargin is when the side that does not refresh ends a session whose
// refresh did not come: before expiry by a third of the interval or 32
// seconds, whichever is less (RFC 4028 section 10).
func expiryMargin(interval time.Duration) time.Duration {
	return interval - min(32*time.Second, interval/3)
}

// restate is our offer as the answer to a phone's offer that repeats the
// session: the connection roles as negotiated (active, m= port 9, RFC
// 4145; or passive on our own port) and the o= version one up, since it
// differs from the offer (RFC 3264 section 8).
func restate(offer *sdp.Session, active bool) ([]byte, error) {
	s, err := sdp.Parse(offer.Bytes())
	if err != nil {
		return nil, fmt.Errorf("sdp: our offer: %w", err)
	}
	for i, md := range s.Media {
		if !md.IsMSRP() {
			continue
		}
		m, err := s.MSRP(i)
		if err != nil {
			return nil, fmt.Errorf("sdp: our offer: %w", err)
		}
		m.Setup, m.Port = sdp.SetupPassive, m.Local().Port
		if active {
			m.Setup, m.Port = sdp.SetupActive, 9
		}
		s.Media[i] = m.Media()
		break
	}
	v, err := strconv.ParseUint(s.Origin.SessionVersion, 10, 63)
	if err != nil {
		return nil, fmt.Errorf("sdp: our offer's o= version %q: %w", s.Origin.SessionVersion, err)
	}
	s.Origin.SessionVersion = strconv.FormatUint(v+1, 10)
	return s.Bytes(), nil
}

// chatDialogRequest handles a BYE, UPDATE or re-INVITE from a phone in the
// dialog of a chat session the edge opened. It reports false for a request
// of no such dialog.
func (e *Edge) chatDialogRequest(req *sip.Request, tx sip.ServerTransaction) bool {
	if e.chats == nil {
		return false
	}
	id, err := sip.DialogIDFromRequestUAC(req)
	if err != nil {
		return false
	}
	e.chats.mu.Lock()
	cs := e.chats.byDialog[id]
	e.chats.mu.Unlock()
	if cs == nil || (req.Method != sip.BYE && req.Method != sip.UPDATE && req.Method != sip.INVITE) {
		return false
	}
	e.m.requests.WithLabelValues(methodLabel(string(req.Method)), strings.ToLower(req.Transport())).Inc()
	if _, refuse := e.trust(req, e.streamPeer(req, tx)); refuse != nil {
		e.respond(req, tx, *refuse, "")
		return true
	}
	if req.Method == sip.INVITE || (req.Method == sip.UPDATE && len(req.Body()) > 0) {
		// An offer, as the session's refresher or to confirm it.
		if in := cs.inForce.Load(); in != nil {
			e.answerOffer(req, tx, *in)
		} else {
			e.respond(req, tx, requestPending, "")
		}
		return true
	}
	switch req.Method {
	case sip.BYE:
		if err := cs.dlg.ReadBye(req, tx); err != nil {
			e.log.Info("sip: answer to a BYE of a chat session", "call_id", req.CallID().Value(), "err", err)
		}
		e.m.answers.WithLabelValues(methodLabel(string(req.Method)), codeLabel(200)).Inc()
	case sip.UPDATE:
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if refresher, d := sessionExpires(req.GetHeader("Session-Expires")); d > 0 {
			// RFC 4028 section 9: the 2xx copies Session-Expires, names the
			// refresher, and requires timer when it is the UPDATE's sender.
			if refresher == "" {
				refresher = "uas"
				if supportsTimer(req) {
					refresher = "uac"
				}
			}
			res.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(int(d/time.Second))+";refresher="+refresher))
			if refresher == "uac" {
				res.AppendHeader(sip.NewHeader("Require", "timer"))
			}
			select {
			case cs.refreshed <- d:
			default:
			}
		}
		res.AppendHeader(sip.NewHeader("Server", "mimigw"))
		if err := tx.Respond(res); err != nil {
			e.log.Warn("sip: write answer", "peer", req.Source(), "status", 200, "err", err)
		}
		e.m.answers.WithLabelValues(methodLabel(string(req.Method)), codeLabel(200)).Inc()
	}
	return true
}

// supportsTimer reports whether a request's Supported names "timer".
func supportsTimer(req *sip.Request) bool {
	for _, h := range req.GetHeaders("Supported") {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), "timer") {
				return true
			}
		}
	}
	return false
}
