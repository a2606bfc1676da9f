package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// FuzzReader feeds arbitrary streams to the frame reader and every body
// decoder, and to go-smpp's own decoder for comparison: none may panic, a
// decoded message must encode again to a frame that decodes to the same
// value.
func FuzzReader(f *testing.F) {
	m := sampleMessage()
	sub, _ := AppendMessage(nil, SubmitSM, 1, &m)
	f.Add(sub)
	del, _ := AppendMessage(nil, DeliverSM, 2, &m)
	f.Add(del)
	bind, _ := AppendBind(nil, BindTransceiver, 3, Bind{SystemID: "gw", Password: "pw"})
	f.Add(bind)
	resp, _ := AppendResponse(nil, SubmitSMResp, 0, 4, "abc")
	f.Add(append(resp, AppendHeader(nil, EnquireLink, 0, 5)...))
	f.Add(frameOf(0x0000_0fff, 6, []byte{1, 2, 3}))
	f.Add(frameOf(DeliverSM, 7, []byte{0, 1, 1, '1', 0, 1, 1, '2', 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0x05, 0x00, 0x03, 0x01}))
	f.Add([]byte{0, 0, 0, 8, 0, 0, 0, 4})

	f.Fuzz(func(t *testing.T, stream []byte) {
		// go-smpp's decoder, as the gateway would have used it: it must not
		// panic either (the gateway does not call it, but nothing of the
		// library's is trusted untested).
		_, _ = pdu.Decode(bytes.NewReader(stream))

		r := NewReader(bytes.NewReader(stream), 4096)
		for i := 0; i < 64; i++ {
			h, body, err := r.Next()
			var fe *FrameError
			if errors.As(err, &fe) {
				if fe.Fatal {
					return
				}
				continue
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("stream error %v", err)
				}
				return
			}
			if int(h.Length) != HeaderLen+len(body) {
				t.Fatalf("length %d for a %d-byte body", h.Length, len(body))
			}
			checkBody(t, h, body)
		}
	})
}

func checkBody(t *testing.T, h Header, body []byte) {
	switch h.ID {
	case SubmitSM, DeliverSM:
		m, err := DecodeMessage(body)
		if err != nil {
			if StatusFor(err) == StatusSysErr {
				t.Fatalf("decode error without a status: %v", err)
			}
			return
		}
		frame, err := AppendMessage(nil, h.ID, h.Seq, &m)
		if err != nil {
			// Values the decoder takes but SMPP limits (a 30-digit
			// address) are refused on the way out, never mangled.
			if !errors.Is(err, ErrFieldValue) {
				t.Fatalf("re-encode: %v", err)
			}
			return
		}
		if len(m.TLVs) <= 1 && !bytes.Equal(frame, codecAppend(t, h.ID, h.Seq, &m)) {
			t.Fatalf("AppendMessage and go-smpp's codec differ for %+v", m)
		}
		m2, err := DecodeMessage(frame[HeaderLen:])
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) && !(len(m.TLVs) == 0 && len(m2.TLVs) == 0) {
			t.Fatalf("unstable:\n%+v\n%+v", m, m2)
		}
	case DataSM:
		_, _ = DecodeDataSM(body)
	case BindTransceiver, BindReceiver, BindTransmitter:
		_, _ = DecodeBind(body)
	default:
		if h.IsResponse() {
			_, _ = DecodeResponseID(body)
		}
	}
}
