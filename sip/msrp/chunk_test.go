package msrp

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func testBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// chunk makes a SEND chunk by hand.
func chunk(id string, start, end, total int64, body []byte, flag Flag) *Frame {
	return &Frame{Method: MethodSEND, MessageID: id, ByteRange: ByteRange{start, end, total},
		ContentType: "text/plain", Body: body, Flag: flag}
}

func TestReassembleInOrderAndShuffled(t *testing.T) {
	t.Parallel()
	body := testBody(25000)
	for seed := range uint64(20) {
		frames := Chunks("m1x9", "text/plain", body, 3000)
		frames[0].Headers = []Header{{"Content-Disposition", "inline"}}
		if seed > 0 {
			rng := rand.New(rand.NewPCG(seed, 1))
			rng.Shuffle(len(frames), func(i, j int) { frames[i], frames[j] = frames[j], frames[i] })
		}
		r := NewReassembler(Limits{})
		for i, f := range frames {
			m, err := r.Add(f)
			if err != nil {
				t.Fatalf("seed %d chunk %d: %v", seed, i, err)
			}
			if (m != nil) != (i == len(frames)-1) {
				t.Fatalf("seed %d chunk %d of %d: message %v", seed, i, len(frames), m != nil)
			}
			if m == nil {
				continue
			}
			if !bytes.Equal(m.Body, body) || m.ID != "m1x9" || m.ContentType != "text/plain" || m.Last != f {
				t.Fatalf("seed %d: message %q, %d bytes", seed, m.ID, len(m.Body))
			}
			if len(m.Headers) != 1 {
				t.Errorf("seed %d: headers of the first chunk lost: %v", seed, m.Headers)
			}
			// The chunk flagged last, when it came before the end, had
			// its answer held for the message's.
			var end *Frame
			for _, g := range frames {
				if g.Flag == FlagEnd {
					end = g
				}
			}
			if end == m.Last && len(m.Held) != 0 || end != m.Last && (len(m.Held) != 1 || m.Held[0] != end) {
				t.Errorf("seed %d: Held %v, Last %v", seed, m.Held, m.Last.ByteRange)
			}
		}
		if r.InFlight() != 0 {
			t.Errorf("seed %d: %d left in flight", seed, r.InFlight())
		}
	}
}

func TestReassembleOneChunkNotCopied(t *testing.T) {
	t.Parallel()
	f := chunk("m1x9", 1, 5, 5, []byte("hello"), FlagEnd)
	m, err := NewReassembler(Limits{}).Add(f)
	if err != nil || m == nil || &m.Body[0] != &f.Body[0] {
		t.Fatalf("%v %v", m, err)
	}
	// No Byte-Range, no Message-ID: the whole message in one chunk.
	g := &Frame{Method: MethodSEND, ContentType: "text/plain", Body: []byte("hi"), Flag: FlagEnd}
	if m, err := NewReassembler(Limits{}).Add(g); err != nil || string(m.Body) != "hi" {
		t.Fatalf("%v %v", m, err)
	}
}

// The end of a message with '*' totals is where its last chunk ends.
func TestReassembleUnknownTotal(t *testing.T) {
	t.Parallel()
	r := NewReassembler(Limits{})
	if m, err := r.Add(chunk("m1x9", 1, Unknown, Unknown, []byte("abc"), FlagMore)); m != nil || err != nil {
		t.Fatal(m, err)
	}
	m, err := r.Add(chunk("m1x9", 4, Unknown, Unknown, []byte("def"), FlagEnd))
	if err != nil || m == nil || string(m.Body) != "abcdef" {
		t.Fatalf("%v %v", m, err)
	}
}

// RFC 4975 section 7.1: a sender may interrupt a chunk, ending it with
// '+' before its Byte-Range's end, and go on from where it stopped.
func TestReassembleInterrupted(t *testing.T) {
	t.Parallel()
	r := NewReassembler(Limits{})
	first := chunk("m1x9", 1, 10, 10, []byte("abcd"), FlagMore)
	if !first.Interrupted() {
		t.Error("Interrupted() = false for 4 bytes of 1-10")
	}
	if m, err := r.Add(first); m != nil || err != nil {
		t.Fatal(m, err)
	}
	rest := chunk("m1x9", 5, 10, 10, []byte("efghij"), FlagEnd)
	if rest.Interrupted() {
		t.Error("Interrupted() = true for a whole chunk")
	}
	m, err := r.Add(rest)
	if err != nil || m == nil || string(m.Body) != "abcdefghij" {
		t.Fatalf("%v %v", m, err)
	}
}

// A chunk sent again (the same bytes) is taken; overlaps that agree merge.
func TestReassembleOverlapAgrees(t *testing.T) {
	t.Parallel()
	r := NewReassembler(Limits{})
	body := []byte("abcdefghij")
	for _, f := range []*Frame{
		chunk("m1x9", 3, 6, 10, body[2:6], FlagMore),
		chunk("m1x9", 1, 4, 10, body[0:4], FlagMore),
		chunk("m1x9", 3, 6, 10, body[2:6], FlagMore),
		chunk("m1x9", 9, 10, 10, body[8:10], FlagEnd),
	} {
		if m, err := r.Add(f); m != nil || err != nil {
			t.Fatal(m, err)
		}
	}
	m, err := r.Add(chunk("m1x9", 5, 9, 10, body[4:9], FlagMore))
	if err != nil || m == nil || !bytes.Equal(m.Body, body) {
		t.Fatalf("%v %v", m, err)
	}
}

func TestReassembleRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		chunks []*Frame
		want   error
		code   int
	}{
		{"total differs from an earlier chunk", []*Frame{
			chunk("m1x9", 1, 3, 10, []byte("abc"), FlagMore),
			chunk("m1x9", 4, 6, 12, []byte("def"), FlagMore),
		}, ErrTotalMismatch, 400},
		{"overlap that disagrees", []*Frame{
			chunk("m1x9", 1, 4, 10, []byte("abcd"), FlagMore),
			chunk("m1x9", 3, 6, 10, []byte("XXef"), FlagMore),
		}, ErrOverlap, 400},
		{"range beyond the total", []*Frame{
			chunk("m1x9", 1, 3, 5, []byte("abc"), FlagMore),
			{Method: MethodSEND, MessageID: "m1x9", ByteRange: ByteRange{4, Unknown, 5}, ContentType: "a/b", Body: []byte("defg"), Flag: FlagMore},
		}, ErrBeyondTotal, 400},
		{"bytes after the end of a '*' message", []*Frame{
			chunk("m1x9", 6, Unknown, Unknown, []byte("fgh"), FlagMore),
			chunk("m1x9", 1, Unknown, Unknown, []byte("abc"), FlagEnd),
		}, ErrBeyondTotal, 400},
		{"body longer than its range", []*Frame{
			chunk("m1x9", 1, 2, 10, []byte("abcd"), FlagMore),
		}, ErrRangeMismatch, 400},
		{"total over the message limit", []*Frame{
			chunk("m1x9", 1, 3, 1<<40, []byte("abc"), FlagMore),
		}, ErrMessageTooLarge, 413},
		{"chunked message without Message-ID", []*Frame{
			chunk("", 1, 3, 10, []byte("abc"), FlagMore),
		}, ErrNoMessageID, 400},
		{"aborted", []*Frame{
			chunk("m1x9", 1, 3, 10, []byte("abc"), FlagMore),
			chunk("m1x9", 4, 6, 10, []byte("def"), FlagAbort),
		}, ErrAborted, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewReassembler(Limits{})
			var err error
			for i, f := range tt.chunks {
				var m *Message
				m, err = r.Add(f)
				if m != nil {
					t.Fatalf("chunk %d completed a message", i)
				}
				if err != nil && i != len(tt.chunks)-1 {
					t.Fatalf("chunk %d: %v", i, err)
				}
			}
			var ce *ChunkError
			if !errors.As(err, &ce) || !errors.Is(err, tt.want) || ce.Code != tt.code || CodeFor(err) != tt.code {
				t.Fatalf("error %v, want %v with code %d", err, tt.want, tt.code)
			}
			if r.InFlight() != 0 {
				t.Errorf("the message is still held")
			}
		})
	}
}

func TestReassembleLimits(t *testing.T) {
	t.Parallel()
	r := NewReassembler(Limits{MaxInFlight: 2, MaxMessage: 10, MaxChunk: 10})
	for _, id := range []string{"m001", "m002"} {
		if _, err := r.Add(chunk(id, 1, 3, Unknown, []byte("abc"), FlagMore)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.Add(chunk("m003", 1, 3, Unknown, []byte("abc"), FlagMore))
	if !errors.Is(err, ErrTooManyInFlight) || CodeFor(err) != 413 {
		t.Fatalf("third message: %v", err)
	}
	// Bytes beyond MaxMessage with no total announced.
	_, err = r.Add(chunk("m001", 4, Unknown, Unknown, testBody(8), FlagMore))
	if !errors.Is(err, ErrMessageTooLarge) || CodeFor(err) != 413 {
		t.Fatalf("over the size: %v", err)
	}
	if r.InFlight() != 1 {
		t.Errorf("%d in flight, want 1", r.InFlight())
	}
}

func TestReassembleTimeout(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	r := NewReassembler(Limits{IncompleteTimeout: time.Minute})
	r.now = func() time.Time { return now }
	if _, err := r.Add(chunk("m001", 1, 3, 6, []byte("abc"), FlagMore)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Second)
	if _, err := r.Add(chunk("m002", 1, 3, 6, []byte("abc"), FlagMore)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(40 * time.Second)
	dropped := r.Expire()
	if len(dropped) != 1 || dropped[0].MessageID != "m001" || !errors.Is(dropped[0], ErrIncomplete) {
		t.Fatalf("dropped %v", dropped)
	}
	// The rest of m001 now starts a new message that never completes on
	// its own; m002 still completes.
	if m, err := r.Add(chunk("m002", 4, 6, 6, []byte("def"), FlagEnd)); err != nil || string(m.Body) != "abcdef" {
		t.Fatalf("%v %v", m, err)
	}
	// Expiry also happens inside Add, and is reported by the next Expire.
	if _, err := r.Add(chunk("m003", 1, 3, 6, []byte("abc"), FlagMore)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := r.Add(chunk("m004", 1, 3, 6, []byte("abc"), FlagMore)); err != nil {
		t.Fatal(err)
	}
	if dropped := r.Expire(); len(dropped) != 1 || dropped[0].MessageID != "m003" {
		t.Fatalf("dropped %v", dropped)
	}
	// A last chunk that leaves bytes missing (here a total that counts
	// two bytes more than were sent, as RFC 4975's examples do) is held,
	// and comes back with the drop to be answered 408.
	miscounted := chunk("m005", 1, 25, 25, testBody(23), FlagEnd)
	if m, err := r.Add(miscounted); m != nil || err != nil {
		t.Fatal(m, err)
	}
	now = now.Add(2 * time.Minute)
	dropped = r.Expire()
	if len(dropped) != 2 || CodeFor(dropped[0]) != 408 {
		t.Fatalf("dropped %v", dropped)
	}
	for _, d := range dropped {
		if d.MessageID == "m005" && (len(d.Held) != 1 || d.Held[0] != miscounted) {
			t.Errorf("m005 held %v", d.Held)
		}
	}
}

func TestRespond(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fr     Report
		method string
		code   int
		want   bool
	}{
		{ReportUnset, MethodSEND, 200, true},
		{ReportUnset, MethodSEND, 400, true},
		{ReportYes, MethodSEND, 200, true},
		{ReportNo, MethodSEND, 200, false},
		{ReportNo, MethodSEND, 413, false},
		{ReportPartial, MethodSEND, 200, false},
		{ReportPartial, MethodSEND, 413, true},
		{ReportUnset, MethodREPORT, 400, false},
		{ReportUnset, "NICKNAME", 501, true},
	}
	for _, tt := range tests {
		if got := Respond(&Frame{Method: tt.method, FailureReport: tt.fr}, tt.code); got != tt.want {
			t.Errorf("Respond(%s Failure-Report %q, %d) = %v", tt.method, tt.fr, tt.code, got)
		}
	}
	if WantsSuccessReport(&Frame{Method: MethodSEND}) || !WantsSuccessReport(&Frame{Method: MethodSEND, SuccessReport: ReportYes}) {
		t.Error("Success-Report defaults to no")
	}
}
