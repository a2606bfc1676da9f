package rcssim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/cpim"
)

// Outgoing is a message one of the simulator's numbers sends.
type Outgoing struct {
	From string // one of the simulator's numbers
	To   string
	Text string
	// Mode is ModePager (default), ModeLarge or ModeChat.
	Mode string
}

// ErrNotOurs is returned for a message from a number the simulator does
// not play.
var ErrNotOurs = errors.New("rcssim: not a number the simulator plays")

// Send sends a text as one of the simulator's phones would, asking for
// delivery and display notifications: by pager-mode MESSAGE, by large
// message mode (an INVITE of its own, one SEND, BYE), or in a chat
// session (one it opened earlier with the same peer and that is still up,
// else a new one, closed after a minute without messages). It returns the
// CPIM imdn.Message-ID once the gateway took the message: the MESSAGE's
// 2xx, or the MSRP 200 of its last chunk.
func (s *Sim) Send(ctx context.Context, o Outgoing) (string, error) {
	from, err := uri.ParseNumber(o.From, "")
	if err != nil {
		return "", fmt.Errorf("rcssim: from: %w", err)
	}
	if !s.nums.has(from) {
		return "", fmt.Errorf("%w: %s", ErrNotOurs, from)
	}
	to, err := uri.ParseNumber(o.To, "")
	if err != nil {
		return "", fmt.Errorf("rcssim: to: %w", err)
	}
	id := newID()
	body := cpim.New(s.uriOf(from), s.uriOf(to), id, time.Now(),
		cpim.NotifyPositiveDelivery|cpim.NotifyNegativeDelivery|cpim.NotifyDisplay, textPlain, []byte(o.Text)).Bytes()
	mode := o.Mode
	if mode == "" {
		mode = ModePager
	}
	switch mode {
	case ModePager:
		err = s.sendMessage(ctx, from, to, "", body)
	case ModeLarge:
		err = s.sendLarge(ctx, from, to, body)
	case ModeChat:
		err = s.sendChat(ctx, from, to, body)
	default:
		return "", fmt.Errorf("rcssim: mode %q: want pager, large or chat", o.Mode)
	}
	if err != nil {
		return "", fmt.Errorf("rcssim: %s message from %s to %s: %w", mode, from, to, err)
	}
	s.log.Info("message sent", "mode", mode, "from", from, "to", to, "msg_id", id, "bytes", len(o.Text))
	return id, nil
}

func (s *Sim) sendLarge(ctx context.Context, from, to uri.Number, body []byte) error {
	c, err := s.open(ctx, ModeLarge, from, to)
	if err != nil {
		return err
	}
	defer s.forget(c)
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	err = c.session().Send(sctx, cpim.ContentType, body)
	cancel()
	s.endCall(c, "large message sent")
	return err
}

// sendChat sends in the open chat session from from to to, or opens one.
func (s *Sim) sendChat(ctx context.Context, from, to uri.Number, body []byte) error {
	key := from.String() + " " + to.String()
	s.mu.Lock()
	c := s.chats[key]
	s.mu.Unlock()
	if c != nil {
		select {
		case <-c.ctx.Done():
			c = nil
		case <-c.session().Done():
			c = nil
		default:
		}
	}
	if c == nil {
		var err error
		if c, err = s.open(ctx, ModeChat, from, to); err != nil {
			return err
		}
		c.key, c.touch = key, make(chan struct{}, 1)
		s.mu.Lock()
		s.chats[key] = c
		s.mu.Unlock()
		if !s.spawn(func() { s.hold(c) }) {
			s.endCall(c, "simulator stopping")
			s.forget(c)
			return errors.New("simulator stopping")
		}
	}
	select {
	case c.touch <- struct{}{}:
	default:
	}
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	return c.session().Send(sctx, cpim.ContentType, body)
}

// hold keeps an outgoing chat session open until it has been idle for
// chatIdle, either side ends it, or the simulator stops.
func (s *Sim) hold(c *call) {
	defer s.forget(c)
	defer c.client.Close()
	idle := time.NewTimer(chatIdle)
	defer idle.Stop()
	sess := c.session()
	for {
		select {
		case <-c.touch:
			if !idle.Stop() {
				select {
				case <-idle.C:
				default:
				}
			}
			idle.Reset(chatIdle)
		case <-c.ctx.Done():
			sess.Close()
			s.log.Info("session ended by the peer", "mode", c.mode, "call_id", c.callID)
			return
		case <-sess.Done():
			s.endCall(c, "msrp session ended")
			return
		case <-s.ctx.Done():
			s.endCall(c, "simulator stopping")
			return
		case <-idle.C:
			s.endCall(c, "idle")
			return
		}
	}
}
