package admin

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/mimigw/mimigw/mimi/bus"
)

// busState is what the status page shows of the bus: the connection, the
// phone and timer streams with their consumers' lag, and how many
// delivery records the shards hold.
type busState struct {
	Err        string
	Status     string
	Server     string // the connected URL, without credentials
	ServerName string
	RTT        string
	Reconnects uint64
	Streams    []streamRow
	Consumers  []consumerRow
	Records    string
}

type streamRow struct {
	Name, Role      string
	Messages, Bytes uint64
	Consumers       int
	Last            string
}

type consumerRow struct {
	Stream, Name, Kind                        string
	Pending, AckPending, Redelivered, Waiting uint64
	LastDelivered                             string
}

// readBus asks the server about the streams the gateway uses. It bounds
// itself to two seconds: the page must come back while the bus is slow.
func readBus(ctx context.Context, b *bus.Bus) busState {
	var st busState
	nc := b.Conn()
	st.Status = nc.Status().String()
	st.Server = bus.RedactURL(nc.ConnectedUrlRedacted())
	st.ServerName = nc.ConnectedServerName()
	st.Reconnects = nc.Stats().Reconnects
	if !nc.IsConnected() {
		st.Err = "not connected"
		return st
	}
	if rtt, err := nc.RTT(); err == nil {
		st.RTT = rtt.Round(10 * time.Microsecond).String()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cfg := b.Config()
	js := b.JetStream()
	for _, s := range []struct{ name, role string }{
		{cfg.ToPhoneStream, "messages for phones (work queue)"},
		{cfg.FromPhoneStream, "messages and reports from phones"},
		{cfg.TimerStream, "delivery timers"},
	} {
		stream, err := js.Stream(ctx, s.name)
		if err != nil {
			st.Err = fmt.Sprintf("stream %s: %v", s.name, err)
			return st
		}
		info, err := stream.Info(ctx)
		if err != nil {
			st.Err = fmt.Sprintf("stream %s: %v", s.name, err)
			return st
		}
		row := streamRow{Name: s.name, Role: s.role, Messages: info.State.Msgs, Bytes: info.State.Bytes, Consumers: info.State.Consumers}
		if !info.State.LastTime.IsZero() && info.State.Msgs > 0 {
			row.Last = ago(time.Since(info.State.LastTime))
		}
		st.Streams = append(st.Streams, row)
		lister := stream.ListConsumers(ctx)
		for ci := range lister.Info() {
			kind := "ephemeral"
			if ci.Config.Durable != "" {
				kind = "durable"
			}
			c := consumerRow{Stream: s.name, Name: ci.Name, Kind: kind, Pending: ci.NumPending, AckPending: uint64(ci.NumAckPending),
				Redelivered: uint64(ci.NumRedelivered), Waiting: uint64(ci.NumWaiting)}
			if ci.Delivered.Last != nil {
				c.LastDelivered = ago(time.Since(*ci.Delivered.Last))
			}
			st.Consumers = append(st.Consumers, c)
		}
		if err := lister.Err(); err != nil {
			st.Err = fmt.Sprintf("consumers of %s: %v", s.name, err)
		}
	}
	var records uint64
	shards := max(cfg.DeliveriesShards, 1)
	for i := range shards {
		name := cfg.DeliveriesBucket
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		stream, err := js.Stream(ctx, "KV_"+name)
		if err != nil {
			st.Records = fmt.Sprintf("bucket %s: %v", name, err)
			return st
		}
		records += stream.CachedInfo().State.Msgs
	}
	st.Records = fmt.Sprintf("%d in %d shard(s) of %s, at most %d", records, shards, cfg.DeliveriesBucket, cfg.DeliveriesMaxRecords)
	return st
}

// ago says how long ago, rounded for reading.
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
}
