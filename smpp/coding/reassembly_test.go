package coding

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 6, 40, 0, 0, time.UTC)

func newReassembler(t testing.TB, c ReassemblyConfig) *Reassembler {
	t.Helper()
	r, err := NewReassembler(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// partsOf encodes text and decodes every segment back into a Part, as the
// session does with what arrives from the SMSC.
func partsOf(t testing.TB, text string, ref uint16, o Options) []Part {
	t.Helper()
	e, err := EncodeRef(text, ref, o)
	if err != nil {
		t.Fatal(err)
	}
	var parts []Part
	for _, s := range e.Segments {
		var p Part
		if s.SAR != nil {
			p, err = DecodeSAR(e.DataCoding, false, s.ShortMessage, ConcatInfo{Ref: s.SAR.Ref, Total: s.SAR.Total, Seq: s.SAR.Seq}, o)
		} else {
			p, err = Decode(e.DataCoding, s.ESMClassUDHI, s.ShortMessage, o)
		}
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	return parts
}

var mo = Key{Source: "15551230001", Destination: "15551230002"}

func TestReassembleOutOfOrder16Bit(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("Ωмир 😀 ", 40)
	parts := partsOf(t, text, 0xBEEF, Options{Concat: ConcatUDH16})
	if len(parts) < 3 {
		t.Fatalf("%d parts", len(parts))
	}
	r := newReassembler(t, ReassemblyConfig{})
	order := []int{2, 0}
	for i := 3; i < len(parts); i++ {
		order = append(order, i)
	}
	order = append(order, 1)
	for n, i := range order {
		m, err := r.Add(mo, parts[i], t0.Add(time.Duration(n)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if n < len(order)-1 {
			if m != nil {
				t.Fatalf("message after %d of %d parts", n+1, len(parts))
			}
			continue
		}
		if m == nil || m.Incomplete || m.Text != text || len(m.Missing) != 0 {
			t.Fatalf("got %+v", m)
		}
		want := Key{Source: mo.Source, Destination: mo.Destination, Ref: 0xBEEF, Total: uint8(len(parts)), Wide: true}
		if m.Key != want || !m.First.Equal(t0) || len(m.Parts) != len(parts) {
			t.Fatalf("key %+v first %v parts %d", m.Key, m.First, len(m.Parts))
		}
	}
	if s := r.Stats(); s.Partial != 0 || s.Bytes != 0 || s.Completed != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReassembleSARAnd8Bit(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{{Concat: ConcatSAR}, {Concat: ConcatUDH8}, {Concat: ConcatUDH8, Packed: true}} {
		text := strings.Repeat("sar text € ", 40)
		parts := partsOf(t, text, 300, o)
		r := newReassembler(t, ReassemblyConfig{})
		var got *Message
		for i := len(parts) - 1; i >= 0; i-- {
			m, err := r.Add(mo, parts[i], t0)
			if err != nil {
				t.Fatal(err)
			}
			if m != nil {
				got = m
			}
		}
		if got == nil || got.Text != text || got.Incomplete {
			t.Fatalf("%v: %+v", o.Concat, got)
		}
	}
}

func TestReassembleDuplicates(t *testing.T) {
	t.Parallel()
	parts := partsOf(t, strings.Repeat("dup ", 50), 7, Options{})
	r := newReassembler(t, ReassemblyConfig{})
	steps := []struct {
		part     int
		complete bool
	}{{0, false}, {0, false}, {1, true}, {1, false}, {0, false}}
	for i, s := range steps {
		m, err := r.Add(mo, parts[s.part], t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if (m != nil) != s.complete {
			t.Fatalf("step %d: message %+v", i, m)
		}
	}
	s := r.Stats()
	if s.Duplicates != 3 || s.Partial != 0 || s.Completed != 1 {
		t.Fatalf("stats %+v: want 3 duplicates, nothing partial", s)
	}
	// Long after completion the same reference is a new message.
	if out := r.Expire(t0.Add(time.Hour)); len(out) != 0 {
		t.Fatalf("expired %d", len(out))
	}
	if m, err := r.Add(mo, parts[0], t0.Add(time.Hour)); m != nil || err != nil || r.Stats().Partial != 1 {
		t.Fatalf("reused reference after the timeout: %+v %v %+v", m, err, r.Stats())
	}
}

func TestReassembleTimeout(t *testing.T) {
	t.Parallel()
	parts := partsOf(t, strings.Repeat("x", 400), 1, Options{}) // 3 parts
	r := newReassembler(t, ReassemblyConfig{Timeout: time.Minute})
	if _, err := r.Add(mo, parts[2], t0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(mo, parts[0], t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The timeout runs from the latest part.
	if out := r.Expire(t0.Add(89 * time.Second)); len(out) != 0 {
		t.Fatalf("expired early: %+v", out)
	}
	out := r.Expire(t0.Add(90 * time.Second))
	if len(out) != 1 {
		t.Fatalf("expired %d", len(out))
	}
	m := out[0]
	if !m.Incomplete || !slices.Equal(m.Missing, []uint8{2}) || m.Text != parts[0].Text+parts[2].Text || len(m.Parts) != 2 {
		t.Fatalf("incomplete message %+v", m)
	}
	if s := r.Stats(); s.Expired != 1 || s.Partial != 0 || s.Bytes != 0 {
		t.Fatalf("stats %+v", s)
	}
	// The late part starts a new partial message rather than vanishing.
	if m, _ := r.Add(mo, parts[1], t0.Add(2*time.Minute)); m != nil || r.Stats().Partial != 1 {
		t.Fatalf("late part: %+v", m)
	}
}

func TestReassembleTotalConflict(t *testing.T) {
	t.Parallel()
	r := newReassembler(t, ReassemblyConfig{})
	a := Part{Text: "a", Concat: &ConcatInfo{Ref: 5, Total: 2, Seq: 1}}
	b := Part{Text: "b", Concat: &ConcatInfo{Ref: 5, Total: 3, Seq: 2}}
	for _, p := range []Part{a, b} {
		if m, err := r.Add(mo, p, t0); m != nil || err != nil {
			t.Fatal(m, err)
		}
	}
	if s := r.Stats(); s.Partial != 2 {
		t.Fatalf("%d partial messages, want 2 (different totals)", s.Partial)
	}
	// Same number, different content: the reference was reused.
	a2 := Part{Text: "A", Concat: &ConcatInfo{Ref: 5, Total: 2, Seq: 1}}
	if m, err := r.Add(mo, a2, t0); m != nil || err != nil {
		t.Fatal(m, err)
	}
	out := r.Expire(t0)
	if len(out) != 1 || out[0].Text != "a" || !out[0].Incomplete {
		t.Fatalf("released %+v", out)
	}
	m, err := r.Add(mo, Part{Text: "B", Concat: &ConcatInfo{Ref: 5, Total: 2, Seq: 2}}, t0)
	if err != nil || m == nil || m.Text != "AB" {
		t.Fatalf("new message %+v %v", m, err)
	}
	// Another source with the same reference is another message.
	other := mo
	other.Source = "15559990000"
	if m, _ := r.Add(other, Part{Text: "x", Concat: &ConcatInfo{Ref: 5, Total: 3, Seq: 2}}, t0); m != nil || r.Stats().Partial != 2 {
		t.Fatalf("other source: %+v %+v", m, r.Stats())
	}
}

func TestReassembleBadPart(t *testing.T) {
	t.Parallel()
	r := newReassembler(t, ReassemblyConfig{})
	for _, c := range []ConcatInfo{{Total: 0, Seq: 0}, {Total: 2, Seq: 0}, {Total: 2, Seq: 3}} {
		if _, err := r.Add(mo, Part{Text: "x", Concat: &c}, t0); !errors.Is(err, ErrBadPart) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	m, err := r.Add(mo, Part{Text: "whole"}, t0)
	if err != nil || m == nil || m.Text != "whole" || m.Incomplete {
		t.Fatalf("unconcatenated part: %+v %v", m, err)
	}
}

func TestReassembleMemoryBound(t *testing.T) {
	t.Parallel()
	cfg := ReassemblyConfig{MaxBytes: 4096, MaxMessages: 8, Timeout: time.Minute}
	r := newReassembler(t, cfg)
	released := 0
	for i := range 100 {
		p := Part{Text: strings.Repeat("m", 100+i), Concat: &ConcatInfo{Ref: uint16(i), Total: 3, Seq: 1}}
		if m, err := r.Add(mo, p, t0.Add(time.Duration(i)*time.Millisecond)); err != nil || m != nil {
			t.Fatal(m, err)
		}
		s := r.Stats()
		if s.Bytes > cfg.MaxBytes || s.Partial > cfg.MaxMessages {
			t.Fatalf("after %d parts: %+v exceeds the bounds", i+1, s)
		}
		for _, m := range r.Expire(t0) {
			if !m.Incomplete || len(m.Parts) != 1 || !slices.Equal(m.Missing, []uint8{2, 3}) {
				t.Fatalf("evicted %+v", m)
			}
			released++
		}
	}
	left := r.Stats().Partial
	if released+left != 100 {
		t.Fatalf("%d released + %d held != 100 added: something was dropped", released, left)
	}
	if r.Stats().Evicted != uint64(released) {
		t.Fatalf("evicted counter %d, released %d", r.Stats().Evicted, released)
	}
	// A part that does not fit even alone comes back at once.
	big := Part{Text: strings.Repeat("B", 5000), Concat: &ConcatInfo{Ref: 999, Total: 2, Seq: 1}}
	m, err := r.Add(mo, big, t0)
	if err != nil || m == nil || !m.Incomplete || m.Text != big.Text {
		t.Fatalf("oversized part: %+v %v", m, err)
	}
	if s := r.Stats(); s.Bytes > cfg.MaxBytes {
		t.Fatalf("stats %+v", s)
	}
}

func TestReassembleCutSurrogate(t *testing.T) {
	t.Parallel()
	// A sender that cut 😀 (D83D DE00) between two UCS-2 segments.
	p1, err := Decode(0x08, true, mustHex(t, "050003 09 03 01 0041 d83d"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Decode(0x08, true, mustHex(t, "050003 09 03 02 de00 0042 d83d"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := newReassembler(t, ReassemblyConfig{Timeout: time.Second})
	for _, p := range []Part{p2, p1} {
		if m, err := r.Add(mo, p, t0); m != nil || err != nil {
			t.Fatal(m, err)
		}
	}
	// Part 3 never comes: the half at the end of part 2 has no partner.
	out := r.Expire(t0.Add(time.Second))
	if len(out) != 1 || out[0].Text != "A😀B\uFFFD" || !out[0].Incomplete {
		t.Fatalf("got %+v", out)
	}
}

func TestReassemblyConfigValidate(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"max_messages", "max_bytes", "timeout"} {
		c := ReassemblyConfig{}
		switch key {
		case "max_messages":
			c.MaxMessages = -1
		case "max_bytes":
			c.MaxBytes = -1
		case "timeout":
			c.Timeout = -time.Second
		}
		if _, err := NewReassembler(c); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", key, err)
		}
	}
}

func ExampleReassembler() {
	r, _ := NewReassembler(ReassemblyConfig{Timeout: time.Minute})
	key := Key{Source: "15551230001", Destination: "15551230002"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, sm := range [][]byte{
		{6, 8, 4, 0x01, 0x02, 2, 2, 'l', 'd'},
		{6, 8, 4, 0x01, 0x02, 2, 1, 'W', 'o', 'r'},
	} {
		p, err := Decode(0x00, true, sm, Options{})
		if err != nil {
			fmt.Println(err)
			return
		}
		if m, _ := r.Add(key, p, now); m != nil {
			fmt.Printf("%q ref %d incomplete %v\n", m.Text, m.Key.Ref, m.Incomplete)
		}
	}
	// Output: "World" ref 258 incomplete false
}

func TestReassembleConcurrent(t *testing.T) {
	t.Parallel()
	r := newReassembler(t, ReassemblyConfig{})
	const senders = 8
	texts := make([]string, senders)
	done := make(chan *Message, senders)
	for s := range senders {
		texts[s] = strings.Repeat(fmt.Sprintf("sender %d says hi 😀 ", s), 12)
		parts := partsOf(t, texts[s], uint16(s), Options{Concat: ConcatUDH16})
		key := Key{Source: fmt.Sprint(s), Destination: "100"}
		go func() {
			var got *Message
			for i := len(parts) - 1; i >= 0; i-- {
				m, err := r.Add(key, parts[i], t0)
				if err != nil {
					t.Error(err)
				}
				if m != nil {
					got = m
				}
			}
			done <- got
		}()
	}
	for range senders {
		m := <-done
		if m == nil || m.Incomplete {
			t.Fatalf("message %+v", m)
		}
		var s int
		fmt.Sscan(m.Key.Source, &s)
		if m.Text != texts[s] {
			t.Fatalf("sender %d: text %q", s, m.Text)
		}
	}
}
