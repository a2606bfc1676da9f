package bus

import (
	"context"
	"time"
)

// SetLagTiming changes how long b's backlog gauges keep a read and how long
// a scrape waits for one in flight.
func SetLagTiming(b *Bus, cacheFor, wait time.Duration) {
	b.m.lag.mu.Lock()
	defer b.m.lag.mu.Unlock()
	b.m.lag.cacheFor, b.m.lag.wait = cacheFor, wait
}

// StallLagReads makes b's backlog reads wait for release before asking the
// server, as a server that does not answer would; it counts the reads
// started on reads.
func StallLagReads(b *Bus, release <-chan struct{}, reads chan<- struct{}) {
	b.m.lag.mu.Lock()
	defer b.m.lag.mu.Unlock()
	fetch := b.m.lag.fetch
	b.m.lag.fetch = func(ctx context.Context) lagSnapshot {
		reads <- struct{}{}
		<-release
		return fetch(ctx)
	}
}

// SetClock sets the clock b ages delivery records by.
func SetClock(b *Bus, now func() time.Time) { b.now = now }
