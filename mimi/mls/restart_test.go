package mls

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestRestart stops everything (the gateway and the NATS server) between
// messages, starts again from the files on disk, and the group carries on:
// messages sent before the restart decrypt after it, including one from the
// epoch a commit closed just before the restart; new messages use new
// generations; nothing decrypts twice.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	keyFile := testKeyFile(t)
	ns := startNATS(t)
	p := openProvider(t, ns.js(t), testConfig(keyFile))
	a, b := mustClient(t, p, alice), mustClient(t, p, bob)
	gid := pair(t, p, false)

	send := func(c *Client, text string) (msg, ct []byte) {
		t.Helper()
		msg = mimiText(t, c.URI(), room, text)
		ct, err := c.Encrypt(ctx, gid, msg)
		if err != nil {
			t.Fatalf("%s encrypt: %v", c.URI(), err)
		}
		return msg, ct
	}
	recv := func(c *Client, ct, want []byte) {
		t.Helper()
		got, err := c.Decrypt(ctx, gid, ct)
		if err != nil {
			t.Fatalf("%s decrypt: %v", c.URI(), err)
		}
		if !bytes.Equal(got.Content, want) {
			t.Fatal("other bytes")
		}
	}

	m1, c1 := send(a, "1 before")
	recv(b, c1, m1)
	m2, c2 := send(b, "2 in flight across the restart")
	m3, c3 := send(a, "3 in flight across the restart")
	m5, c5 := send(b, "5 sent in an epoch that closes before the restart")
	cm, err := a.Commit(ctx, gid, Changes{})
	if err != nil {
		t.Fatal(err)
	}

	// Kill: drop the provider, stop the server; start from what is on disk.
	p, a, b = nil, nil, nil
	ns.stop()
	ns.start()
	p = openProvider(t, ns.js(t), testConfig(keyFile))
	a, b = mustClient(t, p, alice), mustClient(t, p, bob)
	if _, err := b.ProcessHandshake(ctx, gid, cm.Commit); err != nil {
		t.Fatalf("commit after restart: %v", err)
	}
	recv(a, c2, m2)
	recv(b, c3, m3)
	recv(a, c5, m5) // epoch before the commit, kept as a past epoch
	if _, err := b.Decrypt(ctx, gid, c1); !errors.Is(err, ErrReplay) {
		t.Fatalf("message 1 again after restart: %v", err)
	}
	if _, err := a.Decrypt(ctx, gid, c5); !errors.Is(err, ErrReplay) {
		t.Fatalf("message 5 again after restart: %v", err)
	}
	m4, c4 := send(a, "4 after")
	recv(b, c4, m4)
	m6, c6 := send(b, "6 after")
	recv(a, c6, m6)

	// Several messages, a restart, several more: generations keep rising.
	var gens []uint32
	for range 3 {
		_, ct := send(a, "x")
		_, g := generationOf(t, b, gid, ct)
		gens = append(gens, g)
		if _, err := b.Decrypt(ctx, gid, ct); err != nil {
			t.Fatal(err)
		}
	}
	ns.stop()
	ns.start()
	p = openProvider(t, ns.js(t), testConfig(keyFile))
	a, b = mustClient(t, p, alice), mustClient(t, p, bob)
	for range 3 {
		_, ct := send(a, "y")
		_, g := generationOf(t, b, gid, ct)
		gens = append(gens, g)
		if _, err := b.Decrypt(ctx, gid, ct); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(gens); i++ {
		if gens[i] <= gens[i-1] {
			t.Fatalf("generations %v: reused or went back across the restart", gens)
		}
	}
}

// TestNoReuseWhenStoreFails takes the bus away while a client encrypts: a
// ciphertext is returned only when its secret tree was stored, so every
// ciphertext that left has its own generation, and all of them decrypt.
func TestNoReuseWhenStoreFails(t *testing.T) {
	keyFile := testKeyFile(t)
	ns := startNATS(t)
	p := openProvider(t, ns.js(t), testConfig(keyFile))
	a, b := mustClient(t, p, alice), mustClient(t, p, bob)
	gid := pair(t, p, false)

	var sent [][]byte
	failed := 0
	for round := range 3 {
		for range 3 {
			// Retry until the bus is back (the connection reconnects
			// with backoff); the deadline only bounds a failure.
			deadline := time.Now().Add(30 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				ct, err := a.Encrypt(ctx, gid, mimiText(t, alice, room, "m"))
				cancel()
				if err == nil {
					sent = append(sent, ct)
					break
				}
				failed++
				if time.Now().After(deadline) {
					t.Fatalf("bus did not come back: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if round < 2 {
			ns.stop()
			// With the server gone every store write fails.
			for range 2 {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				if ct, err := a.Encrypt(ctx, gid, mimiText(t, alice, room, "lost")); err == nil {
					t.Fatalf("encrypt returned a ciphertext (%d bytes) with the bus down", len(ct))
				}
				cancel()
				failed++
			}
			ns.start()
		}
	}
	if failed < 4 || len(sent) != 9 {
		t.Fatalf("sent %d, failed %d", len(sent), failed)
	}
	seen := map[uint32]bool{}
	for _, ct := range sent {
		_, gen := generationOf(t, b, gid, ct)
		if seen[gen] {
			t.Fatalf("generation %d left twice", gen)
		}
		seen[gen] = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := b.Decrypt(ctx, gid, ct); err != nil {
			t.Fatalf("decrypt generation %d: %v", gen, err)
		}
		cancel()
	}
}
