package smpp

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mimigw/mimigw/smpp/wire"
)

// FuzzSession feeds arbitrary bytes from the SMSC side into a bound
// session (the frame reader, dispatch, MO decoding, reassembly and receipt
// handling) and reads back everything the session writes. It must never
// panic, every PDU it writes must be well formed, and every request in the
// input that it answers must be answered with a response to that request
// or a generic_nack.
func FuzzSession(f *testing.F) {
	mo := &wire.Message{SourceTON: 1, SourceNPI: 1, Source: "15551230002", DestTON: 1, DestNPI: 1, Dest: "15551230001", ShortMessage: []byte("hello")}
	deliver, _ := wire.AppendMessage(nil, wire.DeliverSM, 1, mo)
	part := *mo
	part.ESMClass = wire.ESMClassUDHI
	part.ShortMessage = []byte{6, 8, 4, 0x12, 0x34, 2, 1, 'h', 'i'}
	udh16, _ := wire.AppendMessage(nil, wire.DeliverSM, 2, &part)
	rcpt := *mo
	rcpt.ESMClass = wire.ESMClassReceipt
	rcpt.ShortMessage = []byte("id:0A1B sub:001 dlvrd:001 submit date:2611260640 done date:2611260641 stat:DELIVRD err:000 text:x")
	receiptFrame, _ := wire.AppendMessage(nil, wire.DeliverSM, 3, &rcpt)
	f.Add(deliver)
	f.Add(append(append(udh16, receiptFrame...), wire.AppendHeader(nil, wire.EnquireLink, 0, 4)...))
	f.Add(wire.AppendHeader(nil, 0x777, 0, 5))
	f.Add(wire.AppendHeader(nil, wire.SubmitSMResp, 0, 6))
	f.Add(wire.AppendHeader(nil, wire.Unbind, 0, 7))
	bad := wire.AppendHeader(nil, wire.DeliverSM, 0, 8)
	binary.BigEndian.PutUint32(bad, 9)
	f.Add(bad)
	f.Add(append(deliver[:len(deliver)-3:len(deliver)-3], 0x04, 0x24, 0x00))

	e, err := NewEdge(Config{
		SMSCs:         []SMSCConfig{{Name: "fuzz", Address: "127.0.0.1:1", SystemID: "gw", ResponseTimeout: time.Second}},
		MOConcurrency: 4,
	}, newMemReceiver(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		f.Fatal(err)
	}
	l := e.links[0]

	f.Fuzz(func(t *testing.T, stream []byte) { fuzzSession(t, l, stream) })
}

// fuzzSession runs one bound session over a pipe with stream as all the
// SMSC sends.
func fuzzSession(t *testing.T, l *smscLink, stream []byte) {
	ours, theirs := net.Pipe()
	s := newSession(l, ours, wire.BindTransceiver)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- s.run(ctx) }()

	// Everything the session writes, cut into PDUs.
	readDone := make(chan []wire.Header, 1)
	go func() {
		var got []wire.Header
		r := wire.NewReader(theirs, 0)
		for {
			h, _, err := r.Next()
			if err != nil {
				var fe *wire.FrameError
				if errors.As(err, &fe) {
					t.Errorf("session wrote a bad PDU: %v", fe)
				}
				readDone <- got
				return
			}
			got = append(got, h)
		}
	}()
	theirs.SetWriteDeadline(time.Now().Add(5 * time.Second))
	theirs.Write(stream)
	// Let the answers to what was read come out, then hang up.
	time.Sleep(time.Millisecond)
	theirs.Close()
	<-runDone
	for _, h := range <-readDone {
		if !h.IsResponse() && h.ID != wire.EnquireLink && h.ID != wire.Unbind {
			t.Errorf("session wrote request %s", h.ID)
		}
		if h.ID == wire.GenericNack && h.Status == wire.StatusOK {
			t.Errorf("generic_nack with status 0 (seq %d)", h.Seq)
		}
	}
}
