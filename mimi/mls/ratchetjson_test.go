package mls

import (
	"bytes"
	"encoding/json"
	mrand "math/rand/v2"
	"reflect"
	"testing"

	"github.com/thomas-vilte/mls-go/secrettree"
)

// The ratchet record's own encoder writes what encoding/json writes, for
// records empty, nil-filled and full, with keys that sort differently as
// numbers and as strings.
func TestRatchetRecordJSON(t *testing.T) {
	rnd := mrand.New(mrand.NewPCG(1, 2))
	bytesOf := func() []byte {
		switch rnd.IntN(4) {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		b := make([]byte, rnd.IntN(70))
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	keys := []uint32{0, 1, 2, 9, 10, 11, 100, 1 << 31, ^uint32(0)}
	records := []ratchetRecord{{}, {EpochID: []byte{}}, {Tree: &secrettree.TreeState{}},
		{Seen: map[uint32]*window{3: nil}}}
	for range 300 {
		r := ratchetRecord{EpochID: bytesOf()}
		if rnd.IntN(5) > 0 {
			r.Tree = &secrettree.TreeState{EncryptionSecret: bytesOf(), LeafCount: rnd.Uint32(), Generation: rnd.Uint64()}
			if n := rnd.IntN(5); n > 0 {
				r.Tree.LeafStates = map[uint32]secrettree.LeafState{}
				for range n {
					r.Tree.LeafStates[keys[rnd.IntN(len(keys))]] = secrettree.LeafState{Generation: rnd.Uint64(),
						SequenceNumber: rnd.Uint64(), LeafSecret: bytesOf(), ApplicationSecret: bytesOf(), HandshakeSecret: bytesOf()}
				}
			} else if rnd.IntN(2) == 0 {
				r.Tree.LeafStates = map[uint32]secrettree.LeafState{}
			}
		}
		if n := rnd.IntN(4); n > 0 {
			r.Seen = map[uint32]*window{}
			for range n {
				w := &window{Max: rnd.Uint32()}
				w.mark(w.Max)
				if rnd.IntN(4) == 0 {
					w = &window{Max: rnd.Uint32(), Bits: bytesOf()}
				}
				r.Seen[keys[rnd.IntN(len(keys))]] = w
			}
		}
		records = append(records, r)
	}
	for i, r := range records {
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		got := r.appendJSON([]byte("x"))[1:]
		if !bytes.Equal(got, want) {
			t.Fatalf("record %d:\n got %s\nwant %s", i, got, want)
		}
		var back ratchetRecord
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("record %d does not decode: %v", i, err)
		}
	}
	// Fields the encoder does not know would be lost from stored state.
	for _, c := range []struct {
		v      any
		fields int
	}{{ratchetRecord{}, 3}, {secrettree.TreeState{}, 4}, {secrettree.LeafState{}, 5}, {window{}, 2}} {
		if n := reflect.TypeOf(c.v).NumField(); n != c.fields {
			t.Errorf("%T has %d fields, the ratchet record encoder knows %d", c.v, n, c.fields)
		}
	}
}

// A ratchet record sealed through the pooled buffer opens to the record,
// one written after a larger one too.
func TestSealRatchetRecord(t *testing.T) {
	seal, err := newSealer(bytes.Repeat([]byte{7}, stateKeySize))
	if err != nil {
		t.Fatal(err)
	}
	s := &kvStore{bucket: "b", seal: seal}
	big := &ratchetRecord{EpochID: bytes.Repeat([]byte{1}, 2000)}
	small := &ratchetRecord{EpochID: []byte{2}, Seen: map[uint32]*window{1: {Max: 5, Bits: []byte{1}}}}
	for _, r := range []*ratchetRecord{big, small, big} {
		blob, err := s.sealRecord("k", r)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := seal.open("b", "k", blob)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(r)
		if !bytes.Equal(pt, want) {
			t.Fatalf("sealed %s, want %s", pt, want)
		}
	}
}
