package wire

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"testing"
)

// One test per reading of the drafts listed in the package comment.

func TestReadingEncoding(t *testing.T) {
	t.Parallel()
	// <V>: one, two or four bytes, shortest form only.
	short := cat(vec(u8b(4), vec(str("+1"))), vec())
	if _, err := UnmarshalIdentifierRequest(short); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{
		"two-byte form of 4":  cat([]byte{0x40, 0x04}, u8b(4), vec(str("+1")), vec()),
		"four-byte form of 4": cat([]byte{0x80, 0, 0, 0x04}, u8b(4), vec(str("+1")), vec()),
	} {
		if _, err := UnmarshalIdentifierRequest(in); !isKind(err, errNonMinimal) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := UnmarshalIdentifierRequest(cat([]byte{0xc0, 0, 0, 0, 0, 0, 0, 4}, u8b(4), vec(str("+1")), vec())); !isKind(err, errLongVarint) {
		t.Errorf("eight-byte form: %v", err)
	}
	// optional<T>: 0 or 1, then T.
	for flag, want := range map[byte]error{0: nil, 2: errOptional, 0xff: errOptional} {
		_, err := UnmarshalConsentEntry(cat(u8b(0), vec(), vec(), u8b(flag), vec()))
		if want == nil && err != nil || want != nil && !isKind(err, want) {
			t.Errorf("flag %d: %v", flag, err)
		}
	}
	// Enums one byte, CipherSuite two, timestamps uint64 big-endian.
	b, err := (&SubmitMessageResponse{Protocol: MLS10, Status: Accepted, AcceptedTimestamp: 0x0102030405060708,
		Frank: &Frank{CipherSuite: 0x0a0b}}).Marshal()
	want := cat([]byte{1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1}, make([]byte, 32), []byte{0x0a, 0x0b, 0})
	if err != nil || !bytes.Equal(b, want) {
		t.Errorf("response %x, %v", b, err)
	}
	// IdentifierUri, RoomId and string: UTF-8.
	bad := []byte{0xff}
	for _, tc := range []struct {
		name string
		dec  string
		in   []byte
	}{
		{"IdentifierUri (KeyMaterialRequest.roomId)", "KeyMaterialRequest",
			cat(u8b(1), vec(), vec(), vec(bad), vec(u16b(1)), noCaps[:3], vec(), basicCred("a"), vec())},
		{"RoomId (ConsentEntry.roomId)", "ConsentEntry", cat(u8b(1), vec(), vec(), u8b(1), vec(bad), vec())},
		{"string (UpdateRoomResponse.errorDescription)", "UpdateRoomResponse", cat(u8b(2), vec(bad))},
		{"string (ProfileField.fieldName)", "IdentifierResponse", cat(u8b(0), vec(), vec(vec(), vec(u8b(7), vec(bad), vec())), vec())},
	} {
		if err := decoders[tc.dec](tc.in); !isKind(err, errUTF8) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Protocol: only mls10, in every structure that has it.
	for _, p := range []byte{0, 2, 255} {
		for name, dec := range map[string]func([]byte) error{
			"KeyMaterialRequest":    decoders["KeyMaterialRequest"],
			"KeyMaterialResponse":   decoders["KeyMaterialResponse"],
			"SubmitMessageRequest":  decoders["SubmitMessageRequest"],
			"SubmitMessageResponse": decoders["SubmitMessageResponse"],
			"GroupInfoRequest":      decoders["GroupInfoRequest"],
			"GroupInfoResponse":     decoders["GroupInfoResponse"],
		} {
			if err := dec([]byte{p, 0, 0, 0, 0}); !isKind(err, errEnum) {
				t.Errorf("%s with protocol %d: %v", name, p, err)
			}
		}
	}
	if MLS10 != 1 || MLS10.String() != "mls10" {
		t.Error("mls10 is 1")
	}
}

func TestReadingRatchetTreeOption(t *testing.T) {
	t.Parallel()
	m := mustReal(t)
	// full: the ratchet_tree extension's extension_data, length included.
	ext := extensionsOf(t, m.groupInfo)[extRatchetTree]
	b, err := (&RatchetTreeOption{Kind: TreeFull, Tree: ext}).Marshal()
	if err != nil || !bytes.Equal(b, cat(u8b(1), ext)) {
		t.Fatalf("full: %v", err)
	}
	got, err := UnmarshalRatchetTreeOption(b)
	if err != nil || !bytes.Equal(got.Tree, ext) {
		t.Fatalf("full: %v", err)
	}
	// The tree's content without its length is not a tree.
	if _, err := (&RatchetTreeOption{Kind: TreeFull, Tree: ext[1:]}).Marshal(); !errors.Is(err, ErrInvalid) {
		t.Errorf("tree without its length: %v", err)
	}
	for _, tc := range []struct {
		o    RatchetTreeOption
		want []byte
	}{
		{RatchetTreeOption{Kind: TreeHTTPSURI, URL: "https://h/t", Signature: []byte{9}}, cat(u8b(2), vec(str("https://h/t")), vec(u8b(9)))},
		{RatchetTreeOption{Kind: TreeOutOfBand, Signature: []byte{9}}, cat(u8b(3), vec(u8b(9)))},
		{RatchetTreeOption{Kind: TreeDistributionService}, u8b(4)},
	} {
		b, err := tc.o.Marshal()
		if err != nil || !bytes.Equal(b, tc.want) {
			t.Errorf("%v: %x, %v", tc.o.Kind, b, err)
		}
	}
	if _, err := UnmarshalRatchetTreeOption(u8b(0)); !isKind(err, errEnum) {
		t.Errorf("reserved(0): %v", err)
	}
}

func TestReadingFanoutMessage(t *testing.T) {
	t.Parallel()
	m := mustReal(t)
	hand := handMessages()
	ts := u64b(42)
	for _, tc := range []struct {
		name string
		msg  []byte
		tail []byte // what follows the message
		want FanoutMessage
	}{
		{"private application", m.app, u8b(0), FanoutMessage{}},
		{"public application", hand["public application"], cat(u8b(1), hx(t, goldenFrank)), FanoutMessage{Frank: goldenFrankValue()}},
		{"welcome", m.welcome, u8b(4), FanoutMessage{RatchetTree: RatchetTreeOption{Kind: TreeDistributionService}}},
		{"proposal", m.addProposal, vec(m.removeProposal, m.gceProposal), FanoutMessage{MoreProposals: [][]byte{m.removeProposal, m.gceProposal}}},
		{"commit", m.externalCommit, vec(hand["hub remove"]), FanoutMessage{ExternalProposals: [][]byte{hand["hub remove"]}}},
		{"private commit", hand["private commit"], vec(), FanoutMessage{}},
	} {
		got, err := UnmarshalFanoutMessage(cat(ts, tc.msg, tc.tail))
		tc.want.Timestamp, tc.want.Message = 42, tc.msg
		if err != nil || !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%s: %+v, %v", tc.name, got, err)
		}
	}
	for name, msg := range map[string][]byte{
		"group info":  WrapMLSMessage(GroupInfo, m.groupInfo),
		"key package": WrapMLSMessage(KeyPackage, m.keyPackage),
	} {
		if _, err := UnmarshalFanoutMessage(cat(ts, msg)); !isKind(err, errNotAllowed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A notify body: FanoutMessages back to back, never empty.
	one := cat(ts, m.app, u8b(0))
	two := cat(ts, m.addProposal, vec())
	msgs, err := UnmarshalNotify(cat(one, two, one))
	if err != nil || len(msgs) != 3 || !bytes.Equal(msgs[1].Message, m.addProposal) {
		t.Fatalf("notify: %v", err)
	}
	if _, err := UnmarshalNotify(nil); !isKind(err, errEmpty) {
		t.Errorf("empty notify: %v", err)
	}
	if _, err := UnmarshalNotify([]byte{}); !isKind(err, errEmpty) {
		t.Errorf("empty notify: %v", err)
	}
	// MLSMessage x<V>: whole messages, zero or more; a partial one is an
	// error.
	if _, err := UnmarshalFanoutMessage(cat(ts, m.addProposal, vec(m.removeProposal, m.gceProposal[:10]))); !isKind(err, errTruncated) {
		t.Errorf("partial message in moreProposals: %v", err)
	}
}

func TestReadingFrank(t *testing.T) {
	t.Parallel()
	frank := hx(t, goldenFrank)
	ts := u64b(1)
	// optional<Frank>, not a bare Frank.
	if got, err := UnmarshalSubmitMessageResponse(cat(u8b(1), u8b(0), ts, u8b(1), frank)); err != nil || !reflect.DeepEqual(got.Frank, goldenFrankValue()) {
		t.Errorf("optional<Frank> present: %+v, %v", got, err)
	}
	if got, err := UnmarshalSubmitMessageResponse(cat(u8b(1), u8b(0), ts, u8b(0))); err != nil || got.Frank != nil {
		t.Errorf("optional<Frank> absent: %+v, %v", got, err)
	}
	if _, err := UnmarshalSubmitMessageResponse(cat(u8b(1), u8b(0), ts, frank)); !isKind(err, errOptional) {
		t.Errorf("bare Frank in a SubmitMessageResponse: %v", err)
	}
	if _, err := UnmarshalFanoutMessage(cat(ts, hx(t, goldenPrivate), frank)); !isKind(err, errOptional) {
		t.Errorf("bare Frank in a FanoutMessage: %v", err)
	}
	// The AbusiveMessage keeps the bare Frank the draft writes.
	b, err := (&AbusiveMessage{Frank: *goldenFrankValue()}).Marshal()
	if err != nil || !bytes.Equal(b, cat(vec(), frank, u64b(0))) {
		t.Errorf("AbusiveMessage: %x, %v", b, err)
	}
	// accepted(0), notAllowed(1), epochTooOld(2).
	for s, name := range map[SubmitStatus]string{Accepted: "accepted", SubmitNotAllowed: "notAllowed", EpochTooOld: "epochTooOld"} {
		b, err := (&SubmitMessageResponse{Protocol: MLS10, Status: s}).Marshal()
		if err != nil || s.String() != name || b[1] != map[string]byte{"accepted": 0, "notAllowed": 1, "epochTooOld": 2}[name] {
			t.Errorf("%s: %x, %v", name, b, err)
		}
	}
}

func TestReadingHandshakeBundle(t *testing.T) {
	t.Parallel()
	m := mustReal(t)
	_, welcome, _ := UnwrapMLSMessage(m.welcome)
	gi := withoutTree(t, m.groupInfo)
	partial := cat(u8b(0), vec(), vec(str("sig")))
	// commit: optional<Welcome> (bare), GroupInfoOption, RatchetTreeOption.
	for _, tc := range []struct {
		name string
		in   []byte
		want HandshakeBundle
	}{
		{"commit, welcome, full group info", cat(m.addCommit, u8b(1), welcome, u8b(1), gi, u8b(4)),
			HandshakeBundle{Welcome: welcome, GroupInfo: GroupInfoOption{Kind: GroupInfoFull, GroupInfo: gi}, RatchetTree: RatchetTreeOption{Kind: TreeDistributionService}}},
		{"commit, no welcome, partial group info", cat(m.updateCommit, u8b(0), u8b(2), partial, u8b(3), vec()),
			HandshakeBundle{GroupInfo: GroupInfoOption{Kind: GroupInfoPartial, GroupInfo: partial}, RatchetTree: RatchetTreeOption{Kind: TreeOutOfBand}}},
		{"proposal", cat(m.addProposal, vec(m.pskProposal)), HandshakeBundle{MoreProposals: [][]byte{m.pskProposal}}},
	} {
		got, err := UnmarshalHandshakeBundle(tc.in)
		tc.want.ProposalOrCommit = tc.in[:len(got.ProposalOrCommit)]
		if err != nil || !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%s: %+v, %v", tc.name, got, err)
		}
	}
	// The Welcome is the bare struct: an MLSMessage there is refused.
	if _, err := UnmarshalHandshakeBundle(cat(m.addCommit, u8b(1), m.welcome, u8b(1), gi, u8b(4))); !errors.Is(err, ErrMalformed) {
		t.Errorf("welcome as an MLSMessage: %v", err)
	}
	// An application message is an error.
	if _, err := UnmarshalHandshakeBundle(cat(m.app, vec())); !isKind(err, errNotAllowed) {
		t.Errorf("application: %v", err)
	}
}

func TestReadingKeyMaterial(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &KeyMaterialRequest{Protocol: MLS10, RequestingUser: gAlice, TargetUser: gBob, RoomID: gRoom,
		AcceptableCipherSuites: []uint16{1}, RequesterSignatureKey: pub, RequesterCredential: basicCred(gAlice)}
	if err := r.Sign(priv); err != nil {
		t.Fatal(err)
	}
	enc, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Ed25519 over SignContent{"MLS 1.0 KeyMaterialRequestTBS", the
	// request without its signature}: the signature is the last field.
	body := enc[:len(enc)-len(vec(r.Signature))]
	content := cat(vec(str("MLS 1.0 KeyMaterialRequestTBS")), vec(body))
	if !ed25519.Verify(pub, content, r.Signature) {
		t.Fatal("the signature is not Ed25519 over SignContent")
	}
	dec, err := UnmarshalKeyMaterialRequest(enc)
	if err != nil || dec.Verify() != nil {
		t.Fatalf("decoded request does not verify: %v", err)
	}
	dec.RoomID = "mimi://d.test/r/other"
	if err := dec.Verify(); !errors.Is(err, ErrSignature) {
		t.Errorf("changed request: %v", err)
	}
	dec.RequesterSignatureKey = dec.RequesterSignatureKey[:5]
	if err := dec.Verify(); !errors.Is(err, ErrSignature) {
		t.Errorf("short key: %v", err)
	}

	// ClientKeyMaterial for mls10.
	kp := handKeyPackage("b")
	for _, tc := range []struct {
		c    ClientKeyMaterial
		want []byte
	}{
		{ClientKeyMaterial{Status: ClientSuccess, ClientURI: "c", KeyPackage: kp}, cat(u8b(0), vec(str("c")), kp)},
		{ClientKeyMaterial{Status: KeyMaterialExhausted, ClientURI: "c"}, cat(u8b(1), vec(str("c")))},
		{ClientKeyMaterial{Status: NothingCompatible, ClientURI: "c"}, cat(u8b(2), vec(str("c")), u8b(0))},
		{ClientKeyMaterial{Status: NothingCompatible, ClientURI: "c", Capabilities: &Capabilities{Versions: []uint16{1}}},
			cat(u8b(2), vec(str("c")), u8b(1), vec(u16b(1)), vec(), vec(), vec(), vec())},
	} {
		b, err := tc.c.Marshal()
		if err != nil || !bytes.Equal(b, tc.want) {
			t.Errorf("%v: %x, %v", tc.c.Status, b, err)
		}
	}
	// clients only for success, partialSuccess and noCompatibleMaterial.
	client := vec(u8b(1), vec(str("c")))
	for s := range UserStatus(8) {
		_, err := UnmarshalKeyMaterialResponse(cat(u8b(1), u8b(uint8(s)), vec(str(gBob)), client))
		if s.hasClients() != (err == nil) || err != nil && !isKind(err, errNotAllowed) {
			t.Errorf("%v with a client: %v", s, err)
		}
		if _, err := UnmarshalKeyMaterialResponse(cat(u8b(1), u8b(uint8(s)), vec(str(gBob)), vec())); err != nil {
			t.Errorf("%v without clients: %v", s, err)
		}
	}
	if !Success.hasClients() || !PartialSuccess.hasClients() || !NoCompatibleMaterial.hasClients() || IncompatibleProtocol.hasClients() {
		t.Error("hasClients")
	}
}

func TestReadingPhoneQuery(t *testing.T) {
	t.Parallel()
	b, err := (&IdentifierRequest{QueryElements: []QueryElement{PhoneQuery("+15550100002")}}).Marshal()
	if err != nil || !bytes.Equal(b, cat(vec(u8b(4), vec(str("+15550100002"))), vec())) {
		t.Fatalf("phone query %x, %v", b, err)
	}
	resp := cat(u8b(0), vec(vec(str("mimi://gw.test/u/+15550100002"))), vec(), vec())
	got, err := UnmarshalIdentifierResponse(resp)
	if err != nil || len(got.URIs) != 1 || got.URIs[0] != "mimi://gw.test/u/+15550100002" {
		t.Fatalf("answer %+v, %v", got, err)
	}
}

func TestReadingGroupInfo(t *testing.T) {
	t.Parallel()
	for _, code := range [][]byte{nil, []byte("join-code")} {
		g := &GroupInfoRequest{Protocol: MLS10, CipherSuite: 1, RequestingSignatureKey: []byte("k"), RequestingCredential: basicCred(gAlice),
			GroupInfoPublicKey: []byte("hpke"), JoiningCode: code, Signature: []byte("s")}
		b, err := g.Marshal()
		head := cat(u8b(1), u16b(1), vec(str("k")), basicCred(gAlice), vec(str("hpke")))
		// opaque joiningCode<V>: no presence byte, empty when there is none.
		if err != nil || !bytes.Equal(b, cat(head, vec(code), vec(str("s")))) {
			t.Errorf("request %x, %v", b, err)
		}
		tbs, err := g.TBS()
		if err != nil || !bytes.Equal(tbs, cat(vec(str("MLS 1.0 GroupInfoRequestTBS")), vec(head, vec(code)))) {
			t.Errorf("TBS %x, %v", tbs, err)
		}
	}
	// The TBS's "optional opaque joiningCode<V>" form is not read: a
	// presence byte before the code reads as a one-byte code and leaves
	// the rest unreadable.
	head := cat(u8b(1), u16b(1), vec(), basicCred(gAlice), vec())
	if _, err := UnmarshalGroupInfoRequest(cat(head, u8b(1), vec(str("code")), vec(str("s")))); !errors.Is(err, ErrMalformed) {
		t.Errorf("optional joining code: %v", err)
	}
	// GroupInfoResponse starts with the protocol.
	resp := &GroupInfoResponse{Protocol: MLS10, RoomID: gRoom, Status: GroupInfoSuccess, CipherSuite: 1,
		HubSender: ExternalSender{SignatureKey: []byte("h"), Credential: basicCred("mimi://d.test")}, Signature: []byte("s")}
	b, err := resp.Marshal()
	if err != nil || b[0] != 1 {
		t.Fatalf("response %x, %v", b, err)
	}
	var fe *FieldError
	if _, err := UnmarshalGroupInfoResponse(cat(u8b(0), b[1:])); !errors.As(err, &fe) || fe.Field != "groupInfoResponse.version" {
		t.Errorf("reserved protocol: %v", err)
	}
	tbs, err := resp.TBS()
	if err != nil || !bytes.Equal(tbs, cat(vec(str("MLS 1.0 GroupInfoResponseTBS")), vec(b[:len(b)-2]))) {
		t.Errorf("response TBS %x, %v", tbs, err)
	}
}
