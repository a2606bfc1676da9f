package mls

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Store errors callers of kvStore branch on.
var (
	errNotFound = errors.New("mls: record not found")
	errConflict = errors.New("mls: record changed concurrently")
)

// kvStore keeps sealed JSON records in one JetStream key-value bucket. Every
// write that replaces a record names the revision it replaces, so a writer
// working from stale state fails instead of overwriting newer state.
type kvStore struct {
	kv     jetstream.KeyValue
	bucket string
	seal   *sealer
	m      *metrics
	// js, when set, takes the replacing writes directly (see update), on
	// the bucket's subjects: subjects, then the key.
	js       jetstream.JetStream
	subjects string
}

func openKV(ctx context.Context, open func(context.Context, jetstream.KeyValueConfig) (jetstream.KeyValue, error), cfg StateConfig) (jetstream.KeyValue, error) {
	kv, err := open(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "mimigw MLS clients: identities, KeyPackages, group state (sealed)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("mls: open bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// get opens the record under key into v and returns its revision.
func (s *kvStore) get(ctx context.Context, key string, v any) (uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return 0, fmt.Errorf("%w: %s", errNotFound, key)
		}
		return 0, fmt.Errorf("mls: read %s: %w", key, err)
	}
	pt, err := s.seal.open(s.bucket, key, e.Value())
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(pt, v); err != nil {
		return 0, fmt.Errorf("mls: decode %s: %w", key, err)
	}
	return e.Revision(), nil
}

// write stores v under key. rev 0 creates the key and fails with
// errConflict if it exists; any other rev replaces exactly that revision.
func (s *kvStore) write(ctx context.Context, key string, v any, rev uint64) (uint64, error) {
	blob, err := s.sealRecord(key, v)
	if err != nil {
		return 0, err
	}
	var n uint64
	if rev == 0 {
		n, err = s.kv.Create(ctx, key, blob)
	} else {
		n, err = s.update(ctx, key, blob, rev)
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			s.m.storeConflicts.Inc()
			return 0, fmt.Errorf("%w: %s", errConflict, key)
		}
		return 0, fmt.Errorf("mls: write %s: %w", key, err)
	}
	s.m.storeWrites.Inc()
	s.m.storeBytes.Add(float64(len(blob)))
	return n, nil
}

// sealRecord encodes v as JSON and seals it for key. The ratchet record,
// written after every message, has an encoder of its own, and its
// plaintext (secrets) is encoded into a pooled buffer that is cleared
// once sealed.
func (s *kvStore) sealRecord(key string, v any) ([]byte, error) {
	r, ok := v.(*ratchetRecord)
	if !ok {
		pt, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("mls: encode %s: %w", key, err)
		}
		return s.seal.seal(s.bucket, key, pt)
	}
	bp := plainBuffers.Get().(*[]byte)
	pt := r.appendJSON((*bp)[:0])
	blob, err := s.seal.seal(s.bucket, key, pt)
	clear(pt)
	*bp = pt[:0]
	plainBuffers.Put(bp)
	return blob, err
}

var plainBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// update replaces revision rev of key with blob. It is the write made
// for every message (the ratchet record), so it goes to the bucket's
// subject with the expected revision as a header, as the client's Update
// does, without the client's per-call key pattern match and options: the
// keys are this package's own (named below) and always valid.
func (s *kvStore) update(ctx context.Context, key string, blob []byte, rev uint64) (uint64, error) {
	if s.js == nil {
		return s.kv.Update(ctx, key, blob, rev)
	}
	m := &nats.Msg{Subject: s.subjects + key, Data: blob,
		Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(rev, 10)}}}
	ack, err := s.js.PublishMsg(ctx, m)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, fmt.Errorf("%w: %w", err, jetstream.ErrKeyRevisionMismatch)
		}
		return 0, err
	}
	return ack.Sequence, nil
}

// put stores v under key whatever is there.
func (s *kvStore) put(ctx context.Context, key string, v any) (uint64, error) {
	blob, err := s.sealRecord(key, v)
	if err != nil {
		return 0, err
	}
	n, err := s.kv.Put(ctx, key, blob)
	if err != nil {
		return 0, fmt.Errorf("mls: write %s: %w", key, err)
	}
	s.m.storeWrites.Inc()
	s.m.storeBytes.Add(float64(len(blob)))
	return n, nil
}

func (s *kvStore) del(ctx context.Context, key string) error {
	if err := s.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("mls: delete %s: %w", key, err)
	}
	return nil
}

// keys lists the keys matching a subject-style filter such as "user.*".
func (s *kvStore) keys(ctx context.Context, filter string) ([]string, error) {
	l, err := s.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("mls: list %s: %w", filter, err)
	}
	defer l.Stop()
	var out []string
	for k := range l.Keys() {
		out = append(out, k)
	}
	return out, nil
}

// Key names. Identifiers are hashed: MIMI URIs and group IDs hold characters
// NATS subjects do not allow, and hashing bounds the key length.
func userKey(uri string) string { return "user." + nameHash(uri) }
func poolKey(uri string) string { return "pool." + nameHash(uri) }
func kpKey(ref []byte) string   { return "kp." + hex.EncodeToString(ref) }
func headKey(gk string) string  { return "head." + gk }
func leaseKey(gk string) string { return "lease." + gk }
func ratchetKey(gk string, epoch uint64) string {
	return "ratchet." + gk + "." + strconv.FormatUint(epoch, 10)
}
func pastKey(gk string, epoch uint64) string {
	return "past." + gk + "." + strconv.FormatUint(epoch, 10)
}

func nameHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:16])
}

// groupKeyOf names one user's view of one group: two phone users of the
// gateway in the same room hold two independent MLS clients of that group.
// It is computed for every operation on a group, so the usual sizes
// hash from the stack.
func groupKeyOf(user string, groupID []byte) string {
	var buf [256]byte
	b := binary.BigEndian.AppendUint32(buf[:0], uint32(len(user)))
	b = append(b, user...)
	b = append(b, groupID...)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}
