package wire

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"testing"
)

// sample is one valid value of a structure, with its codec.
type sample struct {
	structure string
	value     any
	marshal   func() ([]byte, error)
	unmarshal func([]byte) (any, error)
}

func mk[T any](structure string, v *T, enc func(*T) ([]byte, error), dec func([]byte) (*T, error)) sample {
	return sample{structure, v, func() ([]byte, error) { return enc(v) },
		func(b []byte) (any, error) { return dec(b) }}
}

// Hand-made MLS messages of the kinds mls-go does not make.
func handMessages() map[string][]byte {
	return map[string][]byte{
		"update proposal":       handProposal(cat(u16b(proposalUpdate), leafNode(basicCred("a"), leafSourceUpdate, nil))),
		"external psk proposal": handProposal(cat(u16b(proposalPSK), u8b(1), vec(str("psk-id")), vec(str("nonce")))),
		"external init proposal": publicMsg([]byte{SenderNewMemberProposal}, Proposal,
			cat(u16b(proposalExternalInit), vec(str("kem-output")))),
		"app data update": handProposal(cat(u16b(proposalAppDataUpdate), u16b(0x22), u8b(appDataOpUpdate), vec(str("participants")))),
		"app data remove": handProposal(cat(u16b(proposalAppDataUpdate), u16b(0x23), u8b(appDataOpRemove))),
		"self remove":     handProposal(u16b(proposalSelfRemove)),
		"hub remove":      publicMsg(cat(u8b(SenderExternal), u32b(0)), Proposal, removeProposal(1)),
		"commit by reference with a path": commitMsg(
			cat(leafNode(x509Cred([]byte("cert-1"), []byte("cert-2")), leafSourceCommit, vec(str("parent-hash"))),
				vec(vec(str("node-key")), vec(vec(str("kem")), vec(str("ct"))))),
			cat(u8b(2), vec(str("proposal-ref"))), cat(u8b(1), removeProposal(3))),
		"private proposal":   privateMsg(Proposal),
		"private commit":     privateMsg(Commit),
		"public application": publicMsg(member(4), Application, vec(str("not encrypted"))),
		"welcome":            WrapMLSMessage(Welcome, handWelcome()),
		"group info":         WrapMLSMessage(GroupInfo, handGroupInfo(extension(extRatchetTree, handTree()))),
		"key package":        WrapMLSMessage(KeyPackage, handKeyPackage("b")),
	}
}

func samples(t testing.TB) []sample {
	m := mustReal(t)
	realTree := extensionsOf(t, m.groupInfo)[extRatchetTree]
	if len(realTree) == 0 {
		t.Fatal("mls-go's GroupInfo has no ratchet_tree extension to take a tree from")
	}
	bareGI := withoutTree(t, m.groupInfo)
	_, welcome, err := UnwrapMLSMessage(m.welcome)
	if err != nil {
		t.Fatal(err)
	}
	hand := handMessages()
	partial, err := (&PartialGroupInfo{Presence: RatchetTreePresent, Extensions: []Extension{{Type: 4, Data: []byte("external-pub")}}, Signature: []byte("sig")}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	frank := goldenFrankValue()
	pub, priv, _ := ed25519.GenerateKey(nil)
	signed := &KeyMaterialRequest{Protocol: MLS10, RequestingUser: gAlice, TargetUser: gBob, RoomID: gRoom,
		AcceptableCipherSuites: []uint16{1, 3}, RequesterSignatureKey: pub, RequesterCredential: basicCred(gAlice)}
	if err := signed.Sign(priv); err != nil {
		t.Fatal(err)
	}

	out := []sample{
		mk("KeyMaterialRequest", signed, (*KeyMaterialRequest).Marshal, UnmarshalKeyMaterialRequest),
		mk("KeyMaterialRequest", &KeyMaterialRequest{Protocol: MLS10, RequestingUser: gAlice, TargetUser: gBob,
			AcceptableCipherSuites: []uint16{2}, RequiredCapabilities: RequiredCapabilities{Extensions: []uint16{6, 0xff00}, Proposals: []uint16{8}, Credentials: []uint16{2}},
			RequesterSignatureKey: []byte("p256-key"), RequesterCredential: x509Cred([]byte("leaf-cert"), []byte("ca-cert"))},
			(*KeyMaterialRequest).Marshal, UnmarshalKeyMaterialRequest),
		mk("KeyMaterialResponse", &KeyMaterialResponse{Protocol: MLS10, UserStatus: Success, UserURI: gBob, Clients: []ClientKeyMaterial{
			{Status: ClientSuccess, ClientURI: gCli, KeyPackage: m.keyPackage},
			{Status: ClientSuccess, ClientURI: gCli + "8", KeyPackage: m.keyPackageX509},
		}}, (*KeyMaterialResponse).Marshal, UnmarshalKeyMaterialResponse),
		mk("KeyMaterialResponse", &KeyMaterialResponse{Protocol: MLS10, UserStatus: NoCompatibleMaterial, UserURI: gBob, Clients: []ClientKeyMaterial{
			{Status: NothingCompatible, ClientURI: gCli},
		}}, (*KeyMaterialResponse).Marshal, UnmarshalKeyMaterialResponse),
		mk("KeyMaterialResponse", &KeyMaterialResponse{Protocol: MLS10, UserStatus: NoConsentForThisRoom, UserURI: gBob},
			(*KeyMaterialResponse).Marshal, UnmarshalKeyMaterialResponse),
		mk("HandshakeBundle", &HandshakeBundle{ProposalOrCommit: m.addCommit, Welcome: welcome,
			GroupInfo: GroupInfoOption{Kind: GroupInfoFull, GroupInfo: bareGI}, RatchetTree: RatchetTreeOption{Kind: TreeFull, Tree: realTree}},
			(*HandshakeBundle).Marshal, UnmarshalHandshakeBundle),
		mk("HandshakeBundle", &HandshakeBundle{ProposalOrCommit: m.updateCommit,
			GroupInfo:   GroupInfoOption{Kind: GroupInfoPartial, GroupInfo: partial},
			RatchetTree: RatchetTreeOption{Kind: TreeHTTPSURI, URL: "https://hub.test/trees/1", Signature: []byte("tree-sig")}},
			(*HandshakeBundle).Marshal, UnmarshalHandshakeBundle),
		mk("HandshakeBundle", &HandshakeBundle{ProposalOrCommit: hand["commit by reference with a path"],
			GroupInfo: GroupInfoOption{Kind: GroupInfoFull, GroupInfo: handGroupInfo()}, RatchetTree: RatchetTreeOption{Kind: TreeOutOfBand, Signature: []byte("s")}},
			(*HandshakeBundle).Marshal, UnmarshalHandshakeBundle),
		mk("HandshakeBundle", &HandshakeBundle{ProposalOrCommit: m.addProposal,
			MoreProposals: [][]byte{m.removeProposal, m.gceProposal, m.pskProposal, m.reinitProposal, hand["app data update"], hand["self remove"]}},
			(*HandshakeBundle).Marshal, UnmarshalHandshakeBundle),
		mk("HandshakeBundle", &HandshakeBundle{ProposalOrCommit: hand["app data remove"]}, (*HandshakeBundle).Marshal, UnmarshalHandshakeBundle),
		mk("UpdateRoomResponse", &UpdateRoomResponse{Code: UpdateSuccess, AcceptedTimestamp: 1715000000000}, (*UpdateRoomResponse).Marshal, UnmarshalUpdateRoomResponse),
		mk("UpdateRoomResponse", &UpdateRoomResponse{Code: WrongEpoch, ErrorDescription: "epoch 4 is over", CurrentEpoch: 5}, (*UpdateRoomResponse).Marshal, UnmarshalUpdateRoomResponse),
		mk("UpdateRoomResponse", &UpdateRoomResponse{Code: NotAllowed, ErrorDescription: "bannie"}, (*UpdateRoomResponse).Marshal, UnmarshalUpdateRoomResponse),
		mk("UpdateRoomResponse", &UpdateRoomResponse{Code: InvalidProposal, InvalidProposals: [][]byte{bytes.Repeat([]byte{7}, 32)}}, (*UpdateRoomResponse).Marshal, UnmarshalUpdateRoomResponse),
		mk("SubmitMessageRequest", &SubmitMessageRequest{Protocol: MLS10, AppMessage: m.app, SendingURI: gAlice}, (*SubmitMessageRequest).Marshal, UnmarshalSubmitMessageRequest),
		mk("SubmitMessageResponse", &SubmitMessageResponse{Protocol: MLS10, Status: Accepted, AcceptedTimestamp: 1, Frank: frank}, (*SubmitMessageResponse).Marshal, UnmarshalSubmitMessageResponse),
		mk("SubmitMessageResponse", &SubmitMessageResponse{Protocol: MLS10, Status: EpochTooOld, CurrentEpoch: 1 << 40}, (*SubmitMessageResponse).Marshal, UnmarshalSubmitMessageResponse),
		mk("FanoutMessage", &FanoutMessage{Timestamp: 1, Message: m.app, Frank: frank}, (*FanoutMessage).Marshal, UnmarshalFanoutMessage),
		mk("FanoutMessage", &FanoutMessage{Timestamp: 2, Message: hand["public application"]}, (*FanoutMessage).Marshal, UnmarshalFanoutMessage),
		mk("FanoutMessage", &FanoutMessage{Timestamp: 3, Message: m.welcome, RatchetTree: RatchetTreeOption{Kind: TreeFull, Tree: realTree}}, (*FanoutMessage).Marshal, UnmarshalFanoutMessage),
		mk("FanoutMessage", &FanoutMessage{Timestamp: 4, Message: m.addProposal, MoreProposals: [][]byte{m.removeProposal}}, (*FanoutMessage).Marshal, UnmarshalFanoutMessage),
		mk("FanoutMessage", &FanoutMessage{Timestamp: 5, Message: m.externalCommit, ExternalProposals: [][]byte{hand["hub remove"]}}, (*FanoutMessage).Marshal, UnmarshalFanoutMessage),
		mk("FanoutMessage", &FanoutMessage{Timestamp: 6, Message: hand["private commit"]}, (*FanoutMessage).Marshal, UnmarshalFanoutMessage),
		mk("FanoutMessage", &FanoutMessage{Timestamp: 7, Message: hand["private proposal"], MoreProposals: [][]byte{hand["update proposal"], hand["external psk proposal"], hand["external init proposal"]}}, (*FanoutMessage).Marshal, UnmarshalFanoutMessage),
		mk("GroupInfoRequest", &GroupInfoRequest{Protocol: MLS10, CipherSuite: 1, RequestingSignatureKey: []byte("k"), RequestingCredential: basicCred(gAlice),
			GroupInfoPublicKey: []byte("hpke"), JoiningCode: []byte("code"), Signature: []byte("s")}, (*GroupInfoRequest).Marshal, UnmarshalGroupInfoRequest),
		mk("GroupInfoRequest", &GroupInfoRequest{Protocol: MLS10, CipherSuite: 2, RequestingCredential: x509Cred([]byte("c")), GroupInfoPublicKey: []byte("hpke")},
			(*GroupInfoRequest).Marshal, UnmarshalGroupInfoRequest),
		mk("GroupInfoResponse", &GroupInfoResponse{Protocol: MLS10, RoomID: gRoom, Status: GroupInfoSuccess, CipherSuite: 1,
			HubSender: ExternalSender{SignatureKey: []byte("hub-key"), Credential: basicCred("mimi://d.test")},
			Encrypted: HPKECiphertext{KEMOutput: []byte("kem"), Ciphertext: []byte("ct")}, Signature: []byte("s")}, (*GroupInfoResponse).Marshal, UnmarshalGroupInfoResponse),
		mk("GroupInfoResponse", &GroupInfoResponse{Protocol: MLS10, RoomID: gRoom, Status: GroupInfoNotAuthorized}, (*GroupInfoResponse).Marshal, UnmarshalGroupInfoResponse),
		mk("GroupInfoResponse", &GroupInfoResponse{Protocol: MLS10, RoomID: gRoom, Status: GroupInfoNoSuchRoom}, (*GroupInfoResponse).Marshal, UnmarshalGroupInfoResponse),
		mk("GroupInfoRatchetTreeTBE", &GroupInfoRatchetTreeTBE{GroupInfo: bareGI, RatchetTree: RatchetTreeOption{Kind: TreeFull, Tree: realTree},
			PendingProposals: []PendingProposal{{Proposal: m.removeProposal, HubAcceptedTime: 1}, {Proposal: hand["self remove"], HubAcceptedTime: 2}}},
			(*GroupInfoRatchetTreeTBE).Marshal, UnmarshalGroupInfoRatchetTreeTBE),
		mk("ConsentEntry", &ConsentEntry{Operation: ConsentRequest, RequesterURI: gAlice, TargetURI: gBob, RoomID: gRoom}, (*ConsentEntry).Marshal, UnmarshalConsentEntry),
		mk("ConsentEntry", &ConsentEntry{Operation: ConsentCancel, RequesterURI: gAlice, TargetURI: gBob}, (*ConsentEntry).Marshal, UnmarshalConsentEntry),
		mk("ConsentEntry", &ConsentEntry{Operation: ConsentGrant, RequesterURI: gAlice, TargetURI: gBob, KeyPackages: [][]byte{m.keyPackage, m.keyPackageX509},
			Extensions: AppDataDictionary{{ID: 1, Data: []byte("a")}, {ID: 0x22, Data: nil}}}, (*ConsentEntry).Marshal, UnmarshalConsentEntry),
		mk("ConsentEntry", &ConsentEntry{Operation: ConsentGrant, RequesterURI: gAlice, TargetURI: gBob}, (*ConsentEntry).Marshal, UnmarshalConsentEntry),
		mk("ConsentEntry", &ConsentEntry{Operation: ConsentRevoke, RequesterURI: gAlice, TargetURI: gBob, RoomID: gRoom}, (*ConsentEntry).Marshal, UnmarshalConsentEntry),
		mk("IdentifierRequest", &IdentifierRequest{QueryElements: []QueryElement{{Type: SearchOIDCStdClaim, Name: "given_name", Value: "Zoë"},
			{Type: SearchEmail, Value: "bob@gw.test"}}, Extensions: AppDataDictionary{{ID: 9, Data: []byte{1}}}}, (*IdentifierRequest).Marshal, UnmarshalIdentifierRequest),
		mk("IdentifierRequest", &IdentifierRequest{}, (*IdentifierRequest).Marshal, UnmarshalIdentifierRequest),
		mk("IdentifierResponse", &IdentifierResponse{Code: IDAmbiguous}, (*IdentifierResponse).Marshal, UnmarshalIdentifierResponse),
		mk("IdentifierResponse", &IdentifierResponse{Code: IDSuccess, URIs: []string{gBob, gAlice}, Profiles: []UserProfile{
			{StableURI: gBob, Fields: []ProfileField{{Source: FieldVCardField, Name: "TEL", Value: []byte("+15550100002")}, {Source: FieldOIDCStdClaim, Name: "name"}}},
			{StableURI: gAlice}}}, (*IdentifierResponse).Marshal, UnmarshalIdentifierResponse),
		mk("AbuseReport", &AbuseReport{ReportingUser: gAlice, AllegedAbuserURI: gBob, Reason: 0, Note: "spam, über alles",
			Messages:   []AbusiveMessage{{Content: []byte("cbor"), Frank: *frank, AcceptedTimestamp: 9}, {Frank: Frank{CipherSuite: 1}}},
			Extensions: AppDataDictionary{{ID: 2}}}, (*AbuseReport).Marshal, UnmarshalAbuseReport),
		mk("AbuseReport", &AbuseReport{AllegedAbuserURI: gBob, Reason: 200}, (*AbuseReport).Marshal, UnmarshalAbuseReport),
		mk("PartialGroupInfo", &PartialGroupInfo{Presence: RatchetTreeAdded, Extensions: []Extension{{Type: 4, Data: []byte("pub")}, {Type: 0xff00}}, Signature: []byte("s")},
			(*PartialGroupInfo).Marshal, UnmarshalPartialGroupInfo),
		mk("PartialGroupInfo", &PartialGroupInfo{}, (*PartialGroupInfo).Marshal, UnmarshalPartialGroupInfo),
		mk("RatchetTreeOption", &RatchetTreeOption{Kind: TreeFull, Tree: handTree()}, (*RatchetTreeOption).Marshal, UnmarshalRatchetTreeOption),
		mk("RatchetTreeOption", &RatchetTreeOption{Kind: TreeFull, Tree: realTree}, (*RatchetTreeOption).Marshal, UnmarshalRatchetTreeOption),
		mk("RatchetTreeOption", &RatchetTreeOption{Kind: TreeHTTPSURI, URL: "HTTPS://Hub.Test/t"}, (*RatchetTreeOption).Marshal, UnmarshalRatchetTreeOption),
		mk("RatchetTreeOption", &RatchetTreeOption{Kind: TreeOutOfBand}, (*RatchetTreeOption).Marshal, UnmarshalRatchetTreeOption),
		mk("RatchetTreeOption", &RatchetTreeOption{Kind: TreeDistributionService}, (*RatchetTreeOption).Marshal, UnmarshalRatchetTreeOption),
		mk("GroupInfoOption", &GroupInfoOption{Kind: GroupInfoFull, GroupInfo: bareGI}, (*GroupInfoOption).Marshal, UnmarshalGroupInfoOption),
		mk("GroupInfoOption", &GroupInfoOption{Kind: GroupInfoPartial, GroupInfo: partial}, (*GroupInfoOption).Marshal, UnmarshalGroupInfoOption),
		mk("Capabilities", &Capabilities{Versions: []uint16{1}, CipherSuites: []uint16{1, 2, 3}, Extensions: []uint16{6}, Proposals: []uint16{8, 10}, Credentials: []uint16{1, 2}},
			(*Capabilities).Marshal, UnmarshalCapabilities),
		mk("RequiredCapabilities", &RequiredCapabilities{Proposals: []uint16{8}}, (*RequiredCapabilities).Marshal, UnmarshalRequiredCapabilities),
		mk("ClientKeyMaterial", &ClientKeyMaterial{Status: NothingCompatible, ClientURI: gCli, Capabilities: &Capabilities{}}, (*ClientKeyMaterial).Marshal, UnmarshalClientKeyMaterial),
		mk("ClientKeyMaterial", &ClientKeyMaterial{Status: ClientSuccess, ClientURI: gCli, KeyPackage: m.keyPackage}, (*ClientKeyMaterial).Marshal, UnmarshalClientKeyMaterial),
		mk("Frank", frank, (*Frank).Marshal, UnmarshalFrank),
		mk("PendingProposal", &PendingProposal{Proposal: m.gceProposal, HubAcceptedTime: 3}, (*PendingProposal).Marshal, UnmarshalPendingProposal),
		mk("QueryElement", &QueryElement{Type: SearchVCardField, Name: "ORG", Value: "ACME"}, (*QueryElement).Marshal, UnmarshalQueryElement),
		mk("UserProfile", &UserProfile{StableURI: gBob, Fields: []ProfileField{{Source: FieldVCardField, Name: "FN", Value: []byte("Bob")}}}, (*UserProfile).Marshal, UnmarshalUserProfile),
		mk("ExternalSender", &ExternalSender{SignatureKey: []byte("k"), Credential: basicCred("mimi://d.test")}, (*ExternalSender).Marshal, UnmarshalExternalSender),
		mk("HPKECiphertext", &HPKECiphertext{KEMOutput: []byte("kem")}, (*HPKECiphertext).Marshal, UnmarshalHPKECiphertext),
		mk("AbusiveMessage", &AbusiveMessage{Content: []byte("c"), Frank: *frank, AcceptedTimestamp: 1}, (*AbusiveMessage).Marshal, UnmarshalAbusiveMessage),
	}
	dict := AppDataDictionary{{ID: 1}, {ID: 2, Data: []byte("x")}}
	out = append(out, sample{"AppDataDictionary", dict, dict.Marshal, func(b []byte) (any, error) { return UnmarshalAppDataDictionary(b) }})
	return out
}

// validSamples returns the encoding of every sample by structure, plus
// notify bodies and MLS messages.
func validSamples(t testing.TB) map[string][][]byte {
	out := map[string][][]byte{}
	var notify []byte
	for _, s := range samples(t) {
		b, err := s.marshal()
		if err != nil {
			t.Fatalf("%s %+v: %v", s.structure, s.value, err)
		}
		out[s.structure] = append(out[s.structure], b)
		if s.structure == "FanoutMessage" {
			notify = append(notify, b...)
			out["Notify"] = append(out["Notify"], b, bytes.Clone(notify))
		}
	}
	m := mustReal(t)
	out["MLSMessage"] = [][]byte{m.addCommit, m.updateCommit, m.externalCommit, m.addProposal, m.removeProposal, m.gceProposal,
		m.pskProposal, m.reinitProposal, m.app, m.welcome, WrapMLSMessage(GroupInfo, m.groupInfo), WrapMLSMessage(KeyPackage, m.keyPackage),
		WrapMLSMessage(KeyPackage, m.keyPackageX509)}
	for _, b := range handMessages() {
		out["MLSMessage"] = append(out["MLSMessage"], b)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range samples(t) {
		b, err := s.marshal()
		if err != nil {
			t.Errorf("%s: Marshal: %v", s.structure, err)
			continue
		}
		got, err := s.unmarshal(b)
		if err != nil {
			t.Errorf("%s: Unmarshal: %v\n%x", s.structure, err, b)
			continue
		}
		if !reflect.DeepEqual(got, s.value) {
			t.Errorf("%s: decode(encode(x)) != x\n got %+v\nwant %+v", s.structure, got, s.value)
			continue
		}
		again, err := samplesMarshal(got)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("%s: encode(decode(b)) != b (%v)", s.structure, err)
		}
	}
}

// samplesMarshal calls the Marshal method of any decoded value.
func samplesMarshal(v any) ([]byte, error) {
	m, ok := v.(interface{ Marshal() ([]byte, error) })
	if !ok {
		return nil, errors.New("no Marshal method")
	}
	return m.Marshal()
}

// TestDecodedValuesDoNotAlias: changing the input after decoding changes
// nothing decoded.
func TestDecodedValuesDoNotAlias(t *testing.T) {
	t.Parallel()
	for _, s := range samples(t) {
		b, err := s.marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] ^= 0xff
		}
		if !reflect.DeepEqual(got, s.value) {
			t.Errorf("%s: decoded value changed with its input", s.structure)
		}
	}
}

func TestUnwrapAliases(t *testing.T) {
	t.Parallel()
	m := mustReal(t)
	wf, body, err := UnwrapMLSMessage(m.welcome)
	if err != nil || wf != Welcome || &body[0] != &m.welcome[4] {
		t.Fatalf("Unwrap: %v %v", wf, err)
	}
}
