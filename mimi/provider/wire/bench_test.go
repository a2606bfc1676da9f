package wire

import "testing"

// The hot paths: a follower reads every FanoutMessage a hub sends, a hub
// reads every submitted message and writes a FanoutMessage per follower.

func BenchmarkUnmarshalFanoutMessage(b *testing.B) {
	m := mustReal(b)
	in, err := (&FanoutMessage{Timestamp: 1, Message: m.app, Frank: goldenFrankValue()}).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := UnmarshalFanoutMessage(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalFanoutMessage(b *testing.B) {
	m := mustReal(b)
	f := &FanoutMessage{Timestamp: 1, Message: m.app, Frank: goldenFrankValue()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalSubmitMessageRequest(b *testing.B) {
	m := mustReal(b)
	in, err := (&SubmitMessageRequest{Protocol: MLS10, AppMessage: m.app, SendingURI: gAlice}).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := UnmarshalSubmitMessageRequest(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalNotifyCommit(b *testing.B) {
	m := mustReal(b)
	in, err := MarshalNotify(&FanoutMessage{Timestamp: 1, Message: m.updateCommit},
		&FanoutMessage{Timestamp: 2, Message: m.addProposal, MoreProposals: [][]byte{m.removeProposal}},
		&FanoutMessage{Timestamp: 3, Message: m.app})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := UnmarshalNotify(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInspectMLSMessage(b *testing.B) {
	m := mustReal(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(m.updateCommit)))
	for b.Loop() {
		if _, err := InspectMLSMessage(m.updateCommit); err != nil {
			b.Fatal(err)
		}
	}
}
