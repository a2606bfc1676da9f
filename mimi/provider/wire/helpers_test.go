package wire

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	mlsgo "github.com/thomas-vilte/mls-go"
	"github.com/thomas-vilte/mls-go/ciphersuite"
)

// Builders for hand-made TLS-PL bytes.

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// vec is parts behind their RFC 9420 length prefix.
func vec(parts ...[]byte) []byte {
	body := cat(parts...)
	return append(appendVarint(nil, len(body)), body...)
}

func u8b(v uint8) []byte   { return []byte{v} }
func u16b(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32b(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64b(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func str(s string) []byte  { return []byte(s) }

// hx decodes hex written with spaces, newlines and // comments.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// Hand-made RFC 9420 structures: structurally valid, cryptographically
// meaningless.

func basicCred(id string) []byte { return cat(u16b(credentialBasic), vec(str(id))) }

func x509Cred(certs ...[]byte) []byte {
	var list [][]byte
	for _, c := range certs {
		list = append(list, vec(c))
	}
	return cat(u16b(credentialX509), vec(list...))
}

var noCaps = []byte{0, 0, 0, 0, 0}

// leafNode builds a LeafNode; tail is what leaf_node_source selects.
func leafNode(cred []byte, source uint8, tail []byte) []byte {
	return cat(vec(str("enc-key")), vec(str("sig-key")), cred, noCaps, u8b(source), tail, vec(), vec(str("leaf-sig")))
}

func kpLeaf(cred []byte) []byte {
	return leafNode(cred, leafSourceKeyPackage, cat(u64b(1), u64b(2)))
}

func handKeyPackage(id string) []byte {
	return cat(u16b(1), u16b(1), vec(str("init")), kpLeaf(basicCred(id)), vec(), vec(str("kp-sig")))
}

func member(leaf uint32) []byte { return cat(u8b(SenderMember), u32b(leaf)) }

// publicMsg builds an MLSMessage PublicMessage; content is what
// content_type selects.
func publicMsg(sender []byte, ct ContentType, content []byte) []byte {
	out := cat(u16b(1), u16b(uint16(PublicMessage)), vec(str("group")), u64b(7), sender, vec(), u8b(uint8(ct)), content,
		vec(str("signature")))
	if ct == Commit {
		out = append(out, vec(str("confirm"))...)
	}
	if sender[0] == SenderMember {
		out = append(out, vec(str("membership"))...)
	}
	return out
}

func handProposal(p []byte) []byte { return publicMsg(member(1), Proposal, p) }

func removeProposal(leaf uint32) []byte { return cat(u16b(proposalRemove), u32b(leaf)) }

func privateMsg(ct ContentType) []byte {
	return cat(u16b(1), u16b(uint16(PrivateMessage)), vec(str("group")), u64b(7), u8b(uint8(ct)), vec(), vec(str("sender-data")),
		vec(str("ciphertext")))
}

func handWelcome() []byte {
	return cat(u16b(1), vec(vec(str("kp-ref")), vec(str("kem")), vec(str("ct"))), vec(str("encrypted-group-info")))
}

func handGroupInfo(exts ...[]byte) []byte {
	return cat(u16b(1), u16b(1), vec(str("group")), u64b(7), vec(str("tree-hash")), vec(str("cth")), vec(),
		vec(exts...), vec(str("confirm")), u32b(0), vec(str("gi-sig")))
}

func extension(t uint16, data []byte) []byte { return cat(u16b(t), vec(data)) }

// handTree is a two-leaf ratchet tree: leaf, blank parent, leaf.
func handTree() []byte {
	return vec(u8b(1), u8b(1), kpLeaf(basicCred("a")), u8b(0), u8b(1), u8b(1), kpLeaf(basicCred("b")))
}

// Real MLS messages, made by mls-go (cipher suite 1 unless said).
type realMLS struct {
	keyPackage     []byte // bare KeyPackage
	keyPackageX509 []byte // bare KeyPackage, x509 credential, cipher suite 2
	addCommit      []byte // MLSMessage: commit adding bob
	welcome        []byte // MLSMessage
	groupInfo      []byte // bare GroupInfo (with ratchet_tree and external_pub extensions)
	app            []byte // MLSMessage: PrivateMessage, application
	addProposal    []byte // MLSMessage: PublicMessage proposals
	removeProposal []byte
	gceProposal    []byte
	pskProposal    []byte
	reinitProposal []byte
	updateCommit   []byte // MLSMessage: commit with an UpdatePath
	externalCommit []byte // MLSMessage: external commit (new_member_commit, external_init)
}

var realMessages = sync.OnceValues(func() (*realMLS, error) {
	ctx := context.Background()
	quiet := mlsgo.WithLogger(slog.New(slog.DiscardHandler))
	cs := ciphersuite.MLS128DHKEMX25519
	newClient := func(id string) (*mlsgo.Client, error) { return mlsgo.NewClient([]byte(id), cs, quiet) }
	alice, err := newClient("mimi://desktop.test/u/alice")
	if err != nil {
		return nil, err
	}
	bob, err := newClient("mimi://gw.test/u/+15550100002")
	if err != nil {
		return nil, err
	}
	carol, err := newClient("mimi://gw.test/u/+15550100003")
	if err != nil {
		return nil, err
	}
	dave, err := newClient("mimi://gw.test/u/+15550100004")
	if err != nil {
		return nil, err
	}
	m := new(realMLS)
	step := func(e error) {
		if err == nil && e != nil {
			err = e
		}
	}
	var gid, bobKP, carolKP []byte
	bobKP, err = bob.FreshKeyPackageBytes(ctx)
	m.keyPackage = bobKP
	gid, e := alice.CreateGroup(ctx)
	step(e)
	m.addCommit, m.welcome, e = alice.InviteMember(ctx, gid, bobKP)
	step(e)
	_, e = bob.JoinGroup(ctx, m.welcome)
	step(e)
	m.app, e = alice.SendMessage(ctx, gid, []byte("hello"))
	step(e)
	m.groupInfo, e = alice.GroupInfo(ctx, gid)
	step(e)
	carolKP, e = carol.FreshKeyPackageBytes(ctx)
	step(e)
	m.addProposal, e = alice.ProposeAddMember(ctx, gid, carolKP)
	step(e)
	m.removeProposal, e = alice.ProposeRemoveMember(ctx, gid, []byte("mimi://gw.test/u/+15550100002"))
	step(e)
	m.gceProposal, e = alice.ProposeGroupContextExtensions(ctx, gid, extension(0xff00, str("grease")))
	step(e)
	m.pskProposal, e = alice.ProposeResumptionPSK(ctx, gid, 1)
	step(e)
	m.reinitProposal, e = alice.ProposeReInit(ctx, gid, []byte("new-group-id"))
	step(e)
	step(alice.CancelPendingProposals(ctx, gid))
	m.updateCommit, e = bob.SelfUpdate(ctx, gid)
	step(e)
	_, m.externalCommit, e = dave.ExternalJoin(ctx, m.groupInfo)
	step(e)
	if err != nil {
		return nil, err
	}
	m.keyPackageX509, err = x509KeyPackage(ctx)
	return m, err
})

func mustReal(t testing.TB) *realMLS {
	t.Helper()
	m, err := realMessages()
	if err != nil {
		t.Fatalf("making MLS messages with mls-go: %v", err)
	}
	return m
}

// x509KeyPackage makes a KeyPackage whose credential is a self-signed
// P-256 certificate.
func x509KeyPackage(ctx context.Context) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mimi://gw.test/u/+15550100005"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	c, err := mlsgo.NewClient([]byte("x509"), ciphersuite.MLS128DHKEMP256, mlsgo.WithX509Credential(der, key),
		mlsgo.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	return c.FreshKeyPackageBytes(ctx)
}

// extensionsOf returns a bare GroupInfo's own extensions by type.
func extensionsOf(t testing.TB, gi []byte) map[uint16][]byte {
	t.Helper()
	r := newReader(gi, "groupInfo")
	r.u16("")
	r.u16("")
	r.vector("")
	r.u64("")
	r.vector("")
	r.vector("")
	r.extensions("")
	out := map[uint16][]byte{}
	r.list("extensions", func(int) {
		typ := r.u16("")
		out[typ] = r.vector("")
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return out
}

// withoutTree re-encodes a bare GroupInfo without its ratchet_tree
// extension (the signature no longer matches; nothing here checks it).
func withoutTree(t testing.TB, gi []byte) []byte {
	t.Helper()
	r := newReader(gi, "groupInfo")
	r.u16("")
	r.u16("")
	r.vector("")
	r.u64("")
	r.vector("")
	r.vector("")
	r.extensions("")
	head := gi[:r.off]
	var exts [][]byte
	r.list("extensions", func(int) {
		start := r.off
		typ := r.u16("")
		r.vector("")
		if typ != extRatchetTree {
			exts = append(exts, gi[start:r.off])
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return cat(head, vec(exts...), gi[r.off:])
}

// isKind reports whether err is a decode error (ErrMalformed) of the given
// reason.
func isKind(err, reason error) bool {
	return errors.Is(err, ErrMalformed) && errors.Is(err, reason)
}
