package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/provider/wire"
)

// roomRecord is what the gateway knows of one room it takes part in,
// stored under room.<room URI in unpadded base64url>.
type roomRecord struct {
	Room string `json:"room"`
	// Hub is the domain of the provider hosting the room (the room URI's
	// domain): this gateway's own domain for rooms it created.
	Hub     string `json:"hub"`
	GroupID []byte `json:"group_id,omitempty"`
	// Local are this gateway's phone users in the room; each is an MLS
	// member of the group.
	Local []string `json:"local,omitempty"`
	// Followers are the other providers with members in a room this
	// gateway hosts, which get every message by notify.
	Followers []string `json:"followers,omitempty"`
	// Participants is the room's participant list as its group's
	// app_data_dictionary holds it (users, not clients); nil when the
	// group carries none.
	Participants wire.ParticipantList `json:"participants,omitempty"`
	// Creating names the instance setting the room up; the record is
	// complete when it is empty.
	Creating string    `json:"creating,omitempty"`
	Since    time.Time `json:"since"`
}

func roomKey(room string) string {
	return "room." + base64.RawURLEncoding.EncodeToString([]byte(room))
}

var errNoRoom = errors.New("provider: room unknown")

// rooms is the room bucket.
type rooms struct{ kv jetstream.KeyValue }

func openRooms(ctx context.Context, b *bus.Bus, bucket string) (*rooms, error) {
	kv, err := b.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "mimigw: MIMI rooms the gateway's phone users take part in",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(b.Config().Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("provider: bucket %s: %w", bucket, err)
	}
	return &rooms{kv: kv}, nil
}

// get returns the room's record and its revision, or errNoRoom.
func (r *rooms) get(ctx context.Context, room string) (*roomRecord, uint64, error) {
	e, err := r.kv.Get(ctx, roomKey(room))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, errNoRoom
	}
	if err != nil {
		return nil, 0, fmt.Errorf("provider: room %s: %w: %w", room, bus.ErrUnavailable, err)
	}
	var rec roomRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, 0, fmt.Errorf("provider: room %s: record: %w", room, err)
	}
	return &rec, e.Revision(), nil
}

// put writes rec over revision rev (0: the room must be new). A lost race
// comes back as bus.IsConflict.
func (r *rooms) put(ctx context.Context, rec *roomRecord, rev uint64) (uint64, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev, err = r.kv.Create(ctx, roomKey(rec.Room), b)
	} else {
		rev, err = r.kv.Update(ctx, roomKey(rec.Room), b, rev)
	}
	if err != nil {
		if bus.IsConflict(err) {
			return 0, err
		}
		return 0, fmt.Errorf("provider: room %s: %w: %w", rec.Room, bus.ErrUnavailable, err)
	}
	return rev, nil
}

// drop deletes the room's record if it is still at revision rev.
func (r *rooms) drop(ctx context.Context, room string, rev uint64) error {
	if err := r.kv.Delete(ctx, roomKey(room), jetstream.LastRevision(rev)); err != nil && !bus.IsConflict(err) {
		return fmt.Errorf("provider: room %s: %w: %w", room, bus.ErrUnavailable, err)
	}
	return nil
}

// update applies change to the room's record by compare-and-set, creating
// it from fresh when there is none, and retries lost races.
func (r *rooms) update(ctx context.Context, room string, fresh func() *roomRecord, change func(*roomRecord) error) (*roomRecord, error) {
	for range 10 {
		rec, rev, err := r.get(ctx, room)
		switch {
		case errors.Is(err, errNoRoom):
			rec, rev = fresh(), 0
		case err != nil:
			return nil, err
		}
		if err := change(rec); err != nil {
			return nil, err
		}
		if _, err := r.put(ctx, rec, rev); err == nil {
			return rec, nil
		} else if !bus.IsConflict(err) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("provider: room %s: %w: record keeps changing", room, bus.ErrUnavailable)
}

// hasLocal reports whether user is one of this gateway's members.
func (rec *roomRecord) hasLocal(user string) bool { return slices.Contains(rec.Local, user) }

func addUnique(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}
