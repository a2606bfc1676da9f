package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

func sampleMessage() Message {
	return Message{
		ServiceType: "CMT",
		SourceTON:   1, SourceNPI: 1, Source: "15551230001",
		DestTON: 1, DestNPI: 1, Dest: "15551230002",
		ESMClass:           ESMClassUDHI,
		RegisteredDelivery: 1,
		DataCoding:         8,
		ShortMessage:       []byte{0x05, 0x00, 0x03, 0x2a, 0x02, 0x01, 0xd8, 0x3d, 0xde, 0x00},
		TLVs: []TLV{
			{Tag: TagSarMsgRefNum, Value: []byte{0x00, 0x2a}},
			{Tag: TagMessagePayload, Value: []byte("payload")},
		},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, id := range []pdu.ID{SubmitSM, DeliverSM} {
		m := sampleMessage()
		frame, err := AppendMessage(nil, id, 77, &m)
		if err != nil {
			t.Fatal(err)
		}
		h, body, err := NewReader(bytes.NewReader(frame), 0).Next()
		if err != nil {
			t.Fatal(err)
		}
		if h.ID != id || h.Seq != 77 || int(h.Length) != len(frame) {
			t.Fatalf("header %+v for a %d-byte frame", h, len(frame))
		}
		got, err := DecodeMessage(body)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%s round trip:\n got %+v\nwant %+v", id, got, m)
		}
	}
}

func TestBindRoundTrip(t *testing.T) {
	b := Bind{SystemID: "gw", Password: "secret", SystemType: "mimi", InterfaceVersion: 0x34, AddrTON: 1, AddrNPI: 1}
	frame, err := AppendBind(nil, BindTransceiver, 1, b)
	if err != nil {
		t.Fatal(err)
	}
	h, body, err := NewReader(bytes.NewReader(frame), 0).Next()
	if err != nil || h.ID != BindTransceiver {
		t.Fatalf("%+v %v", h, err)
	}
	got, err := DecodeBind(body)
	if err != nil || got != b {
		t.Fatalf("got %+v, %v; want %+v", got, err, b)
	}
	if _, err := AppendBind(nil, BindTransceiver, 1, Bind{SystemID: "gw", Password: "much-too-long"}); !errors.Is(err, ErrFieldValue) {
		t.Fatalf("long password: %v", err)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	for _, c := range []struct {
		id     pdu.ID
		status pdu.Status
		field  string
		want   string
	}{
		{SubmitSMResp, StatusOK, "0A1B2C", "0A1B2C"},
		{SubmitSMResp, StatusThrottled, "ignored", ""},
		{DeliverSMResp, StatusOK, "", ""},
		{DataSMResp, StatusOK, "7", "7"},
		{BindTransceiverResp, StatusOK, "SMSC", "SMSC"},
		{EnquireLinkResp, StatusOK, "", ""},
		{GenericNack, StatusInvCmdID, "", ""},
	} {
		frame, err := AppendResponse(nil, c.id, c.status, 9, c.field)
		if err != nil {
			t.Fatal(err)
		}
		h, body, err := NewReader(bytes.NewReader(frame), 0).Next()
		if err != nil || h.ID != c.id || h.Status != c.status || h.Seq != 9 {
			t.Fatalf("%s: %+v %v", c.id, h, err)
		}
		got, err := DecodeResponseID(body)
		if err != nil || got != c.want {
			t.Fatalf("%s: id %q %v, want %q", c.id, got, err, c.want)
		}
	}
}

func frameOf(id pdu.ID, seq uint32, body []byte) []byte {
	b := appendHeader(nil, uint32(HeaderLen+len(body)), id, 0, seq)
	return append(b, body...)
}

func TestDecodeBad(t *testing.T) {
	good := sampleMessage()
	frame, _ := AppendMessage(nil, DeliverSM, 1, &good)
	body := frame[HeaderLen:]
	smEnd := len(body) - (4 + 2) - (4 + 7) // body without its two TLVs
	for _, c := range []struct {
		name string
		body []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"cut in a C-string", body[:3], ErrTruncated},
		{"cut before short_message", body[:smEnd-5], ErrTruncated},
		{"sm_length past the end", append(append([]byte{}, body[:smEnd-11]...), 200), ErrTruncated},
		{"TLV header cut", append(append([]byte{}, body[:smEnd]...), 0x02, 0x0c, 0x00), ErrBadTLV},
		{"TLV value cut", append(append([]byte{}, body[:smEnd]...), 0x04, 0x24, 0x00, 0x09, 'a'), ErrBadTLV},
	} {
		_, err := DecodeMessage(c.body)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if StatusFor(err) == StatusOK {
			t.Errorf("%s: no status for %v", c.name, err)
		}
	}
	if StatusFor(ErrTruncated) != StatusInvCmdLen || !NackOnDecode(ErrTruncated) {
		t.Error("truncated body is not a generic_nack with ESME_RINVCMDLEN")
	}
	if StatusFor(ErrBadTLV) != StatusInvOptParamStream || NackOnDecode(ErrBadTLV) {
		t.Error("bad TLV is not answered with ESME_RINVOPTPARSTREAM")
	}
}

func TestReaderBadLength(t *testing.T) {
	var stream []byte
	// Too long: the reader skips it and goes on.
	long := make([]byte, 100)
	stream = append(stream, frameOf(DeliverSM, 1, long)...)
	stream = append(stream, frameOf(EnquireLink, 2, nil)...)
	// Too short: the stream is lost.
	stream = binary.BigEndian.AppendUint32(stream, 8)
	stream = append(stream, make([]byte, 12)...)
	r := NewReader(bytes.NewReader(stream), 64)

	_, _, err := r.Next()
	var fe *FrameError
	if !errors.As(err, &fe) || fe.Fatal || fe.Status != StatusInvCmdLen || fe.Header.Seq != 1 {
		t.Fatalf("long PDU: %v", err)
	}
	h, _, err := r.Next()
	if err != nil || h.ID != EnquireLink || h.Seq != 2 {
		t.Fatalf("PDU after the long one: %+v %v", h, err)
	}
	_, _, err = r.Next()
	if !errors.As(err, &fe) || !fe.Fatal {
		t.Fatalf("short PDU: %v", err)
	}

	// A body cut by the end of the stream is the stream's error.
	cut := frameOf(SubmitSM, 3, []byte("abcdef"))
	_, _, err = NewReader(bytes.NewReader(cut[:len(cut)-2]), 0).Next()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut body: %v", err)
	}
}

func TestAppendRefuses(t *testing.T) {
	m := sampleMessage()
	m.ShortMessage = make([]byte, MaxShortMessage+1)
	if _, err := AppendMessage(nil, SubmitSM, 1, &m); !errors.Is(err, ErrFieldValue) {
		t.Fatalf("255-byte short_message: %v", err)
	}
	m = sampleMessage()
	m.Dest = "1234567890123456789012"
	if _, err := AppendMessage(nil, SubmitSM, 1, &m); !errors.Is(err, ErrFieldValue) {
		t.Fatalf("22-digit destination: %v", err)
	}
	m = sampleMessage()
	m.Source = "a\x00b"
	if _, err := AppendMessage(nil, SubmitSM, 1, &m); !errors.Is(err, ErrFieldValue) {
		t.Fatalf("NUL in source: %v", err)
	}
	if _, err := AppendMessage(nil, EnquireLink, 1, &m); err == nil {
		t.Fatal("enquire_link with a message body")
	}
}

func TestDataSM(t *testing.T) {
	var body []byte
	body = append(body, "\x00"...)                        // service_type
	body = append(body, 1, 1)                             // source TON/NPI
	body = append(body, "15551230001\x00"...)             // source
	body = append(body, 1, 1)                             // dest TON/NPI
	body = append(body, "15551230002\x00"...)             // dest
	body = append(body, 0, 0, 0)                          // esm_class, registered_delivery, data_coding
	body = append(body, 0x04, 0x24, 0x00, 0x02, 'h', 'i') // message_payload
	m, err := DecodeDataSM(body)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := m.TLV(TagMessagePayload); !ok || string(p) != "hi" || m.Source != "15551230001" {
		t.Fatalf("%+v", m)
	}
	if _, err := DecodeDataSM(body[:10]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut data_sm: %v", err)
	}
}

func TestTemporary(t *testing.T) {
	for s, want := range map[pdu.Status]bool{
		StatusThrottled: true, StatusMsgQFul: true, StatusTempAppError: true,
		StatusInvDstAdr: false, StatusPermAppError: false, StatusOK: false,
	} {
		if Temporary(s) != want {
			t.Errorf("Temporary(%#x) = %v", uint32(s), !want)
		}
	}
	var m Message
	m.SetTLV(pdutlv.TagSarMsgRefNum, []byte{1})
	m.SetTLV(pdutlv.TagSarMsgRefNum, []byte{2})
	if v, _ := m.TLV(pdutlv.TagSarMsgRefNum); len(m.TLVs) != 1 || v[0] != 2 {
		t.Fatalf("SetTLV twice: %+v", m.TLVs)
	}
}

// codecAppend encodes m with go-smpp's codec (pdu.NewSubmitSM and its
// field maps), the reference AppendMessage's direct writer must match.
func codecAppend(t testing.TB, id pdu.ID, seq uint32, m *Message) []byte {
	t.Helper()
	p := pdu.NewSubmitSM(nil)
	h := p.Header()
	h.ID, h.Seq = id, seq
	f := p.Fields()
	for _, s := range []struct {
		k pdufield.Name
		v any
	}{
		{pdufield.ServiceType, m.ServiceType},
		{pdufield.SourceAddrTON, m.SourceTON},
		{pdufield.SourceAddrNPI, m.SourceNPI},
		{pdufield.SourceAddr, m.Source},
		{pdufield.DestAddrTON, m.DestTON},
		{pdufield.DestAddrNPI, m.DestNPI},
		{pdufield.DestinationAddr, m.Dest},
		{pdufield.ESMClass, m.ESMClass},
		{pdufield.ProtocolID, m.ProtocolID},
		{pdufield.PriorityFlag, m.Priority},
		{pdufield.ScheduleDeliveryTime, m.ScheduleDeliveryTime},
		{pdufield.ValidityPeriod, m.ValidityPeriod},
		{pdufield.RegisteredDelivery, m.RegisteredDelivery},
		{pdufield.ReplaceIfPresentFlag, m.ReplaceIfPresent},
		{pdufield.DataCoding, m.DataCoding},
		{pdufield.SMDefaultMsgID, m.DefaultMsgID},
		{pdufield.ShortMessage, m.ShortMessage},
	} {
		if err := f.Set(s.k, s.v); err != nil {
			t.Fatal(err)
		}
	}
	// One TLV at most: the codec writes its TLV map in random order.
	for _, tlv := range m.TLVs[:min(1, len(m.TLVs))] {
		p.TLVFields().Set(tlv.Tag, tlv.Value)
	}
	var b bytes.Buffer
	if err := p.SerializeTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestAppendMatchesCodec(t *testing.T) {
	full := sampleMessage()
	full.TLVs = full.TLVs[:1]
	full.ServiceType, full.ScheduleDeliveryTime, full.ValidityPeriod = "WAP", "261126064000000+", "000001000000000R"
	full.ProtocolID, full.Priority, full.ReplaceIfPresent, full.DefaultMsgID = 1, 2, 1, 3
	for _, m := range []Message{{}, full, {Source: "MIMI", SourceTON: 5, Dest: "447700900123", ShortMessage: make([]byte, MaxShortMessage)}} {
		for _, id := range []pdu.ID{SubmitSM, DeliverSM} {
			got, err := AppendMessage(nil, id, 99, &m)
			if err != nil {
				t.Fatal(err)
			}
			if want := codecAppend(t, id, 99, &m); !bytes.Equal(got, want) {
				t.Fatalf("%s %+v:\n got % x\nwant % x", id, m, got, want)
			}
		}
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	m := sampleMessage()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendMessage(buf[:0], SubmitSM, 1, &m)
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	m := sampleMessage()
	frame, _ := AppendMessage(nil, DeliverSM, 1, &m)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessage(frame[HeaderLen:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReader(b *testing.B) {
	m := sampleMessage()
	frame, _ := AppendMessage(nil, DeliverSM, 1, &m)
	stream := bytes.Repeat(frame, 1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	r := NewReader(bytes.NewReader(nil), 0)
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			r = NewReader(bytes.NewReader(stream), 0)
		}
		if _, _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}
