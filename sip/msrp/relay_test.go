package msrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimigw/mimigw/sip/msrp/relaytest"
)

// reports keeps the REPORTs a session gets.
type reports struct {
	mu     sync.Mutex
	frames []*Frame
}

func (r *reports) add(f *Frame) {
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

func (r *reports) delivered() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make(map[string]int)
	for _, f := range r.frames {
		if f.Status != nil {
			ids[f.MessageID] = f.Status.Code
		}
	}
	return ids
}

// A client behind Kamailio's relay: it AUTHs and gets a Use-Path, puts it
// in front of its own URI, and talks to a peer that knows nothing of the
// relay but the path. Ten messages and a 20 KB one (two chunks) go each
// way intact and in order; the relay opens the onward connection to the
// peer, and the peer's messages come back over the client's AUTH
// connection. The end-to-end Success-Reports cross the relay too.
func TestRelayKamailio(t *testing.T) {
	host, port, _ := net.SplitHostPort(relaytest.Start(t).Addr)
	pn, _ := strconv.Atoi(port)
	relay := URI{Host: host, Port: pn, Transport: "tcp"}
	gw, cl := newPeer(t, true, false), newPeer(t, false, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	r, err := cl.pool.Auth(ctx, RelayConfig{URI: relay, Expires: 120 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	use := r.UsePath()
	if len(use) != 1 || use[0].Authority() != relay.Authority() || use[0].SessionID == "" {
		t.Fatalf("Use-Path %v", use)
	}
	if left := time.Until(r.Expires()); left < 100*time.Second || left > 601*time.Second {
		t.Errorf("AUTH expires in %v", left)
	}

	gwIn, clIn := make(inbox, 64), make(inbox, 64)
	var clReports reports
	gwLocal, clLocal := gw.uri(), cl.uri()
	gs, err := gw.pool.NewSession(SessionConfig{Local: gwLocal, Remote: append(use, clLocal), Handler: gwIn.handle})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cl.pool.NewSession(SessionConfig{
		Local: clLocal, Remote: append(use, gwLocal), Relay: r, Handler: clIn.handle,
		SuccessReport: ReportYes, Reports: clReports.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if cl.pool.Conns() != 1 {
		t.Errorf("client has %d connections, want its AUTH connection only", cl.pool.Conns())
	}

	large := testBody(20000)
	bodies := make([][]byte, 0, 11)
	for i := range 10 {
		bodies = append(bodies, fmt.Appendf(nil, "message %d through the relay", i))
	}
	bodies = append(bodies, large)
	for _, b := range bodies {
		if err := cs.Send(ctx, "message/cpim", b); err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range bodies {
		m := gwIn.next(t)
		if !bytes.Equal(m.Body, b) {
			t.Fatalf("gateway message %d: %d bytes, want %d", i, len(m.Body), len(b))
		}
		if n := len(m.Last.FromPath); n != 2 || m.Last.FromPath[0].SessionID != use[0].SessionID {
			t.Fatalf("gateway message %d: From-Path %v, want the relay then the client", i, m.Last.FromPath)
		}
		if len(b) == len(large) && m.Last.ByteRange != (ByteRange{DefaultChunkSize + 1, 20000, 20000}) {
			t.Fatalf("large message: last chunk %v, want it in two chunks", m.Last.ByteRange)
		}
	}
	for _, b := range bodies {
		if err := gs.Send(ctx, "message/cpim", b); err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range bodies {
		if m := clIn.next(t); !bytes.Equal(m.Body, b) {
			t.Fatalf("client message %d: %d bytes, want %d", i, len(m.Body), len(b))
		}
	}
	// Success-Reports travel end to end, after the gateway's Handler took
	// each message.
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		got := clReports.delivered()
		if len(got) != len(bodies) {
			return fmt.Errorf("%d success reports, want %d", len(got), len(bodies))
		}
		for id, code := range got {
			if code != 200 {
				return fmt.Errorf("report for %s: %d", id, code)
			}
		}
		return nil
	})
	// The relay opened one connection to the gateway and carried
	// everything on it.
	if n := gw.pool.Conns(); n != 1 {
		t.Errorf("gateway has %d connections, want the relay's", n)
	}
	cs.Close()
	gs.Close()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// scriptedRelay accepts one connection and answers each AUTH with the
// next of answers (a response template: its paths and TID are filled in).
func scriptedRelay(t *testing.T, answers ...Frame) (URI, <-chan *Frame, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan *Frame, len(answers)+1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r := NewReader(nc, Limits{})
		for _, a := range answers {
			f, err := r.Next()
			if err != nil {
				return
			}
			got <- f
			res := a
			res.TID, res.ToPath, res.FromPath, res.Flag = f.TID, f.FromPath[:1], f.ToPath[:1], FlagEnd
			if _, err := res.WriteTo(nc); err != nil {
				return
			}
		}
		// Keep the connection until the client goes.
		_, _ = r.Next()
	}()
	return URI{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Transport: "tcp"}, got, ln
}

// Two clients, each behind a Kamailio relay of its own (RFC 4976 section
// 6: both endpoints use relays): each AUTHs to its relay, and its To-Path
// is its relay's Use-Path, then the peer's a=path (the peer's relay, then
// the peer): three hops. Messages, a 20 KB one in two chunks among them,
// cross both relays each way intact and in order, their From-Path naming
// both relays, and both relays log every frame as relayed.
func TestRelayKamailioTwoRelays(t *testing.T) {
	relays := []*relaytest.Relay{relaytest.Start(t), relaytest.Start(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	peers := []*testPeer{newPeer(t, false, false), newPeer(t, false, false)}
	auths := make([]*Relay, 2)
	locals := []URI{peers[0].uri(), peers[1].uri()}
	paths := make([][]URI, 2) // each client's a=path: its Use-Path, then itself
	for i, r := range relays {
		host, port, _ := net.SplitHostPort(r.Addr)
		pn, _ := strconv.Atoi(port)
		a, err := peers[i].pool.Auth(ctx, RelayConfig{URI: URI{Host: host, Port: pn, Transport: "tcp"}, Expires: 120 * time.Second})
		if err != nil {
			t.Fatalf("AUTH to relay %d: %v", i, err)
		}
		auths[i], paths[i] = a, append(a.UsePath(), locals[i])
	}
	ins := []inbox{make(inbox, 64), make(inbox, 64)}
	sessions := make([]*Session, 2)
	for i := range 2 {
		other := 1 - i
		remote := append(append([]URI{}, auths[i].UsePath()...), paths[other]...)
		s, err := peers[i].pool.NewSession(SessionConfig{Local: locals[i], Remote: remote, Relay: auths[i], Handler: ins[i].handle})
		if err != nil {
			t.Fatal(err)
		}
		if len(remote) != 3 {
			t.Fatalf("To-Path %v, want three hops", remote)
		}
		sessions[i] = s
	}
	for _, s := range sessions {
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	bodies := [][]byte{[]byte("first across two relays"), testBody(20000), []byte("last")}
	for from := range 2 {
		to := 1 - from
		for _, b := range bodies {
			if err := sessions[from].Send(ctx, "message/cpim", b); err != nil {
				t.Fatalf("client %d: %v", from, err)
			}
		}
		for i, b := range bodies {
			m := ins[to].next(t)
			if !bytes.Equal(m.Body, b) {
				t.Fatalf("client %d's message %d: %d bytes at client %d, want %d", from, i, len(m.Body), to, len(b))
			}
			if n := len(m.Last.FromPath); n != 3 {
				t.Errorf("client %d's message %d: From-Path %v, want both relays and the sender", from, i, m.Last.FromPath)
			}
		}
	}
	for i, r := range relays {
		if n := r.CheckClean(t); n < 8 {
			t.Errorf("relay %d relayed %d SENDs, want at least the eight chunks", i, n)
		}
	}
}

// The AUTH is renewed once four fifths of its lifetime passed; the
// Use-Path the renewal brings is what new sessions get.
func TestRelayRenewsAuth(t *testing.T) {
	t.Parallel()
	first := URI{Host: "127.0.0.1", Port: 1, SessionID: "one", Transport: "tcp"}
	second := URI{Host: "127.0.0.1", Port: 1, SessionID: "two", Transport: "tcp"}
	uri, got, _ := scriptedRelay(t,
		Frame{Code: 200, Comment: "OK", UsePath: []URI{first}, Expires: 1},
		Frame{Code: 200, Comment: "OK", UsePath: []URI{second}, Expires: 600},
	)
	cl := newPeer(t, false, false)
	r, err := cl.pool.Auth(ctxT(t), RelayConfig{URI: uri, Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if f := <-got; f.Method != MethodAUTH || f.Expires != 60 || len(f.ToPath) != 1 || f.ToPath[0].Authority() != uri.Authority() {
		t.Fatalf("first AUTH %+v", f)
	}
	select {
	case f := <-got:
		if f.Method != MethodAUTH {
			t.Fatalf("renewal %+v", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no renewal")
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if u := r.UsePath(); len(u) != 1 || u[0].SessionID != "two" {
			return fmt.Errorf("Use-Path %v after renewal", u)
		}
		return nil
	})
	if time.Until(r.Expires()) < 500*time.Second {
		t.Errorf("expires in %v after renewal", time.Until(r.Expires()))
	}
}

// A Digest challenge, a refusal and a 200 without Use-Path fail Auth with
// what the relay said; a lost connection ends the relay.
func TestRelayAuthFailures(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		answer Frame
		want   string
	}{
		"challenge":   {Frame{Code: 401, Comment: "Unauthorized", WWWAuthenticate: `Digest realm="r", nonce="n"`}, "Digest challenge"},
		"refused":     {Frame{Code: 403, Comment: "Forbidden"}, "403 Forbidden"},
		"no use-path": {Frame{Code: 200, Comment: "OK", Expires: 600}, "without a Use-Path"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			uri, _, _ := scriptedRelay(t, tc.answer)
			cl := newPeer(t, false, false)
			_, err := cl.pool.Auth(ctxT(t), RelayConfig{URI: uri})
			if err == nil || !errors.Is(err, ErrRelay) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Auth: %v, want ErrRelay with %q", err, tc.want)
			}
		})
	}
	t.Run("connection lost", func(t *testing.T) {
		t.Parallel()
		uri, _, ln := scriptedRelay(t, Frame{Code: 200, Comment: "OK", UsePath: []URI{{Host: "127.0.0.1", Port: 1, SessionID: "s", Transport: "tcp"}}, Expires: 600})
		cl := newPeer(t, false, false)
		r, err := cl.pool.Auth(ctxT(t), RelayConfig{URI: uri})
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		r.conn.Close() // as when the relay goes away
		select {
		case <-r.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("relay still up after its connection closed")
		}
		if !errors.Is(r.Err(), ErrRelay) {
			t.Errorf("Err %v", r.Err())
		}
		if _, err := cl.pool.NewSession(SessionConfig{Local: cl.uri(), Remote: []URI{uri}, Relay: r}); err == nil {
			t.Error("a session through an ended relay was set up")
		}
	})
}
