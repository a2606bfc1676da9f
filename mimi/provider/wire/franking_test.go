package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestGoldenFranking(t *testing.T) {
	t.Parallel()
	ctx := hx(t, `
		15 `+hexAlice+`  // sender_uri<V>
		15 `+hexRoom+`   // room_uri<V>
		`+goldenTimestamp+` // accepted_timestamp
	`)
	got, err := FrankingContext(gAlice, gRoom, 0x0000018f0a2b3c4d)
	if err != nil || !bytes.Equal(got, ctx) {
		t.Fatalf("context %x, %v", got, err)
	}
	tbs := hx(t, `
		1c 4d4c5320312e30204672616e6b696e67496e74656772697479544253 // label<V> "MLS 1.0 FrankingIntegrityTBS"
		4056                                                        // content<V>: 86 bytes
		11111111111111111111111111111111 11111111111111111111111111111111 // server_frank[32]
		0001                                                        // franking_signature_ciphersuite
	`+"15"+hexAlice+"15"+hexRoom+goldenTimestamp)
	got, err = FrankingTBS(goldenFrankValue(), gAlice, gRoom, 0x0000018f0a2b3c4d)
	if err != nil || !bytes.Equal(got, tbs) {
		t.Fatalf("TBS %x, %v\nwant %x", got, err, tbs)
	}
	if _, err := FrankingTBS(goldenFrankValue(), "\xff", gRoom, 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("sender not UTF-8: %v", err)
	}
}
