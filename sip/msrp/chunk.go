package msrp

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Chunks splits an outgoing message into SEND requests carrying at most
// max bytes of body each (DefaultChunkSize when max <= 0): Byte-Range
// start-end/total on every one, FlagMore on all but the last, FlagEnd on
// the last. An empty body gives one SEND with Byte-Range 1-0/0. The
// bodies share body's memory (with no spare capacity into the next
// chunk's bytes). The caller fills the paths and the reports it wants;
// the writer picks each chunk's transaction ID.
func Chunks(messageID, contentType string, body []byte, max int) []*Frame {
	size := max
	if size <= 0 {
		size = DefaultChunkSize
	}
	total := len(body)
	n := (total + size - 1) / size
	if n == 0 {
		n = 1
	}
	frames := make([]Frame, n)
	out := make([]*Frame, n)
	for i := range frames {
		start := i * size
		end := min(start+size, total)
		f := &frames[i]
		f.Method = MethodSEND
		f.MessageID = messageID
		f.ContentType = contentType
		if end > start {
			f.Body = body[start:end:end]
		}
		f.ByteRange = ByteRange{Start: int64(start) + 1, End: int64(end), Total: int64(total)}
		f.Flag = FlagMore
		out[i] = f
	}
	frames[n-1].Flag = FlagEnd
	return out
}

// Message is a whole incoming message.
type Message struct {
	ID          string
	ContentType string
	// Body is the content; for a message that came in one chunk it is
	// that chunk's body.
	Body []byte
	// Headers are the first chunk's headers that have no field of their
	// own in Frame (MIME headers such as Content-Disposition, extensions).
	Headers []Header
	// Last is the chunk that completed the message: its Failure-Report
	// and Success-Report say how to answer, its From-Path where a REPORT
	// goes.
	Last *Frame
	// Held are chunks flagged as the message's last that arrived while
	// others were still missing. They are answered with Last, once the
	// message is safe: until then the sender has no 200 for its last chunk.
	Held []*Frame
}

// Reasons the reassembler refuses a chunk or drops a message, wrapped in
// a *ChunkError.
var (
	ErrAborted         = errors.New("message aborted by its sender")
	ErrTotalMismatch   = errors.New("total differs from an earlier chunk's")
	ErrOverlap         = errors.New("chunk differs from bytes already received")
	ErrBeyondTotal     = errors.New("chunk goes past the total")
	ErrRangeMismatch   = errors.New("body longer than its Byte-Range")
	ErrMessageTooLarge = errors.New("message over the size limit")
	ErrTooManyInFlight = errors.New("too many messages being reassembled")
	ErrNoMessageID     = errors.New("chunk without Message-ID")
	ErrIncomplete      = errors.New("message incomplete when its time ran out")
)

// ChunkError is a chunk the reassembler refused, or a message it dropped.
// Code is the transaction response the chunk gets: 200 for an aborted
// message (the chunk itself was fine), 413 when a limit was hit (RFC 4975
// section 10.5: the sender must stop sending that message), 400
// otherwise. Every ChunkError but ErrAborted drops the whole message.
type ChunkError struct {
	MessageID string
	Code      int
	Err       error
	// Held are the dropped message's chunks whose answers were held (see
	// Message.Held); they get Code too.
	Held []*Frame
}

func (e *ChunkError) Error() string {
	return fmt.Sprintf("msrp: message %s: %v", e.MessageID, e.Err)
}

func (e *ChunkError) Unwrap() error { return e.Err }

// Reassembler collects the chunks of incoming messages by Message-ID and
// Byte-Range, in any order, and returns each message once every byte has
// arrived and its last chunk (FlagEnd) too. It trusts no number a peer
// sends beyond its Limits. It is not safe for concurrent use.
type Reassembler struct {
	lim     Limits
	now     func() time.Time
	msgs    map[string]*partial // made with the first message in several chunks
	dropped []*ChunkError       // expired during Add, for the next Expire
}

type partial struct {
	id          string
	total       int64 // Unknown until a chunk says it, or the last chunk ends
	segs        []segment
	have        int64
	ended       bool
	contentType string
	headers     []Header
	held        []*Frame // FlagEnd chunks not answered yet
	touched     time.Time
}

// segment is received bytes from start (1-based); segments are kept
// sorted, apart and not touching.
type segment struct {
	start int64
	data  []byte
}

func (s segment) end() int64 { return s.start + int64(len(s.data)) - 1 }

// NewReassembler returns a reassembler within the limits (zero fields
// take their defaults).
func NewReassembler(l Limits) *Reassembler {
	return &Reassembler{lim: l.filled(), now: time.Now}
}

// InFlight is how many messages are partly received.
func (r *Reassembler) InFlight() int { return len(r.msgs) }

// Waiting reports whether Expire has anything to do: messages partly
// received, or dropped ones not yet returned.
func (r *Reassembler) Waiting() bool { return len(r.msgs) > 0 || len(r.dropped) > 0 }

// Add takes one SEND chunk. It returns the message when this chunk
// completed it, nil while more is awaited, or a *ChunkError. A message
// that arrives in one chunk is returned without copying its body.
//
// The caller answers a chunk that did not complete its message at once,
// but for one flagged FlagEnd: that one is held, and handed back in
// Message.Held, or in ChunkError.Held if the message is dropped, so that
// the sender never has every chunk acknowledged for a message that was not
// delivered (a sender whose Byte-Range total counts bytes it never sends,
// as RFC 4975's own examples count the line end, gets its answer when the
// message times out).
func (r *Reassembler) Add(f *Frame) (*Message, error) {
	now := r.now()
	r.dropped = append(r.dropped, r.expire(now)...)
	fail := func(code int, err error) (*Message, error) {
		var held []*Frame
		if p := r.msgs[f.MessageID]; p != nil {
			held = p.held
			delete(r.msgs, f.MessageID)
		}
		return nil, &ChunkError{MessageID: f.MessageID, Code: code, Err: err, Held: held}
	}
	start, end := f.Range()
	br := f.ByteRange
	total := br.Total
	if br.IsZero() {
		total = Unknown
	}
	switch {
	case f.Flag == FlagAbort:
		return fail(200, ErrAborted)
	case !br.IsZero() && br.End != Unknown && end > br.End:
		return fail(400, fmt.Errorf("%w: %d bytes for %s", ErrRangeMismatch, len(f.Body), br))
	case total != Unknown && end > total:
		return fail(400, fmt.Errorf("%w: bytes %d-%d of %d", ErrBeyondTotal, start, end, total))
	case total > r.lim.MaxMessage || end > r.lim.MaxMessage:
		return fail(413, fmt.Errorf("%w: %d bytes", ErrMessageTooLarge, max(total, end)))
	}
	p := r.msgs[f.MessageID]
	if p == nil {
		// The common case: a whole message in one chunk.
		if start == 1 && f.Flag == FlagEnd && (total == Unknown || total == end) {
			return &Message{ID: f.MessageID, ContentType: f.ContentType, Body: f.Body, Headers: f.Headers, Last: f}, nil
		}
		if f.MessageID == "" {
			return fail(400, ErrNoMessageID)
		}
		if len(r.msgs) >= r.lim.MaxInFlight {
			return nil, &ChunkError{MessageID: f.MessageID, Code: 413,
				Err: fmt.Errorf("%w: %d", ErrTooManyInFlight, len(r.msgs))}
		}
		p = &partial{id: f.MessageID, total: Unknown}
		if r.msgs == nil {
			r.msgs = make(map[string]*partial)
		}
		r.msgs[f.MessageID] = p
	}
	p.touched = now
	if total != Unknown {
		if p.total != Unknown && p.total != total {
			return fail(400, fmt.Errorf("%w: %d, earlier %d", ErrTotalMismatch, total, p.total))
		}
		p.total = total
	}
	if f.Flag == FlagEnd {
		p.ended = true
		if p.total == Unknown {
			p.total = end
		}
	}
	if p.total != Unknown {
		if last := p.lastByte(); last > p.total {
			return fail(400, fmt.Errorf("%w: byte %d of %d", ErrBeyondTotal, last, p.total))
		}
	}
	if start == 1 || p.contentType == "" {
		if start == 1 {
			p.headers = f.Headers
		}
		if f.ContentType != "" {
			p.contentType = f.ContentType
		}
	}
	if len(f.Body) > 0 {
		if err := p.insert(start, f.Body, r.lim.MaxMessage); err != nil {
			code := 400
			if errors.Is(err, ErrMessageTooLarge) {
				code = 413
			}
			return fail(code, err)
		}
	}
	if !p.ended || p.total == Unknown || p.have != p.total {
		if f.Flag == FlagEnd {
			p.held = append(p.held, f)
		}
		return nil, nil
	}
	delete(r.msgs, p.id)
	var body []byte
	if len(p.segs) == 1 {
		body = p.segs[0].data
	}
	return &Message{ID: p.id, ContentType: p.contentType, Body: body, Headers: p.headers, Last: f, Held: p.held}, nil
}

func (p *partial) lastByte() int64 {
	if len(p.segs) == 0 {
		return 0
	}
	return p.segs[len(p.segs)-1].end()
}

// insert adds data at start, checking overlaps against what is there and
// merging touching segments, so that a message that arrives in order is
// one growing segment.
func (p *partial) insert(start int64, data []byte, limit int64) error {
	end := start + int64(len(data)) - 1
	// Segments from i to j-1 overlap or touch [start, end].
	i := sort.Search(len(p.segs), func(k int) bool { return p.segs[k].end() >= start-1 })
	j := i
	for j < len(p.segs) && p.segs[j].start <= end+1 {
		j++
	}
	for _, s := range p.segs[i:j] {
		lo, hi := max(s.start, start), min(s.end(), end)
		if lo <= hi && !bytes.Equal(s.data[lo-s.start:hi-s.start+1], data[lo-start:hi-start+1]) {
			return fmt.Errorf("%w: bytes %d-%d", ErrOverlap, lo, hi)
		}
	}
	added := int64(len(data))
	for _, s := range p.segs[i:j] {
		added -= max(0, min(s.end(), end)-max(s.start, start)+1)
	}
	if p.have+added > limit {
		return fmt.Errorf("%w: %d bytes", ErrMessageTooLarge, p.have+added)
	}
	p.have += added
	if i == j {
		// Room for the rest of the message, within what this chunk
		// shows to be real: a claimed total is not trusted.
		capacity := len(data)
		if p.total != Unknown && start == 1 {
			capacity = int(min(p.total, 4*int64(len(data))))
		}
		p.segs = slices.Insert(p.segs, i, segment{start: start, data: append(make([]byte, 0, capacity), data...)})
		return nil
	}
	// Merge into the first touching segment, growing it in place when the
	// new bytes only extend it to the right (arrival in order).
	first := p.segs[i]
	lo := min(first.start, start)
	hi := max(p.segs[j-1].end(), end)
	if lo == first.start && j == i+1 {
		if end > first.end() {
			first.data = append(first.data, data[first.end()+1-start:]...)
		}
		p.segs[i] = first
		return nil
	}
	merged := make([]byte, hi-lo+1)
	copy(merged[start-lo:], data)
	for _, s := range p.segs[i:j] {
		copy(merged[s.start-lo:], s.data)
	}
	p.segs[i] = segment{start: lo, data: merged}
	p.segs = slices.Delete(p.segs, i+1, j)
	return nil
}

// Expire drops the messages that have waited longer than
// Limits.IncompleteTimeout for their next chunk, returning why for each.
func (r *Reassembler) Expire() []*ChunkError {
	dropped := append(r.dropped, r.expire(r.now())...)
	r.dropped = nil
	return dropped
}

func (r *Reassembler) expire(now time.Time) []*ChunkError {
	var dropped []*ChunkError
	for id, p := range r.msgs {
		if now.Sub(p.touched) >= r.lim.IncompleteTimeout {
			delete(r.msgs, id)
			dropped = append(dropped, &ChunkError{MessageID: id, Code: 408, Held: p.held,
				Err: fmt.Errorf("%w: %d of %s bytes after %v", ErrIncomplete, p.have, totalString(p.total), r.lim.IncompleteTimeout)})
		}
	}
	return dropped
}

func totalString(n int64) string {
	if n == Unknown {
		return "*"
	}
	return fmt.Sprint(n)
}
