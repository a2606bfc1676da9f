package mls

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"github.com/mimigw/mimigw/mimi/content"
	"github.com/thomas-vilte/mls-go/ciphersuite"
	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
	"github.com/thomas-vilte/mls-go/treesync"
)

// inspectMIMIContent is the default ContentInspector: it decodes the
// content with mimi/content and returns extensions 1 and 2.
func inspectMIMIContent(b []byte) (string, string, error) {
	m, err := content.Decode(b)
	if err != nil {
		return "", "", err
	}
	return m.Extensions.SenderURI, m.Extensions.RoomURI, nil
}

// checkContent enforces that MIMI content speaks for the MLS sender in the
// group's room.
func (p *Provider) checkContent(b []byte, sender, room string) error {
	s, r, err := p.inspect(b)
	if err != nil {
		return fmt.Errorf("%w: content: %v", ErrContentMismatch, err)
	}
	if s != sender {
		return &ContentMismatchError{Field: "sender", Want: sender, Got: s}
	}
	if r != room {
		return &ContentMismatchError{Field: "room", Want: room, Got: r}
	}
	return nil
}

// Received is a decrypted application message whose content was checked.
type Received struct {
	Content           []byte // MIMI content, exactly as the sender encrypted it
	Sender            string // MIMI URI of the sender's credential
	SenderKey         []byte // the signature key of the sender's leaf
	SenderLeaf        uint32
	Epoch             uint64
	AuthenticatedData []byte
}

// window remembers which generations of one sender were accepted in one
// epoch: Max is the highest, bit i of Bits is generation Max-i. mls-go keeps
// its own replay set only in memory, so after a restart (or a reload after
// a failure) it would accept the last message of every sender again.
type window struct {
	Max  uint32 `json:"max"`
	Bits []byte `json:"bits"`
}

const windowBits = 1024

func (w *window) seen(gen uint32) bool {
	if w == nil || len(w.Bits) == 0 || gen > w.Max {
		return false
	}
	d := w.Max - gen
	if d >= windowBits {
		return true // older than the window: treat as seen
	}
	return w.Bits[d/8]&(1<<(d%8)) != 0
}

// ahead reports how far gen is beyond the newest accepted generation.
func (w *window) ahead(gen uint32) uint32 {
	if w == nil || len(w.Bits) == 0 {
		return gen
	}
	if gen <= w.Max {
		return 0
	}
	return gen - w.Max
}

func (w *window) mark(gen uint32) {
	if len(w.Bits) == 0 {
		w.Bits = make([]byte, windowBits/8)
		w.Max = gen
	}
	if gen > w.Max {
		shift := gen - w.Max
		shiftLeft(w.Bits, shift)
		w.Max = gen
	}
	d := w.Max - gen
	if d < windowBits {
		w.Bits[d/8] |= 1 << (d % 8)
	}
}

// shiftLeft moves every bit n places towards higher indices (older).
func shiftLeft(b []byte, n uint32) {
	if n >= uint32(len(b))*8 {
		clear(b)
		return
	}
	bytesN, bitsN := int(n/8), n%8
	for i := len(b) - 1; i >= 0; i-- {
		var v byte
		if j := i - bytesN; j >= 0 {
			v = b[j] << bitsN
			if bitsN > 0 && j-1 >= 0 {
				v |= b[j-1] >> (8 - bitsN)
			}
		}
		b[i] = v
	}
}

// peekSender decrypts a PrivateMessage's sender data (RFC 9420 section
// 6.3.2) to learn who sent it with which generation, before mls-go
// ratchets anything forward.
func peekSender(cs ciphersuite.CipherSuite, senderData *ciphersuite.Secret, pm *framing.PrivateMessage) (leaf, gen uint32, err error) {
	nh := cs.HashLength()
	sample := pm.Ciphertext
	if len(sample) > nh {
		sample = sample[:nh]
	}
	var key, nonce []byte
	if h := expandHash(cs); h != nil && senderData != nil {
		// Both fit in one HMAC block of output: one HMAC each, without
		// the general KDF's allocations, for every message received.
		var kb, nb [64]byte
		key = expandLabelShort(h, senderData.AsSlice(), "key", sample, cs.AEADKeyLength(), kb[:0])
		nonce = expandLabelShort(h, senderData.AsSlice(), "nonce", sample, cs.AEADNonceLength(), nb[:0])
		defer clear(kb[:])
		defer clear(nb[:])
	} else {
		k, err := senderData.KdfExpandLabel("key", sample, cs.AEADKeyLength())
		if err != nil {
			return 0, 0, fmt.Errorf("mls: sender data key: %w", err)
		}
		defer k.SecureZero()
		n, err := senderData.KdfExpandLabel("nonce", sample, cs.AEADNonceLength())
		if err != nil {
			return 0, 0, fmt.Errorf("mls: sender data nonce: %w", err)
		}
		defer n.SecureZero()
		key, nonce = k.AsSlice(), n.AsSlice()
	}
	aad := appendVector(nil, pm.GroupID)
	aad = binary.BigEndian.AppendUint64(aad, pm.Epoch)
	aad = append(aad, byte(pm.ContentType))
	pt, err := ciphersuite.DecryptWithCipherSuite(key, nonce, pm.EncryptedSenderData, aad, cs)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: sender data: %v", ErrAuthentication, err)
	}
	sd, err := framing.UnmarshalSenderData(pt)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: sender data: %v", ErrMalformed, err)
	}
	return sd.LeafIndex, sd.Generation, nil
}

// expandHash is the hash of cs's KDF when ExpandWithLabel of at most its
// output size can be computed by expandLabelShort, nil otherwise.
func expandHash(cs ciphersuite.CipherSuite) func() hash.Hash {
	switch cs.HashLength() {
	case sha256.Size:
		return sha256.New
	case sha512.Size:
		return sha512.New
	}
	return nil
}

// expandLabelShort is ExpandWithLabel (RFC 9420 section 8) for a length
// of at most the hash size: HKDF-Expand is then the first length bytes of
// one HMAC over the KDFLabel and the counter 1. The result is appended to
// out.
func expandLabelShort(h func() hash.Hash, secret []byte, label string, context []byte, length int, out []byte) []byte {
	var info [128]byte
	b := binary.BigEndian.AppendUint16(info[:0], uint16(length))
	b = appendVarint(b, len(ciphersuite.LabelPrefix)+len(label))
	b = append(b, ciphersuite.LabelPrefix...)
	b = append(b, label...)
	b = appendVector(b, context)
	b = append(b, 1)
	m := hmac.New(h, secret)
	m.Write(b)
	return m.Sum(out)[:len(out)+length]
}

// parsePrivate reads an application PrivateMessage for groupID.
func parsePrivate(groupID, msg []byte) (*framing.PrivateMessage, error) {
	m, err := framing.UnmarshalMLSMessage(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	pm, ok := m.AsPrivate()
	if !ok {
		return nil, fmt.Errorf("%w: wire format %d is not a private message", ErrMalformed, m.WireFormat())
	}
	if !bytes.Equal(pm.Marshal(), msg[2:]) {
		return nil, fmt.Errorf("%w: trailing bytes after private message", ErrMalformed)
	}
	if pm.ContentType != framing.ContentTypeApplication {
		return nil, fmt.Errorf("%w: handshake messages as PrivateMessage", ErrUnsupported)
	}
	if !bytes.Equal(pm.GroupID, groupID) {
		return nil, fmt.Errorf("%w: message is for group %x", ErrMalformed, pm.GroupID)
	}
	return pm, nil
}

// Encrypt protects MIMI content as an MLS PrivateMessage from this client
// to the group. The content must name this client as sender and the group's
// room. The secret tree is stored before the ciphertext is returned, so a
// crash can never lead to a second message under the same key and nonce.
func (c *Client) Encrypt(ctx context.Context, groupID, mimiContent []byte) ([]byte, error) {
	var out []byte
	err := c.withGroup(ctx, groupID, "encrypt", func(e *groupEntry) error {
		if err := c.p.checkContent(mimiContent, c.uri, e.head.Room); err != nil {
			return err
		}
		e.dirty = true
		pm, err := e.g.SendMessage(mimiContent, c.sig)
		if err != nil {
			return classify(err)
		}
		if err := c.p.saveRatchet(ctx, e); err != nil {
			return err
		}
		out = framing.NewMLSMessagePrivate(pm).Marshal()
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.p.m.encrypted.Inc()
	return out, nil
}

// Decrypt opens an application PrivateMessage for the group and returns it
// only if its MIMI content names the sender's credential identity and the
// group's room. Messages from the current epoch and from the configured
// number of past epochs decrypt; each generation of each sender is accepted
// once. On any error nothing is stored.
func (c *Client) Decrypt(ctx context.Context, groupID, msg []byte) (*Received, error) {
	pm, err := parsePrivate(groupID, msg)
	if err != nil {
		c.p.reject(err)
		return nil, err
	}
	var out *Received
	err = c.withGroup(ctx, groupID, "decrypt", func(e *groupEntry) error {
		if pm.Epoch == e.head.Epoch {
			r, err := c.decryptIn(ctx, e, e.g, &e.rat, pm)
			if err != nil {
				return err
			}
			if err := c.p.saveRatchet(ctx, e); err != nil {
				return err
			}
			out = r
			return nil
		}
		r, err := c.decryptPast(ctx, e, pm)
		out = r
		return err
	})
	if err != nil {
		c.p.reject(err)
		return nil, err
	}
	c.p.m.decrypted.Inc()
	return out, nil
}

// decryptIn decrypts pm with g (an epoch's group) and rat (its ratchet
// record), leaving both updated in memory for the caller to store.
func (c *Client) decryptIn(_ context.Context, e *groupEntry, g *group.Group, rat *ratchetRecord, pm *framing.PrivateMessage) (*Received, error) {
	cs := g.CipherSuite()
	leaf, gen, err := peekSender(cs, g.EpochSecrets().SenderDataSecret, pm)
	if err != nil {
		return nil, err
	}
	if leaf == uint32(g.OwnLeafIndex()) {
		return nil, ErrOwnMessage
	}
	w := rat.Seen[leaf]
	if w.seen(gen) {
		return nil, fmt.Errorf("%w: leaf %d generation %d", ErrReplay, leaf, gen)
	}
	if d := w.ahead(gen); d > c.p.cfg.MaxForwardDistance {
		return nil, fmt.Errorf("%w: generation %d is %d ahead of leaf %d's last", ErrRejected, gen, d, leaf)
	}
	e.dirty = true
	pt, aad, from, err := g.ReceiveApplicationMessage(pm)
	if err != nil {
		return nil, classify(err)
	}
	if uint32(from) != leaf {
		return nil, fmt.Errorf("%w: sender data names leaf %d, content leaf %d", ErrAuthentication, leaf, from)
	}
	sender, key, err := c.p.member(g, leaf)
	if err != nil {
		return nil, err
	}
	if err := c.p.checkContent(pt, sender, e.head.Room); err != nil {
		return nil, err
	}
	if w == nil {
		w = &window{}
		if rat.Seen == nil {
			rat.Seen = map[uint32]*window{}
		}
		rat.Seen[leaf] = w
	}
	w.mark(gen)
	return &Received{Content: pt, Sender: sender, SenderKey: key, SenderLeaf: leaf, Epoch: pm.Epoch, AuthenticatedData: aad}, nil
}

// decryptPast handles a message from an epoch the group has left but still
// keeps: it is opened with that epoch's stored state, whose roster also
// says who the sender was then.
func (c *Client) decryptPast(ctx context.Context, e *groupEntry, pm *framing.PrivateMessage) (*Received, error) {
	kept := false
	for _, ep := range e.head.Past {
		kept = kept || ep == pm.Epoch
	}
	if !kept {
		return nil, fmt.Errorf("%w: message epoch %d, group at %d", ErrWrongEpoch, pm.Epoch, e.head.Epoch)
	}
	var past pastRecord
	if _, err := c.p.store.get(ctx, pastKey(e.gk, pm.Epoch), &past); err != nil {
		return nil, err
	}
	rat, ratRev, err := c.p.loadRatchet(ctx, e.gk, pm.Epoch, past.EpochID)
	if err != nil {
		return nil, err
	}
	g, err := rebuild(past.Base, rat.Tree, past.PSKs)
	if err != nil {
		return nil, fmt.Errorf("mls: past epoch %d state: %w", pm.Epoch, err)
	}
	r, err := c.decryptIn(ctx, e, g, &rat, pm)
	if err != nil {
		return nil, err
	}
	rat.Tree = g.SecretTree().MarshalFull()
	if ratRev == 0 {
		_, err = c.p.store.put(ctx, ratchetKey(e.gk, pm.Epoch), &rat)
	} else {
		_, err = c.p.store.write(ctx, ratchetKey(e.gk, pm.Epoch), &rat, ratRev)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// memberIdentity is the MIMI URI of the member at leaf in g.
func (p *Provider) memberIdentity(g *group.Group, leaf uint32) (string, error) {
	id, _, err := p.member(g, leaf)
	return id, err
}

// member is the MIMI URI and the signature key of the member at leaf in g.
func (p *Provider) member(g *group.Group, leaf uint32) (string, []byte, error) {
	n := g.GetTreeLeaf(group.LeafNodeIndex(leaf))
	if n == nil || n.State != treesync.NodeStatePresent || n.LeafData == nil {
		return "", nil, fmt.Errorf("%w: leaf %d is empty", ErrAuthentication, leaf)
	}
	key := n.LeafData.SigKeyBytes()
	id, err := p.issuer.identity(n.LeafData.Credential, key, p.now())
	return id, key, err
}

func (p *Provider) reject(err error) {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{ErrOwnMessage, reasonOwn}, {ErrMalformed, reasonMalformed}, {ErrWrongEpoch, reasonEpoch},
		{ErrReplay, reasonReplay}, {ErrAuthentication, reasonAuth}, {ErrContentMismatch, reasonContent},
		{ErrUntrustedCredential, reasonCredential}, {ErrUnknownKeyPackage, reasonUnknownKP},
		{ErrKeyPackageUsed, reasonUsedKP}, {ErrRejected, reasonPolicy}, {ErrUnsupported, reasonPolicy},
	} {
		if errors.Is(err, r.err) {
			p.m.rejected.WithLabelValues(r.reason).Inc()
			return
		}
	}
}
