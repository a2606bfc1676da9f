package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// Golden bytes written out by hand from draft-ietf-mimi-protocol-06 and
// RFC 9420, field by field. Each is decoded and compared with the value
// it stands for, and that value is encoded and compared with the bytes.

const (
	hexAlice = "6d696d693a2f2f642e746573742f752f616c696365"                 // "mimi://d.test/u/alice", 21 bytes
	hexBob   = "6d696d693a2f2f67772e746573742f752f2b3135353530313030303032" // "mimi://gw.test/u/+15550100002", 29 bytes
	hexRoom  = "6d696d693a2f2f642e746573742f722f6c756e6368"                 // "mimi://d.test/r/lunch", 21 bytes
	hexPhone = "2b3135353530313030303032"                                   // "+15550100002", 12 bytes
	hexCli   = "6d696d693a2f2f67772e746573742f632f37"                       // "mimi://gw.test/c/7", 18 bytes

	gAlice = "mimi://d.test/u/alice"
	gBob   = "mimi://gw.test/u/+15550100002"
	gRoom  = "mimi://d.test/r/lunch"
	gCli   = "mimi://gw.test/c/7"
)

// goldenKeyPackage is a bare KeyPackage, 42 bytes.
const goldenKeyPackage = `
	0001             // version mls10
	0001             // cipher_suite 1
	01 aa            // init_key<V>
	01 bb            // leaf_node.encryption_key<V>
	01 cc            // leaf_node.signature_key<V>
	0001 01 62       // leaf_node.credential: basic, identity<V> "b"
	00 00 00 00 00   // leaf_node.capabilities: five empty vectors
	01               // leaf_node.leaf_node_source key_package
	0000000000000000 // lifetime.not_before
	ffffffffffffffff // lifetime.not_after
	00               // leaf_node.extensions<V>
	01 dd            // leaf_node.signature<V>
	00               // extensions<V>
	01 ee            // signature<V>
`

// goldenPrivate is an MLSMessage holding a PrivateMessage of
// content_type application, 23 bytes.
const goldenPrivate = `
	0001 0002        // version mls10, wire_format mls_private_message
	01 67            // group_id<V> "g"
	0000000000000005 // epoch 5
	01               // content_type application
	00               // authenticated_data<V>
	02 aabb          // encrypted_sender_data<V>
	03 ccddee        // ciphertext<V>
`

const goldenFrank = `
	11111111111111111111111111111111 11111111111111111111111111111111 // server_frank[32]
	0001             // franking_signature_ciphersuite 1
	02 f00d          // franking_integrity_signature<V>
`

func goldenFrankValue() *Frank {
	f := &Frank{CipherSuite: 1, Signature: []byte{0xf0, 0x0d}}
	for i := range f.ServerFrank {
		f.ServerFrank[i] = 0x11
	}
	return f
}

// Golden bytes also seed the fuzz tests.

var goldenKMRequestBody = `
		01                  // protocol mls10
		15 ` + hexAlice + ` // requestingUser<V>
		1d ` + hexBob + `   // targetUser<V>
		15 ` + hexRoom + `  // roomId<V>
		02 0001             // acceptableCiphersuites<V>: [1]
		02 0006             // requiredCapabilities.extension_types<V>: [app_data_dictionary]
		02 0008             // requiredCapabilities.proposal_types<V>: [app_data_update]
		00                  // requiredCapabilities.credential_types<V>: []
		04 01020304         // requesterSignatureKey<V>
		0001 15 ` + hexAlice + ` // requesterCredential: basic, identity<V>
	`

var goldenKMRequest = goldenKMRequestBody + `02 aabb // key_material_request_signature<V>`

var goldenKMResponse = `
		01                 // protocol mls10
		01                 // userStatus partialSuccess
		1d ` + hexBob + `      // userUri<V>
		4074               // clients<V>: 116 bytes
		  00               // clients[0].clientStatus success
		  12 ` + hexCli + `    // clients[0].clientUri<V>
		  ` + goldenKeyPackage + `
		  01               // clients[1].clientStatus keyMaterialExhausted
		  12 ` + hexCli + `    // clients[1].clientUri<V>
		  02               // clients[2].clientStatus nothingCompatible
		  12 ` + hexCli + `    // clients[2].clientUri<V>
		  01               // optional<Capabilities>: present
		  02 0001          // versions<V>: [mls10]
		  04 0001 0002     // cipher_suites<V>: [1, 2]
		  00               // extensions<V>
		  00               // proposals<V>
		  02 0001          // credentials<V>: [basic]
	`

var goldenSubmitRequest = `
		01           // protocol mls10
		` + goldenPrivate + `
		15 ` + hexAlice + ` // sendingUri<V>
	`

var goldenSubmitAccepted = `
		01               // protocol mls10
		00               // statusCode accepted
		` + goldenTimestamp + ` // accepted_timestamp
		01               // optional<Frank>: present
		` + goldenFrank

var goldenPhoneQuery = `
		0e                  // query_elements<V>: 14 bytes
		  04                // searchType phone
		  0c ` + hexPhone + `   // searchValue<V> "+15550100002"
		00                  // id_request_extensions.component_data<V>
	`

var goldenVCardQuery = `
		0f                  // query_elements<V>: 15 bytes
		  08                // [0].searchType vcardField
		  03 4f5247         // [0].propertyName<V> "ORG"
		  04 41434d45       // [0].searchValue<V> "ACME"
		  05                // [1].searchType partialName
		  03 626f62         // [1].searchValue<V> "bob"
		00                  // id_request_extensions.component_data<V>
	`

var goldenIdentifierResponse = `
		00                  // responseCode success
		1e                  // uri<V>: 30 bytes
		  1d ` + hexBob + `     // uri[0]<V>
		29                  // foundProfiles<V>: 41 bytes
		  1d ` + hexBob + `     // [0].stableUri<V>
		  0a                // [0].fields<V>: 10 bytes
		    07              // fieldSource oidcStdClaim
		    04 6e616d65     // fieldName<V> "name"
		    03 426f62       // fieldValue<V> "Bob"
		04                  // id_response_extensions.component_data<V>: 4 bytes
		  0001 01 ff        // component 1, data<V>
	`

var goldenInvalidProposal = `
		03              // responseCode invalidProposal
		03 626164       // errorDescription<V> "bad"
		05              // invalidProposals<V>: 5 bytes
		  02 0102       // [0] ProposalRef<V>
		  01 03         // [1] ProposalRef<V>
	`

// checkGolden decodes golden with dec, compares with want, and encodes
// want with enc.
func checkGolden[T any](t *testing.T, golden []byte, want *T, dec func([]byte) (*T, error), enc func(*T) ([]byte, error)) {
	t.Helper()
	got, err := dec(golden)
	if err != nil {
		t.Fatalf("decoding the golden bytes: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n  %+v\nwant\n  %+v", got, want)
	}
	out, err := enc(want)
	if err != nil {
		t.Fatalf("encoding: %v", err)
	}
	if !bytes.Equal(out, golden) {
		t.Errorf("encoded\n  %x\nwant\n  %x", out, golden)
	}
}

func TestGoldenKeyMaterialRequest(t *testing.T) {
	t.Parallel()
	body := goldenKMRequestBody
	golden := hx(t, goldenKMRequest)
	want := &KeyMaterialRequest{
		Protocol: MLS10, RequestingUser: gAlice, TargetUser: gBob, RoomID: gRoom,
		AcceptableCipherSuites: []uint16{1},
		RequiredCapabilities:   RequiredCapabilities{Extensions: []uint16{6}, Proposals: []uint16{8}},
		RequesterSignatureKey:  []byte{1, 2, 3, 4},
		RequesterCredential:    hx(t, "0001 15"+hexAlice),
		Signature:              []byte{0xaa, 0xbb},
	}
	checkGolden(t, golden, want, UnmarshalKeyMaterialRequest, (*KeyMaterialRequest).Marshal)

	// The body above is 114 bytes: content<V> takes a two-byte length.
	tbs := hx(t, `
		1d 4d4c5320312e30204b65794d6174657269616c52657175657374544253 // label<V> "MLS 1.0 KeyMaterialRequestTBS"
		4072 // content<V>: 114 bytes
	`+body)
	got, err := want.TBS()
	if err != nil || !bytes.Equal(got, tbs) {
		t.Errorf("TBS %x, %v\nwant %x", got, err, tbs)
	}
}

func TestGoldenKeyMaterialResponse(t *testing.T) {
	t.Parallel()
	golden := hx(t, goldenKMResponse)
	want := &KeyMaterialResponse{
		Protocol: MLS10, UserStatus: PartialSuccess, UserURI: gBob,
		Clients: []ClientKeyMaterial{
			{Status: ClientSuccess, ClientURI: gCli, KeyPackage: hx(t, goldenKeyPackage)},
			{Status: KeyMaterialExhausted, ClientURI: gCli},
			{Status: NothingCompatible, ClientURI: gCli, Capabilities: &Capabilities{
				Versions: []uint16{1}, CipherSuites: []uint16{1, 2}, Credentials: []uint16{1}}},
		},
	}
	checkGolden(t, golden, want, UnmarshalKeyMaterialResponse, (*KeyMaterialResponse).Marshal)
}

const goldenTimestamp = "0000018f0a2b3c4d" // 1715000000589 ms

// goldenApplicationFanout is a FanoutMessage for an application message.
var goldenApplicationFanout = goldenTimestamp + ` // timestamp
	` + goldenPrivate + `
	01 // optional<Frank>: present
	` + goldenFrank

// goldenWelcomeFanout is a FanoutMessage for a Welcome.
var goldenWelcomeFanout = goldenTimestamp + ` // timestamp
	0001 0003        // version mls10, wire_format mls_welcome
	0001             // cipher_suite 1
	06               // secrets<V>: 6 bytes
	  01 01          // secrets[0].new_member<V> (KeyPackageRef)
	  01 aa 01 bb    // secrets[0].encrypted_group_secrets: kem_output<V>, ciphertext<V>
	02 eeff          // encrypted_group_info<V>
	04               // RatchetTreeOption: distributionService
`

func goldenWelcomeValue(t *testing.T) []byte {
	return hx(t, "0001 0003 0001 06 0101 01aa 01bb 02eeff")
}

func TestGoldenFanoutMessage(t *testing.T) {
	t.Parallel()
	ts := uint64(0x0000018f0a2b3c4d)
	app := &FanoutMessage{Timestamp: ts, Message: hx(t, goldenPrivate), Frank: goldenFrankValue()}
	checkGolden(t, hx(t, goldenApplicationFanout), app, UnmarshalFanoutMessage, (*FanoutMessage).Marshal)

	welcome := &FanoutMessage{Timestamp: ts, Message: goldenWelcomeValue(t), RatchetTree: RatchetTreeOption{Kind: TreeDistributionService}}
	checkGolden(t, hx(t, goldenWelcomeFanout), welcome, UnmarshalFanoutMessage, (*FanoutMessage).Marshal)

	commit := `
		0001 0001        // version mls10, wire_format mls_public_message
		01 67            // content.group_id<V> "g"
		0000000000000005 // content.epoch
		01 00000000      // content.sender: member, leaf_index 0
		00               // content.authenticated_data<V>
		03               // content.content_type commit
		00               // commit.proposals<V>
		00               // commit.path: absent
		01 51            // auth.signature<V>
		01 c7            // auth.confirmation_tag<V>
		01 3a            // membership_tag<V>
	`
	hubRemove := `
		0001 0001        // version mls10, wire_format mls_public_message
		01 67            // content.group_id<V> "g"
		0000000000000006 // content.epoch
		02 00000000      // content.sender: external, sender_index 0 (the hub)
		00               // content.authenticated_data<V>
		02               // content.content_type proposal
		0003 00000001    // proposal: remove, removed leaf 1
		01 51            // auth.signature<V> (no membership_tag: not a member)
	`
	stapled := hx(t, goldenTimestamp+` // timestamp
		`+commit+`
		1d                // externalProposals<V>: 29 bytes
		`+hubRemove)
	want := &FanoutMessage{Timestamp: ts, Message: hx(t, commit), ExternalProposals: [][]byte{hx(t, hubRemove)}}
	checkGolden(t, stapled, want, UnmarshalFanoutMessage, (*FanoutMessage).Marshal)

	// A notify body: the application and the Welcome fanouts back to back.
	notify := hx(t, goldenApplicationFanout+goldenWelcomeFanout)
	got, err := UnmarshalNotify(notify)
	if err != nil || len(got) != 2 || !reflect.DeepEqual(got[0], app) || !reflect.DeepEqual(got[1], welcome) {
		t.Fatalf("notify: %+v, %v", got, err)
	}
	out, err := MarshalNotify(app, welcome)
	if err != nil || !bytes.Equal(out, notify) {
		t.Fatalf("MarshalNotify: %x, %v", out, err)
	}
}

func TestGoldenSubmitMessage(t *testing.T) {
	t.Parallel()
	req := hx(t, goldenSubmitRequest)
	checkGolden(t, req, &SubmitMessageRequest{Protocol: MLS10, AppMessage: hx(t, goldenPrivate), SendingURI: gAlice},
		UnmarshalSubmitMessageRequest, (*SubmitMessageRequest).Marshal)

	accepted := hx(t, goldenSubmitAccepted)
	checkGolden(t, accepted, &SubmitMessageResponse{Protocol: MLS10, Status: Accepted, AcceptedTimestamp: 0x0000018f0a2b3c4d, Frank: goldenFrankValue()},
		UnmarshalSubmitMessageResponse, (*SubmitMessageResponse).Marshal)

	unfranked := hx(t, "01 00 "+goldenTimestamp+" 00 // accepted, no frank")
	checkGolden(t, unfranked, &SubmitMessageResponse{Protocol: MLS10, Status: Accepted, AcceptedTimestamp: 0x0000018f0a2b3c4d},
		UnmarshalSubmitMessageResponse, (*SubmitMessageResponse).Marshal)

	refused := hx(t, "01 01 // mls10, notAllowed: nothing follows")
	checkGolden(t, refused, &SubmitMessageResponse{Protocol: MLS10, Status: SubmitNotAllowed},
		UnmarshalSubmitMessageResponse, (*SubmitMessageResponse).Marshal)

	old := hx(t, "01 02 0000000000000009 // mls10, epochTooOld, currentEpoch 9")
	checkGolden(t, old, &SubmitMessageResponse{Protocol: MLS10, Status: EpochTooOld, CurrentEpoch: 9},
		UnmarshalSubmitMessageResponse, (*SubmitMessageResponse).Marshal)
}

func TestGoldenIdentifier(t *testing.T) {
	t.Parallel()
	phone := hx(t, goldenPhoneQuery)
	checkGolden(t, phone, &IdentifierRequest{QueryElements: []QueryElement{PhoneQuery("+15550100002")}},
		UnmarshalIdentifierRequest, (*IdentifierRequest).Marshal)

	vcard := hx(t, goldenVCardQuery)
	checkGolden(t, vcard, &IdentifierRequest{QueryElements: []QueryElement{
		{Type: SearchVCardField, Name: "ORG", Value: "ACME"}, {Type: SearchPartialName, Value: "bob"}}},
		UnmarshalIdentifierRequest, (*IdentifierRequest).Marshal)

	resp := hx(t, goldenIdentifierResponse)
	checkGolden(t, resp, &IdentifierResponse{
		Code: IDSuccess, URIs: []string{gBob},
		Profiles:   []UserProfile{{StableURI: gBob, Fields: []ProfileField{{Source: FieldOIDCStdClaim, Name: "name", Value: []byte("Bob")}}}},
		Extensions: AppDataDictionary{{ID: 1, Data: []byte{0xff}}},
	}, UnmarshalIdentifierResponse, (*IdentifierResponse).Marshal)

	none := hx(t, "01 00 00 00 // notFound, no uri, no profiles, no extensions")
	checkGolden(t, none, &IdentifierResponse{Code: IDNotFound}, UnmarshalIdentifierResponse, (*IdentifierResponse).Marshal)
}

func TestGoldenUpdate(t *testing.T) {
	t.Parallel()
	ok := hx(t, "00 00 "+goldenTimestamp+" // success, errorDescription<V> empty, accepted_timestamp")
	checkGolden(t, ok, &UpdateRoomResponse{Code: UpdateSuccess, AcceptedTimestamp: 0x0000018f0a2b3c4d},
		UnmarshalUpdateRoomResponse, (*UpdateRoomResponse).Marshal)
	invalid := hx(t, goldenInvalidProposal)
	checkGolden(t, invalid, &UpdateRoomResponse{Code: InvalidProposal, ErrorDescription: "bad", InvalidProposals: [][]byte{{1, 2}, {3}}},
		UnmarshalUpdateRoomResponse, (*UpdateRoomResponse).Marshal)

	proposal := `
		0001 0001        // version mls10, wire_format mls_public_message
		01 67            // content.group_id<V> "g"
		0000000000000005 // content.epoch
		01 00000002      // content.sender: member, leaf_index 2
		00               // content.authenticated_data<V>
		02               // content.content_type proposal
		0008 0022 01 02 c0de // proposal: app_data_update, component participant_list, op update, update<V>
		01 51            // auth.signature<V>
		01 3a            // membership_tag<V>
	`
	bundle := hx(t, proposal+`00 // moreProposals<V>: none`)
	checkGolden(t, bundle, &HandshakeBundle{ProposalOrCommit: hx(t, proposal)}, UnmarshalHandshakeBundle, (*HandshakeBundle).Marshal)
}
