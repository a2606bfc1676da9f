package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// Every decoder is fuzzed. Seeds are the valid samples (real mls-go
// messages and hand-made ones), the golden bytes and the bad-input cases.
// The properties: nothing panics; every refusal is a *FieldError wrapping
// ErrMalformed; whatever decodes encodes back to the very same bytes and
// decodes again to the same value.

func seed(f *testing.F, structure string) {
	for _, b := range validSamples(f)[structure] {
		f.Add(b)
	}
	for _, c := range badInputCases()[structure] {
		f.Add(c.in)
	}
	for _, g := range goldenSeeds(f)[structure] {
		f.Add(g)
	}
}

func goldenSeeds(t testing.TB) map[string][][]byte {
	return map[string][][]byte{
		"KeyMaterialRequest":    {hx(t, goldenKMRequest)},
		"KeyMaterialResponse":   {hx(t, goldenKMResponse)},
		"FanoutMessage":         {hx(t, goldenApplicationFanout), hx(t, goldenWelcomeFanout)},
		"Notify":                {hx(t, goldenApplicationFanout+goldenWelcomeFanout)},
		"SubmitMessageRequest":  {hx(t, goldenSubmitRequest)},
		"SubmitMessageResponse": {hx(t, goldenSubmitAccepted)},
		"IdentifierRequest":     {hx(t, goldenPhoneQuery), hx(t, goldenVCardQuery)},
		"IdentifierResponse":    {hx(t, goldenIdentifierResponse)},
		"UpdateRoomResponse":    {hx(t, goldenInvalidProposal)},
		"ClientKeyMaterial":     {cat(u8b(0), vec(str(gCli)), hx(t, goldenKeyPackage))},
		"MLSMessage":            {hx(t, goldenPrivate), WrapMLSMessage(KeyPackage, hx(t, goldenKeyPackage))},
	}
}

// checkRefusal fails unless err is one a decoder may return.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrMalformed) || errors.Is(err, ErrInvalid) || fe.Field == "" {
		t.Fatalf("refusal %T %v is not a *FieldError wrapping ErrMalformed", err, err)
	}
}

func fuzzStructure[T any](f *testing.F, structure string, dec func([]byte) (*T, error), enc func(*T) ([]byte, error)) {
	seed(f, structure)
	fuzzRoundTrip(f, dec, enc)
}

// fuzzRoundTrip checks that what dec takes encodes back to the same bytes
// and decodes to the same value, and that what it refuses is refused as a
// decoder must.
func fuzzRoundTrip[T any](f *testing.F, dec func([]byte) (*T, error), enc func(*T) ([]byte, error)) {
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := dec(b)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		out, err := enc(v)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v\n%x", err, b)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs\n  in %x\n out %x", b, out)
		}
		again, err := dec(out)
		if err != nil || !reflect.DeepEqual(again, v) {
			t.Fatalf("decode-encode-decode changed the value: %v", err)
		}
	})
}

func FuzzKeyMaterialRequest(f *testing.F) {
	fuzzStructure(f, "KeyMaterialRequest", UnmarshalKeyMaterialRequest, (*KeyMaterialRequest).Marshal)
}

func FuzzKeyMaterialResponse(f *testing.F) {
	fuzzStructure(f, "KeyMaterialResponse", UnmarshalKeyMaterialResponse, (*KeyMaterialResponse).Marshal)
}

func FuzzHandshakeBundle(f *testing.F) {
	fuzzStructure(f, "HandshakeBundle", UnmarshalHandshakeBundle, (*HandshakeBundle).Marshal)
}

func FuzzUpdateRoomResponse(f *testing.F) {
	fuzzStructure(f, "UpdateRoomResponse", UnmarshalUpdateRoomResponse, (*UpdateRoomResponse).Marshal)
}

func FuzzSubmitMessageRequest(f *testing.F) {
	fuzzStructure(f, "SubmitMessageRequest", UnmarshalSubmitMessageRequest, (*SubmitMessageRequest).Marshal)
}

func FuzzSubmitMessageResponse(f *testing.F) {
	fuzzStructure(f, "SubmitMessageResponse", UnmarshalSubmitMessageResponse, (*SubmitMessageResponse).Marshal)
}

func FuzzFanoutMessage(f *testing.F) {
	fuzzStructure(f, "FanoutMessage", UnmarshalFanoutMessage, (*FanoutMessage).Marshal)
}

func FuzzGroupInfoRequest(f *testing.F) {
	fuzzStructure(f, "GroupInfoRequest", UnmarshalGroupInfoRequest, (*GroupInfoRequest).Marshal)
}

func FuzzGroupInfoResponse(f *testing.F) {
	fuzzStructure(f, "GroupInfoResponse", UnmarshalGroupInfoResponse, (*GroupInfoResponse).Marshal)
}

func FuzzGroupInfoRatchetTreeTBE(f *testing.F) {
	fuzzStructure(f, "GroupInfoRatchetTreeTBE", UnmarshalGroupInfoRatchetTreeTBE, (*GroupInfoRatchetTreeTBE).Marshal)
}

func FuzzConsentEntry(f *testing.F) {
	fuzzStructure(f, "ConsentEntry", UnmarshalConsentEntry, (*ConsentEntry).Marshal)
}

func FuzzIdentifierRequest(f *testing.F) {
	fuzzStructure(f, "IdentifierRequest", UnmarshalIdentifierRequest, (*IdentifierRequest).Marshal)
}

func FuzzIdentifierResponse(f *testing.F) {
	fuzzStructure(f, "IdentifierResponse", UnmarshalIdentifierResponse, (*IdentifierResponse).Marshal)
}

func FuzzAbuseReport(f *testing.F) {
	fuzzStructure(f, "AbuseReport", UnmarshalAbuseReport, (*AbuseReport).Marshal)
}

func FuzzPartialGroupInfo(f *testing.F) {
	fuzzStructure(f, "PartialGroupInfo", UnmarshalPartialGroupInfo, (*PartialGroupInfo).Marshal)
}

func FuzzRatchetTreeOption(f *testing.F) {
	fuzzStructure(f, "RatchetTreeOption", UnmarshalRatchetTreeOption, (*RatchetTreeOption).Marshal)
}

func FuzzGroupInfoOption(f *testing.F) {
	fuzzStructure(f, "GroupInfoOption", UnmarshalGroupInfoOption, (*GroupInfoOption).Marshal)
}

func FuzzClientKeyMaterial(f *testing.F) {
	fuzzStructure(f, "ClientKeyMaterial", UnmarshalClientKeyMaterial, (*ClientKeyMaterial).Marshal)
}

func FuzzNotify(f *testing.F) {
	seed(f, "Notify")
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := UnmarshalNotify(b)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		out, err := MarshalNotify(msgs...)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs (%v)\n  in %x\n out %x", err, b, out)
		}
		// Each message on its own is a valid FanoutMessage.
		for _, m := range msgs {
			one, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := UnmarshalFanoutMessage(one); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzMLSMessage(f *testing.F) {
	seed(f, "MLSMessage")
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := InspectMLSMessage(b)
		if err != nil {
			checkRefusal(t, err)
			if _, _, err := UnwrapMLSMessage(b); err == nil {
				t.Fatal("Unwrap accepts what Inspect refuses")
			}
			return
		}
		wf, body, err := UnwrapMLSMessage(b)
		if err != nil || wf != info.WireFormat || !bytes.Equal(WrapMLSMessage(wf, body), b) {
			t.Fatalf("unwrap/wrap: %v", err)
		}
		// The bare structures MIMI embeds read the same way.
		kind := map[WireFormat]mlsKind{Welcome: kindWelcome, GroupInfo: kindGroupInfo, KeyPackage: kindKeyPackage}[wf]
		if kind != 0 {
			if _, err := walk(body, kind); err != nil {
				t.Fatalf("body of a valid %v refused: %v", wf, err)
			}
		}
		if (info.WireFormat == PublicMessage || info.WireFormat == PrivateMessage) != (info.ContentType != 0) {
			t.Fatalf("content type %v for %v", info.ContentType, info.WireFormat)
		}
	})
}

// FuzzMarshal builds values from arbitrary fields: Marshal either refuses
// them with ErrInvalid or writes bytes the decoder accepts and encodes
// back the same.
func FuzzMarshal(f *testing.F) {
	m := mustReal(f)
	msgs := [][]byte{m.app, m.welcome, m.addProposal, m.updateCommit, WrapMLSMessage(GroupInfo, m.groupInfo), handProposal(u16b(proposalSelfRemove))}
	f.Add(gAlice, gBob, m.keyPackage, handTree(), uint8(0), uint8(0), uint64(1))
	f.Add("", "https://hub.test/t", []byte{}, []byte(nil), uint8(0x21), uint8(1), uint64(0))
	f.Add("\xff", "+15550100002", handKeyPackage("x"), []byte{1}, uint8(0x42), uint8(2), uint64(1<<63))
	f.Add(gRoom, "ORG", []byte("x"), m.keyPackageX509, uint8(0x13), uint8(7), uint64(5))
	f.Fuzz(func(t *testing.T, s1, s2 string, b1, b2 []byte, e1, e2 uint8, n uint64) {
		var frank *Frank
		if e1&1 == 1 {
			frank = &Frank{CipherSuite: uint16(n), Signature: b2}
			copy(frank.ServerFrank[:], b1)
		}
		var caps *Capabilities
		if e2&1 == 1 {
			caps = &Capabilities{Versions: []uint16{uint16(n)}, CipherSuites: []uint16{uint16(e1)}}
		}
		tree := RatchetTreeOption{Kind: TreeKind(e2 % 6), Tree: b2, URL: s2, Signature: b1}
		values := []interface{ Marshal() ([]byte, error) }{
			&KeyMaterialRequest{Protocol: Protocol(e1 % 3), RequestingUser: s1, TargetUser: s2, AcceptableCipherSuites: []uint16{uint16(n)},
				RequesterSignatureKey: b1, RequesterCredential: b2, Signature: b1},
			&KeyMaterialRequest{Protocol: MLS10, RoomID: s1, AcceptableCipherSuites: []uint16{1}, RequesterCredential: basicCred(s2)},
			&KeyMaterialResponse{Protocol: MLS10, UserStatus: UserStatus(e2 % 9), UserURI: s1,
				Clients: []ClientKeyMaterial{{Status: ClientStatus(e1 >> 6), ClientURI: s2, KeyPackage: b1, Capabilities: caps}}},
			&HandshakeBundle{ProposalOrCommit: msgs[int(e1)%len(msgs)], Welcome: b1, GroupInfo: GroupInfoOption{Kind: GroupInfoKind(e1 % 4), GroupInfo: b2}, RatchetTree: tree},
			&HandshakeBundle{ProposalOrCommit: msgs[int(e2)%len(msgs)], MoreProposals: [][]byte{msgs[int(e1)%len(msgs)]}},
			&UpdateRoomResponse{Code: UpdateCode(e1 % 5), ErrorDescription: s1, AcceptedTimestamp: n, InvalidProposals: [][]byte{b1}},
			&SubmitMessageRequest{Protocol: MLS10, AppMessage: msgs[int(e1)%len(msgs)], SendingURI: s1},
			&SubmitMessageResponse{Protocol: MLS10, Status: SubmitStatus(e2 % 4), AcceptedTimestamp: n, Frank: frank},
			&FanoutMessage{Timestamp: n, Message: msgs[int(e2)%len(msgs)], Frank: frank, RatchetTree: tree},
			&FanoutMessage{Timestamp: n, Message: b1},
			&GroupInfoRequest{Protocol: MLS10, CipherSuite: uint16(n), RequestingCredential: b2, JoiningCode: b1},
			&GroupInfoResponse{Protocol: MLS10, RoomID: s1, Status: GroupInfoCode(e1 % 5), HubSender: ExternalSender{Credential: b2}, Signature: b1},
			&ConsentEntry{Operation: ConsentOperation(e1 % 5), RequesterURI: s1, TargetURI: s2, RoomID: s2, KeyPackages: [][]byte{b1},
				Extensions: AppDataDictionary{{ID: uint16(e1)}, {ID: uint16(e2), Data: b2}}},
			&IdentifierRequest{QueryElements: []QueryElement{{Type: SearchType(e1 % 10), Name: s1, Value: s2}}},
			&IdentifierResponse{Code: IDCode(e2 % 6), URIs: []string{s1}, Profiles: []UserProfile{{StableURI: s2,
				Fields: []ProfileField{{Source: FieldSource(e1), Name: s1, Value: b1}}}}},
			&AbuseReport{ReportingUser: s1, AllegedAbuserURI: s2, Reason: AbuseType(e1), Note: s1, Messages: []AbusiveMessage{{Content: b1, AcceptedTimestamp: n}}},
			&PartialGroupInfo{Presence: RatchetTreePresence(e1 % 5), Extensions: []Extension{{Type: uint16(n), Data: b1}}, Signature: b2},
			&tree,
		}
		for i, v := range values {
			b, err := v.Marshal()
			if err != nil {
				var fe *FieldError
				if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrMalformed) || !errors.As(err, &fe) {
					t.Fatalf("value %d: refusal %v does not wrap ErrInvalid", i, err)
				}
				continue
			}
			dec, err := decodeAs(v, b)
			if err != nil {
				t.Fatalf("value %d: Marshal wrote what the decoder refuses: %v\n%x", i, err, b)
			}
			again, err := dec.Marshal()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("value %d: re-encoding differs (%v)", i, err)
			}
		}
	})
}

// decodeAs decodes b as the type of v.
func decodeAs(v any, b []byte) (interface{ Marshal() ([]byte, error) }, error) {
	switch v.(type) {
	case *KeyMaterialRequest:
		return UnmarshalKeyMaterialRequest(b)
	case *KeyMaterialResponse:
		return UnmarshalKeyMaterialResponse(b)
	case *HandshakeBundle:
		return UnmarshalHandshakeBundle(b)
	case *UpdateRoomResponse:
		return UnmarshalUpdateRoomResponse(b)
	case *SubmitMessageRequest:
		return UnmarshalSubmitMessageRequest(b)
	case *SubmitMessageResponse:
		return UnmarshalSubmitMessageResponse(b)
	case *FanoutMessage:
		return UnmarshalFanoutMessage(b)
	case *GroupInfoRequest:
		return UnmarshalGroupInfoRequest(b)
	case *GroupInfoResponse:
		return UnmarshalGroupInfoResponse(b)
	case *ConsentEntry:
		return UnmarshalConsentEntry(b)
	case *IdentifierRequest:
		return UnmarshalIdentifierRequest(b)
	case *IdentifierResponse:
		return UnmarshalIdentifierResponse(b)
	case *AbuseReport:
		return UnmarshalAbuseReport(b)
	case *PartialGroupInfo:
		return UnmarshalPartialGroupInfo(b)
	case *RatchetTreeOption:
		return UnmarshalRatchetTreeOption(b)
	}
	return nil, errors.New("no decoder")
}
