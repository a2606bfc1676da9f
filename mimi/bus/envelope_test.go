package bus

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

const testID = "3f8c2a6b9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809101"

// testSubject is where goodEnvelope goes: its recipient's subject.
const testSubject = "mimi.to.tel.15551230002"

func goodEnvelope() Envelope {
	return Envelope{
		ID:        testID,
		Sender:    "mimi://a.example/u/alice",
		Recipient: "tel:+15551230002",
		Room:      "mimi://a.example/r/dm-1234",
		Channel:   ChannelAuto,
		Accepted:  time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC),
	}
}

func TestEnvelopeHeader(t *testing.T) {
	h := goodEnvelope().Header(testSubject)
	want := map[string]string{
		"Nats-Msg-Id":    testID + ".15551230002", // one per recipient
		"Mimi-Id":        testID,
		"Mimi-Sender":    "mimi://a.example/u/alice",
		"Mimi-Recipient": "tel:+15551230002",
		"Mimi-Room":      "mimi://a.example/r/dm-1234",
		"Mimi-Channel":   "auto",
		"Mimi-Accepted":  "2026-03-04T05:06:07.891Z",
	}
	if len(h) != len(want) {
		t.Errorf("Header has %d keys, want %d: %v", len(h), len(want), h)
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want [%q]", k, got, v)
		}
	}
	// Values share one backing array; appending to one must not clobber
	// the next.
	h.Add("Mimi-Id", "x")
	if h.Get("Mimi-Sender") != "mimi://a.example/u/alice" {
		t.Errorf("Add to Mimi-Id changed Mimi-Sender to %q", h.Get("Mimi-Sender"))
	}
	if got := goodEnvelope().Header("mimi.from.tel.15551230002").Get(HeaderMsgID); got != testID {
		t.Errorf("from-phone Nats-Msg-Id = %q, want the message ID", got)
	}
}

func TestEnvelopeAcceptedMilliseconds(t *testing.T) {
	e := goodEnvelope()
	e.Accepted = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	if got := e.Header(testSubject).Get(HeaderAccepted); got != "2026-01-02T02:04:05.000Z" {
		t.Errorf("Mimi-Accepted = %q, want UTC with milliseconds", got)
	}
	e.Channel = ""
	e.Accepted = time.Time{}
	h := e.Header(testSubject)
	if _, ok := h[HeaderChannel]; ok {
		t.Error("empty channel written")
	}
	if _, ok := h[HeaderAccepted]; ok {
		t.Error("zero Accepted written")
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, ch := range []string{"", ChannelRCS, ChannelSMS, ChannelAuto} {
		e := goodEnvelope()
		e.Channel = ch
		got, err := ParseEnvelope(e.Header(testSubject))
		if err != nil {
			t.Fatalf("channel %q: %v", ch, err)
		}
		if !got.Accepted.Equal(e.Accepted) {
			t.Errorf("Accepted %v, want %v", got.Accepted, e.Accepted)
		}
		got.Accepted = e.Accepted
		if got != e {
			t.Errorf("round trip: got %+v, want %+v", got, e)
		}
	}
}

func TestParseEnvelope(t *testing.T) {
	base := goodEnvelope().Header(testSubject)
	with := func(f func(h nats.Header)) nats.Header {
		h := nats.Header{}
		for k, v := range base {
			h[k] = append([]string(nil), v...)
		}
		f(h)
		return h
	}
	tests := []struct {
		name    string
		h       nats.Header
		wantErr string // substring; "" means valid
		check   func(t *testing.T, e Envelope)
	}{
		{name: "valid", h: base},
		{name: "only Mimi-Id", h: with(func(h nats.Header) { h.Del(HeaderMsgID) })},
		{name: "only Nats-Msg-Id", h: with(func(h nats.Header) { h.Del(HeaderID) }),
			check: func(t *testing.T, e Envelope) {
				if e.ID != testID {
					t.Errorf("ID %q", e.ID)
				}
			}},
		{name: "Nats-Msg-Id without the recipient", h: with(func(h nats.Header) { h.Set(HeaderMsgID, testID) })},
		{name: "only a plain Nats-Msg-Id", h: with(func(h nats.Header) { h.Del(HeaderID); h.Set(HeaderMsgID, testID) }),
			check: func(t *testing.T, e Envelope) {
				if e.ID != testID {
					t.Errorf("ID %q", e.ID)
				}
			}},
		{name: "lower-case header names", h: with(func(h nats.Header) {
			h["mimi-sender"] = h[HeaderSender]
			h.Del(HeaderSender)
		})},
		{name: "no channel", h: with(func(h nats.Header) { h.Del(HeaderChannel) })},
		{name: "accepted without fraction", h: with(func(h nats.Header) { h.Set(HeaderAccepted, "2026-03-04T05:06:07Z") })},
		{name: "accepted with offset", h: with(func(h nats.Header) { h.Set(HeaderAccepted, "2026-03-04T07:06:07.891+02:00") }),
			check: func(t *testing.T, e Envelope) {
				if !e.Accepted.Equal(goodEnvelope().Accepted) {
					t.Errorf("Accepted %v", e.Accepted)
				}
			}},
		{name: "sender tel", h: with(func(h nats.Header) { h.Set(HeaderSender, "tel:+447700900123") })},
		{name: "recipient device", h: with(func(h nats.Header) { h.Set(HeaderRecipient, "mimi://b.example/d/dev1") })},

		{name: "no headers", h: nil, wantErr: "Mimi-Id is missing"},
		{name: "no id", h: with(func(h nats.Header) { h.Del(HeaderID); h.Del(HeaderMsgID) }), wantErr: "Mimi-Id is missing"},
		{name: "ids differ", h: with(func(h nats.Header) { h.Set(HeaderMsgID, strings.Repeat("a", 64)) }), wantErr: "differs from Nats-Msg-Id"},
		{name: "recipient not digits", h: with(func(h nats.Header) { h.Set(HeaderMsgID, testID+".bob") }), wantErr: "differs from Nats-Msg-Id"},
		{name: "empty recipient", h: with(func(h nats.Header) { h.Set(HeaderMsgID, testID+".") }), wantErr: "differs from Nats-Msg-Id"},
		{name: "upper-case id", h: with(func(h nats.Header) {
			h.Set(HeaderID, strings.ToUpper(testID))
			h.Set(HeaderMsgID, strings.ToUpper(testID))
		}), wantErr: "not 64 lowercase hex"},
		{name: "short id", h: with(func(h nats.Header) { h.Set(HeaderID, testID[:62]); h.Set(HeaderMsgID, testID[:62]) }), wantErr: "not 64 lowercase hex"},
		{name: "long id", h: with(func(h nats.Header) { h.Set(HeaderID, testID+"00"); h.Del(HeaderMsgID) }), wantErr: "not 64 lowercase hex"},
		{name: "id twice", h: with(func(h nats.Header) { h.Add(HeaderID, testID) }), wantErr: "Mimi-Id appears 2 times"},
		{name: "two spellings", h: with(func(h nats.Header) {
			h["MIMI-ROOM"] = []string{"mimi://a.example/r/x"}
			h["mimi-room"] = []string{"mimi://a.example/r/y"}
			h.Del(HeaderRoom)
		}), wantErr: "Mimi-Room appears more than once"},
		{name: "no sender", h: with(func(h nats.Header) { h.Del(HeaderSender) }), wantErr: "Mimi-Sender is missing"},
		{name: "sender http", h: with(func(h nats.Header) { h.Set(HeaderSender, "https://a.example/alice") }), wantErr: "Mimi-Sender"},
		{name: "sender provider", h: with(func(h nats.Header) { h.Set(HeaderSender, "mimi://a.example") }), wantErr: "names a provider"},
		{name: "sender tel not canonical", h: with(func(h nats.Header) { h.Set(HeaderSender, "tel:+1 555 123 0002") }), wantErr: "not an E.164 number"},
		{name: "sender tel with parameter", h: with(func(h nats.Header) { h.Set(HeaderSender, "tel:+15551230002;phone-context=x") }), wantErr: "not an E.164 number"},
		{name: "sender tel too long", h: with(func(h nats.Header) { h.Set(HeaderSender, "tel:+1234567890123456") }), wantErr: "not an E.164 number"},
		{name: "sender tel leading zero", h: with(func(h nats.Header) { h.Set(HeaderSender, "tel:+0123456") }), wantErr: "not an E.164 number"},
		{name: "sender tel national", h: with(func(h nats.Header) { h.Set(HeaderSender, "tel:5551230002") }), wantErr: "Mimi-Sender"},
		{name: "no recipient", h: with(func(h nats.Header) { h.Del(HeaderRecipient) }), wantErr: "Mimi-Recipient is missing"},
		{name: "recipient garbage", h: with(func(h nats.Header) { h.Set(HeaderRecipient, "tel:+abc") }), wantErr: "Mimi-Recipient"},
		{name: "no room", h: with(func(h nats.Header) { h.Del(HeaderRoom) }), wantErr: "Mimi-Room is missing"},
		{name: "room is a user", h: with(func(h nats.Header) { h.Set(HeaderRoom, "mimi://a.example/u/alice") }), wantErr: "not a room"},
		{name: "room not mimi", h: with(func(h nats.Header) { h.Set(HeaderRoom, "tel:+15551230002") }), wantErr: "Mimi-Room"},
		{name: "channel unknown", h: with(func(h nats.Header) { h.Set(HeaderChannel, "mms") }), wantErr: "is not rcs, sms or auto"},
		{name: "channel upper case", h: with(func(h nats.Header) { h.Set(HeaderChannel, "SMS") }), wantErr: "is not rcs, sms or auto"},
		{name: "no accepted", h: with(func(h nats.Header) { h.Del(HeaderAccepted) }), wantErr: "Mimi-Accepted is missing"},
		{name: "accepted not a time", h: with(func(h nats.Header) { h.Set(HeaderAccepted, "yesterday") }), wantErr: "not an RFC 3339 time"},
		{name: "accepted no zone", h: with(func(h nats.Header) { h.Set(HeaderAccepted, "2026-03-04T05:06:07.891") }), wantErr: "not an RFC 3339 time"},
		{name: "accepted zero time", h: with(func(h nats.Header) { h.Set(HeaderAccepted, "0001-01-01T00:00:00Z") }), wantErr: "before 1970"},
		{name: "accepted month 13", h: with(func(h nats.Header) { h.Set(HeaderAccepted, "2026-13-04T05:06:07.891Z") }), wantErr: "not an RFC 3339 time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseEnvelope(tt.h)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, e)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			}
			if !errors.Is(err, ErrBadEnvelope) {
				t.Errorf("error %v is not ErrBadEnvelope", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestParseEnvelopeKeepsValidFields: a gateway reporting a bad envelope
// needs the sender even when another field is wrong.
func TestParseEnvelopeKeepsValidFields(t *testing.T) {
	h := goodEnvelope().Header(testSubject)
	h.Set(HeaderRoom, "not a room")
	h.Set(HeaderChannel, "fax")
	e, err := ParseEnvelope(h)
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), "Mimi-Room") || !strings.Contains(err.Error(), "Mimi-Channel") {
		t.Errorf("error %q should name both bad headers", err)
	}
	if e.Sender != "mimi://a.example/u/alice" || e.ID != testID || e.Recipient != "tel:+15551230002" {
		t.Errorf("valid fields lost: %+v", e)
	}
	if e.Room != "" || e.Channel != "" {
		t.Errorf("bad fields kept: %+v", e)
	}
}

func TestEnvelopeValidate(t *testing.T) {
	e := goodEnvelope()
	e.Accepted = time.Time{}
	if err := e.Validate(); err != nil {
		t.Errorf("zero Accepted should validate (Publish stamps it): %v", err)
	}
	e.ID = "abc"
	if err := e.Validate(); err == nil || !errors.Is(err, ErrBadEnvelope) {
		t.Errorf("bad ID: got %v", err)
	}
}

func FuzzParseEnvelope(f *testing.F) {
	e := goodEnvelope()
	f.Add(e.ID, e.ID, e.Sender, e.Recipient, e.Room, e.Channel, "2026-03-04T05:06:07.891Z")
	f.Add(e.ID, "", "tel:+15551230002", "mimi://b.example/u/bob", "mimi://b.example/r/room", "sms", "2026-03-04T05:06:07Z")
	f.Add("", strings.Repeat("0", 64), "tel:+44 20", "mimi://x/u/", "mimi://x/r/\x00", "rcs", "2026-02-30T00:00:00Z")
	f.Add("\xff", "\xff", "mimi://\xff/u/a", "tel:", "mimi://", "", "")
	f.Fuzz(func(t *testing.T, id, msgID, sender, recipient, room, channel, accepted string) {
		h := nats.Header{}
		for k, v := range map[string]string{
			HeaderID: id, HeaderMsgID: msgID, HeaderSender: sender, HeaderRecipient: recipient,
			HeaderRoom: room, HeaderChannel: channel, HeaderAccepted: accepted,
		} {
			if v != "" {
				h.Set(k, v)
			}
		}
		env, err := ParseEnvelope(h)
		if err != nil {
			if !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("error %v is not ErrBadEnvelope", err)
			}
			return
		}
		if err := env.Validate(); err != nil {
			t.Fatalf("parsed envelope %+v does not validate: %v", env, err)
		}
		// What parses writes back and parses to the same envelope.
		again, err := ParseEnvelope(env.Header(testSubject))
		if err != nil {
			t.Fatalf("re-parse of %+v: %v", env, err)
		}
		if !again.Accepted.Equal(env.Accepted.Truncate(time.Millisecond)) {
			t.Fatalf("Accepted %v became %v", env.Accepted, again.Accepted)
		}
		again.Accepted, env.Accepted = time.Time{}, time.Time{}
		if again != env {
			t.Fatalf("round trip changed %+v into %+v", env, again)
		}
	})
}

func BenchmarkEnvelopeHeader(b *testing.B) {
	e := goodEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		_ = e.Header(testSubject)
	}
}

func BenchmarkEnvelopeValidate(b *testing.B) {
	e := goodEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	h := goodEnvelope().Header(testSubject)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEnvelope(h); err != nil {
			b.Fatal(err)
		}
	}
}
