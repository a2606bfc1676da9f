package mls

import (
	"encoding/base64"
	"slices"
	"strconv"

	"github.com/thomas-vilte/mls-go/secrettree"
)

// appendJSON appends the record as encoding/json encodes it, byte for
// byte, without reflection: the ratchet record is written after every
// message sent or received. A test holds the two encodings equal and
// fails when mls-go's tree state changes shape.
func (r *ratchetRecord) appendJSON(b []byte) []byte {
	b = append(b, `{"epoch_id":`...)
	b = appendJSONBytes(b, r.EpochID)
	if r.Tree != nil {
		b = append(b, `,"tree":`...)
		b = appendTreeJSON(b, r.Tree)
	}
	if len(r.Seen) > 0 {
		b = append(b, `,"seen":{`...)
		for i, leaf := range sortedKeys(r.Seen) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONKey(b, leaf)
			w := r.Seen[leaf]
			if w == nil {
				b = append(b, "null"...)
				continue
			}
			b = append(b, `{"max":`...)
			b = strconv.AppendUint(b, uint64(w.Max), 10)
			b = append(b, `,"bits":`...)
			b = appendJSONBytes(b, w.Bits)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendTreeJSON(b []byte, t *secrettree.TreeState) []byte {
	b = append(b, `{"encryption_secret":`...)
	b = appendJSONBytes(b, t.EncryptionSecret)
	b = append(b, `,"leaf_count":`...)
	b = strconv.AppendUint(b, uint64(t.LeafCount), 10)
	b = append(b, `,"generation":`...)
	b = strconv.AppendUint(b, t.Generation, 10)
	if len(t.LeafStates) > 0 {
		b = append(b, `,"leaf_states":{`...)
		for i, leaf := range sortedKeys(t.LeafStates) {
			if i > 0 {
				b = append(b, ',')
			}
			s := t.LeafStates[leaf]
			b = appendJSONKey(b, leaf)
			b = append(b, `{"generation":`...)
			b = strconv.AppendUint(b, s.Generation, 10)
			b = append(b, `,"sequence_number":`...)
			b = strconv.AppendUint(b, s.SequenceNumber, 10)
			b = append(b, `,"leaf_secret":`...)
			b = appendJSONBytes(b, s.LeafSecret)
			b = append(b, `,"application_secret":`...)
			b = appendJSONBytes(b, s.ApplicationSecret)
			b = append(b, `,"handshake_secret":`...)
			b = appendJSONBytes(b, s.HandshakeSecret)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// sortedKeys orders a map's integer keys as encoding/json does: by their
// decimal strings.
func sortedKeys[V any](m map[uint32]V) []uint32 {
	keys := make([]uint32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b uint32) int {
		var x, y [10]byte
		return slices.Compare(strconv.AppendUint(x[:0], uint64(a), 10), strconv.AppendUint(y[:0], uint64(b), 10))
	})
	return keys
}

func appendJSONKey(b []byte, k uint32) []byte {
	b = append(b, '"')
	b = strconv.AppendUint(b, uint64(k), 10)
	return append(b, '"', ':')
}

// appendJSONBytes appends a byte string as encoding/json does: base64 in
// quotes, or null for nil.
func appendJSONBytes(b, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}
