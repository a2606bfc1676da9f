package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mimigw/mimigw/mimi/uri"
)

// The segments of a concatenated SMS wait on the bus, one record per
// message under seg.<from>.<to>.<ref>.<total>, until the last one is in or
// the reassembly timeout passes (a timer fires on whichever instance is
// up). Each segment is durable before the edge answers the SMSC, and the
// whole message is published under an ID fixed by the record, so two
// instances completing it at once store it once. Whoever fixes the
// message holds it for segFlushLease: a copy of a segment arriving
// meanwhile (on any instance) is answered without publishing it again,
// and only a flusher gone past its lease is taken over, by the next
// segment or the reassembly timer.

type segPart struct {
	Text     string `json:"text"`
	HeadLow  uint16 `json:"head_low,omitempty"`
	TailHigh uint16 `json:"tail_high,omitempty"`
}

type segGroup struct {
	From  uri.Number        `json:"from"`
	To    uri.Number        `json:"to"`
	Total uint8             `json:"total"`
	First time.Time         `json:"first"`
	Parts map[uint8]segPart `json:"parts"`
	// Flushing fixes what the message is (Parts, Incomplete) before it is
	// published, so that whoever finds the record in this state (a timer
	// fired again, a segment sent again after a crash) publishes the same
	// message, which the bus then stores once.
	Flushing   bool `json:"flushing,omitempty"`
	Incomplete bool `json:"incomplete,omitempty"`
	// FlushUntil is when the flusher's hold ends (zero: held by nobody).
	FlushUntil time.Time `json:"flush_until,omitzero"`
	// Done marks a message on the bus; copies of its segments that come
	// later (an SMSC delivering again) are recognised until the record
	// expires with the bucket's TTL.
	Done bool `json:"done,omitempty"`
}

func segID(s Segment) string {
	width := "n"
	if s.Wide {
		width = "w"
	}
	return s.From.Digits() + "." + s.To.Digits() + "." + width + strconv.Itoa(int(s.Ref)) + "." + strconv.Itoa(int(s.Total))
}

// ReceiveSegment stores a segment and, when it completes its message,
// publishes the message.
func (g *Gateway) ReceiveSegment(ctx context.Context, s Segment) error {
	switch {
	case s.From == "" || s.To == "":
		return fmt.Errorf("gateway: segment without sender or recipient: %w", ErrRejected)
	case s.Total == 0 || s.Seq == 0 || s.Seq > s.Total:
		return fmt.Errorf("gateway: segment %d of %d: %w", s.Seq, s.Total, ErrRejected)
	case !utf8.ValidString(s.Text):
		return fmt.Errorf("gateway: segment text is not UTF-8: %w", ErrRejected)
	}
	id := segID(s)
	key := "seg." + id
	part := segPart{Text: s.Text, HeadLow: s.HeadLow, TailHigh: s.TailHigh}
	fresh := func() segGroup {
		return segGroup{From: s.From, To: s.To, Total: s.Total, First: g.now(), Parts: map[uint8]segPart{s.Seq: part}}
	}
	for {
		var grp segGroup
		rev, err := g.rec.get(ctx, key, &grp)
		if errors.Is(err, errNoRecord) {
			grp = fresh()
			exists, err := g.rec.create(ctx, key, grp)
			if err != nil {
				return err
			}
			if exists {
				continue
			}
			rev = 0
		} else if err != nil {
			return err
		} else {
			prev, have := grp.Parts[s.Seq]
			same := have && prev == part
			switch {
			case grp.Done && same:
				g.m.segments.WithLabelValues("duplicate").Inc()
				return nil
			case grp.Flushing && g.now().Before(grp.FlushUntil):
				// Being published now: a copy needs nothing more, and
				// the reassembly timer finishes it should the flusher
				// die. A new message under the reference waits for it.
				if !same {
					return fmt.Errorf("gateway: segment %d of %d: the previous message under its reference is being published: %w", s.Seq, s.Total, ErrUnavailable)
				}
				g.m.segments.WithLabelValues("duplicate").Inc()
				if err := g.bus.Schedule(ctx, segTimerKey(id, grp.First), grp.FlushUntil, nil); err != nil {
					return fmt.Errorf("%w: %w", ErrUnavailable, err)
				}
				return nil
			case grp.Flushing:
				// Its flusher is gone: finish what it started; a new
				// segment then begins a new message.
				if err := g.finishSegments(ctx, key, grp); err != nil || same {
					return err
				}
				continue
			case grp.Done:
				// The sender reused the reference for a new message.
				grp = fresh()
			case have && !same:
				// Reused while the old message was incomplete: that one
				// goes on as it is first.
				if err := g.flushSegments(ctx, key, rev, grp, true); err != nil && !errors.Is(err, errConflict) {
					return err
				}
				continue
			case same:
				// A copy of a segment held here: nothing to write.
			default:
				grp.Parts[s.Seq] = part
			}
			if !same {
				conflict, err := g.rec.replace(ctx, key, rev, grp)
				if err != nil {
					return err
				}
				if conflict {
					continue
				}
				rev = 0
			}
		}
		if len(grp.Parts) < int(grp.Total) {
			g.m.segments.WithLabelValues("held").Inc()
			// Every segment (re)arms the timer: pending timers are unique
			// by key, and one that failed to be set is set by the next.
			// The key names the message by when its first segment came:
			// a timer still firing for an earlier message under the same
			// reference must not swallow this one's.
			if err := g.bus.Schedule(ctx, segTimerKey(id, grp.First), grp.First.Add(g.cfg.ReassemblyTimeout), nil); err != nil {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			return nil
		}
		err = g.flushSegments(ctx, key, rev, grp, false)
		if errors.Is(err, errConflict) {
			continue
		}
		return err
	}
}

var errConflict = errors.New("changed meanwhile")

// segFlushLease is how long a flusher holds a message it publishes: far
// longer than a publish takes, and soon enough for a message whose
// flusher died to go on.
const segFlushLease = time.Minute

// errFlushing: the message is being published by its flusher, whose hold
// has not ended; the reassembly timer tries again later.
var errFlushing = errors.New("gateway: concatenated message being published by another worker")

// flushSegments fixes the message a record holds (rev 0: read it again)
// and publishes it.
func (g *Gateway) flushSegments(ctx context.Context, key string, rev uint64, grp segGroup, incomplete bool) error {
	if rev == 0 {
		var cur segGroup
		r, err := g.rec.get(ctx, key, &cur)
		if err != nil {
			return err
		}
		if !cur.First.Equal(grp.First) || cur.Flushing || cur.Done {
			return errConflict
		}
		rev = r
	}
	grp.Flushing, grp.Incomplete, grp.FlushUntil = true, incomplete, g.now().Add(segFlushLease)
	conflict, err := g.rec.replace(ctx, key, rev, grp)
	if err != nil {
		return err
	}
	if conflict {
		return errConflict
	}
	return g.finishSegments(ctx, key, grp)
}

// finishSegments publishes a message whose content is fixed and marks its
// record done.
func (g *Gateway) finishSegments(ctx context.Context, key string, grp segGroup) error {
	in := Inbound{
		Channel:    ChannelSMS,
		From:       grp.From,
		To:         grp.To,
		Ref:        key + "@" + strconv.FormatInt(grp.First.UnixNano(), 10),
		Parts:      []Part{{Text: joinSegments(grp)}},
		Incomplete: grp.Incomplete,
	}
	if err := g.Receive(ctx, in); err != nil {
		return err
	}
	outcome := "complete"
	if grp.Incomplete {
		outcome = "incomplete"
	}
	g.m.segments.WithLabelValues(outcome).Inc()
	_, err := update(ctx, g.rec, key, func(v *segGroup) (bool, error) {
		if !v.First.Equal(grp.First) || v.Done {
			return false, nil
		}
		v.Flushing, v.Done, v.FlushUntil = false, true, time.Time{}
		return true, nil
	})
	if errors.Is(err, errNoRecord) {
		return nil
	}
	return err
}

// joinSegments joins the text of the segments in order, mending surrogate
// pairs split between them; a half whose partner is missing becomes
// U+FFFD, and so nothing is silently dropped.
func joinSegments(grp segGroup) string {
	var b strings.Builder
	var high uint16
	for seq := uint8(1); seq <= grp.Total && seq != 0; seq++ {
		p, ok := grp.Parts[seq]
		switch {
		case !ok:
			if high != 0 {
				b.WriteRune(utf8.RuneError)
			}
			high = 0
			continue
		case p.HeadLow != 0 && high != 0:
			b.WriteRune(utf16.DecodeRune(rune(high), rune(p.HeadLow)))
		case p.HeadLow != 0 || high != 0:
			b.WriteRune(utf8.RuneError)
		}
		b.WriteString(p.Text)
		high = p.TailHigh
	}
	if high != 0 {
		b.WriteRune(utf8.RuneError)
	}
	return b.String()
}

// segTimerKey names the reassembly timer of the message whose first
// segment came at first.
func segTimerKey(id string, first time.Time) string {
	return "segments." + id + "." + strconv.FormatInt(first.UnixNano(), 10)
}

// segmentsDue delivers what arrived of a message whose reassembly timed
// out; key is what follows "segments." in its timer's key.
func (g *Gateway) segmentsDue(ctx context.Context, key string) error {
	dot := strings.LastIndexByte(key, '.')
	first, err := strconv.ParseInt(key[dot+1:], 10, 64)
	if dot < 0 || err != nil {
		g.log.Warn("reassembly timer with a malformed key dropped", "key", key)
		return nil
	}
	key = "seg." + key[:dot]
	var grp segGroup
	rev, err := g.rec.get(ctx, key, &grp)
	switch {
	case errors.Is(err, errNoRecord):
		return nil
	case err != nil:
		return err
	case grp.First.UnixNano() != first:
		return nil // a later message under the same reference, with its own timer
	case grp.Done:
		return nil
	case grp.Flushing && g.now().Before(grp.FlushUntil):
		return errFlushing
	case grp.Flushing:
		return g.finishSegments(ctx, key, grp)
	}
	g.log.Info("concatenated SMS incomplete, delivering what arrived", "number", grp.From, "parts", len(grp.Parts), "total", grp.Total)
	return g.flushSegments(ctx, key, rev, grp, true)
}
