package transport

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

// Reload changes the peers on both sides while running: a peer removed
// from the server is refused (403), added again it is served; a client
// whose peer was removed cannot call it, added again it can. A change of
// domain is refused and changes nothing.
func TestReloadPeers(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	scfg := serverConfig(p)
	calls := 0
	srv := startServer(t, scfg, map[Endpoint]Handler{
		Notify: func(context.Context, *Request) Response { calls++; return Response{Status: http.StatusCreated} },
	})
	ccfg := clientConfig(p, baseURL(srv))
	c := newTestClient(t, ccfg)
	notify := func() int {
		t.Helper()
		status, _, err := c.Do(context.Background(), gwDomain, Notify, "mimi://gw.test/r/x", []byte{1})
		if err != nil && !errors.Is(err, ErrUnknownPeer) {
			t.Fatal(err)
		}
		return status
	}
	if got := notify(); got != http.StatusCreated {
		t.Fatalf("before reload: %d", got)
	}

	without := scfg
	without.Peers = []Peer{{Domain: otherDomain, URL: "https://127.0.0.1:1"}}
	if err := srv.Reload(without); err != nil {
		t.Fatal(err)
	}
	if got := notify(); got != http.StatusForbidden {
		t.Errorf("peer removed from the server: %d, want 403", got)
	}
	if err := srv.Reload(scfg); err != nil {
		t.Fatal(err)
	}
	if got := notify(); got != http.StatusCreated {
		t.Errorf("peer added again: %d, want 201", got)
	}

	noPeers := ccfg
	noPeers.Peers = nil
	if err := c.Reload(noPeers); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Do(context.Background(), gwDomain, Notify, "x", nil); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("client without the peer: %v, want ErrUnknownPeer", err)
	}
	if len(c.Peers()) != 0 {
		t.Errorf("Peers() = %v", c.Peers())
	}
	if err := c.Reload(ccfg); err != nil {
		t.Fatal(err)
	}
	if got := notify(); got != http.StatusCreated {
		t.Errorf("client with the peer again: %d, want 201", got)
	}

	other := scfg
	other.Domain = otherDomain
	other.CertFile, other.KeyFile = p.issue(otherDomain)
	if err := srv.Reload(other); err == nil {
		t.Error("the server's domain changed on reload")
	}
	if got := notify(); got != http.StatusCreated {
		t.Errorf("after a refused reload: %d, want 201", got)
	}
	if calls != 4 {
		t.Errorf("handler called %d times, want 4 (the refused requests never reach it)", calls)
	}
}
