package transport

import (
	"context"
	"net/http"
	"testing"
)

// BenchmarkDo is one notify of 1 KiB from a Client to a Server over
// loopback, on a kept connection.
func BenchmarkDo(b *testing.B) {
	p := newPKI(b)
	created := func(context.Context, *Request) Response { return Response{Status: http.StatusCreated} }
	srv := startServer(b, serverConfig(p), map[Endpoint]Handler{Notify: created})
	c := newTestClient(b, clientConfig(p, baseURL(srv)))
	body := make([]byte, 1024)
	ctx := context.Background()
	if status, _, err := c.Do(ctx, gwDomain, Notify, "mimi://gw.test/r/dm-1", body); status != 201 || err != nil {
		b.Fatalf("warm-up: %d, %v", status, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if status, _, err := c.Do(ctx, gwDomain, Notify, "mimi://gw.test/r/dm-1", body); status != 201 || err != nil {
			b.Fatalf("%d, %v", status, err)
		}
	}
}
