package wire

import (
	"errors"
	"strings"
	"testing"
)

// TestMarshalRefuses: values the decoder would refuse, or fields their
// case does not carry, are not written.
func TestMarshalRefuses(t *testing.T) {
	t.Parallel()
	m := mustReal(t)
	kp := handKeyPackage("b")
	frank := goldenFrankValue()
	okReq := func() *KeyMaterialRequest {
		return &KeyMaterialRequest{Protocol: MLS10, AcceptableCipherSuites: []uint16{1}, RequesterCredential: basicCred("a")}
	}
	commitBundle := func() *HandshakeBundle {
		return &HandshakeBundle{ProposalOrCommit: commitMsg(nil), GroupInfo: GroupInfoOption{Kind: GroupInfoFull, GroupInfo: handGroupInfo()},
			RatchetTree: RatchetTreeOption{Kind: TreeDistributionService}}
	}
	type marshaler interface{ Marshal() ([]byte, error) }
	with := func(f func(*KeyMaterialRequest)) marshaler { r := okReq(); f(r); return r }
	withBundle := func(f func(*HandshakeBundle)) marshaler { h := commitBundle(); f(h); return h }
	for _, tc := range []struct {
		name  string
		v     marshaler
		field string // the path the error names
	}{
		{"request protocol 0", with(func(r *KeyMaterialRequest) { r.Protocol = 0 }), "keyMaterialRequest.protocol"},
		{"request without cipher suites", with(func(r *KeyMaterialRequest) { r.AcceptableCipherSuites = nil }), "keyMaterialRequest.acceptableCiphersuites"},
		{"request credential empty", with(func(r *KeyMaterialRequest) { r.RequesterCredential = nil }), "keyMaterialRequest.requesterCredential"},
		{"request credential type 3", with(func(r *KeyMaterialRequest) { r.RequesterCredential = cat(u16b(3), vec()) }), "keyMaterialRequest.requesterCredential.credential_type"},
		{"request credential with a byte more", with(func(r *KeyMaterialRequest) { r.RequesterCredential = cat(basicCred("a"), u8b(0)) }), "keyMaterialRequest.requesterCredential"},
		{"request user not UTF-8", with(func(r *KeyMaterialRequest) { r.TargetUser = "\xed\xa0\x80" }), "keyMaterialRequest.targetUser"},
		{"request signature oversize", with(func(r *KeyMaterialRequest) { r.Signature = make([]byte, MaxVector+1) }), "keyMaterialRequest.key_material_request_signature"},
		{"request cipher suites oversize", with(func(r *KeyMaterialRequest) { r.AcceptableCipherSuites = make([]uint16, MaxVector/2+1) }), "keyMaterialRequest.acceptableCiphersuites"},
		{"response status 8", &KeyMaterialResponse{Protocol: MLS10, UserStatus: 8}, "keyMaterialResponse.userStatus"},
		{"clients with userDeleted", &KeyMaterialResponse{Protocol: MLS10, UserStatus: UserDeleted, Clients: []ClientKeyMaterial{{Status: KeyMaterialExhausted}}}, "keyMaterialResponse.clients"},
		{"success without key package", &KeyMaterialResponse{Protocol: MLS10, Clients: []ClientKeyMaterial{{Status: ClientSuccess}}}, "keyMaterialResponse.clients[0].keyPackage"},
		{"key package as an MLSMessage", &KeyMaterialResponse{Protocol: MLS10, Clients: []ClientKeyMaterial{{KeyPackage: WrapMLSMessage(KeyPackage, kp)}}}, "keyMaterialResponse.clients[0].keyPackage.leaf_node.credential.credential_type"},
		{"key package of an exhausted client", &KeyMaterialResponse{Protocol: MLS10, Clients: []ClientKeyMaterial{{Status: KeyMaterialExhausted, KeyPackage: kp}}}, "keyMaterialResponse.clients[0].keyPackage"},
		{"capabilities of a successful client", &KeyMaterialResponse{Protocol: MLS10, Clients: []ClientKeyMaterial{{KeyPackage: kp, Capabilities: &Capabilities{}}}}, "keyMaterialResponse.clients[0].clientCapabilities"},
		{"client status 3", &KeyMaterialResponse{Protocol: MLS10, Clients: []ClientKeyMaterial{{Status: 3}}}, "keyMaterialResponse.clients[0].clientStatus"},
		{"bundle of an application message", &HandshakeBundle{ProposalOrCommit: m.app}, "handshakeBundle.proposalOrCommit"},
		{"bundle of a welcome", &HandshakeBundle{ProposalOrCommit: m.welcome}, "handshakeBundle.proposalOrCommit"},
		{"bundle message with a byte more", &HandshakeBundle{ProposalOrCommit: cat(m.addProposal, u8b(0))}, "handshakeBundle.proposalOrCommit"},
		{"proposal with a welcome", &HandshakeBundle{ProposalOrCommit: m.addProposal, Welcome: handWelcome()}, "handshakeBundle.welcome"},
		{"proposal with a tree", &HandshakeBundle{ProposalOrCommit: m.addProposal, RatchetTree: RatchetTreeOption{Kind: TreeDistributionService}}, "handshakeBundle.ratchetTreeOption"},
		{"proposal with a group info", &HandshakeBundle{ProposalOrCommit: m.addProposal, GroupInfo: GroupInfoOption{Kind: GroupInfoFull}}, "handshakeBundle.groupInfoOption"},
		{"commit with more proposals", withBundle(func(h *HandshakeBundle) { h.MoreProposals = [][]byte{m.removeProposal} }), "handshakeBundle.moreProposals"},
		{"commit without tree option", withBundle(func(h *HandshakeBundle) { h.RatchetTree = RatchetTreeOption{} }), "handshakeBundle.ratchetTreeOption.representation"},
		{"commit without group info", withBundle(func(h *HandshakeBundle) { h.GroupInfo = GroupInfoOption{} }), "handshakeBundle.groupInfoOption.representation"},
		{"welcome as an MLSMessage", withBundle(func(h *HandshakeBundle) { h.Welcome = m.welcome }), "handshakeBundle.welcome"},
		{"group info with its tree", withBundle(func(h *HandshakeBundle) { h.GroupInfo.GroupInfo = m.groupInfo }), "handshakeBundle.groupInfoOption.groupInfo"},
		{"partial group info not one", withBundle(func(h *HandshakeBundle) { h.GroupInfo = GroupInfoOption{Kind: GroupInfoPartial, GroupInfo: []byte{9}} }), "handshakeBundle.groupInfoOption.partialGroupInfo.ratchet_tree_presence"},
		{"partial group info with a byte more", withBundle(func(h *HandshakeBundle) {
			h.GroupInfo = GroupInfoOption{Kind: GroupInfoPartial, GroupInfo: []byte{0, 0, 0, 0}}
		}), "handshakeBundle.groupInfoOption.partialGroupInfo"},
		{"more proposals holding a commit", &HandshakeBundle{ProposalOrCommit: m.addProposal, MoreProposals: [][]byte{m.updateCommit}}, "handshakeBundle.moreProposals[0]"},
		{"tree option full with a URL", withBundle(func(h *HandshakeBundle) {
			h.RatchetTree = RatchetTreeOption{Kind: TreeFull, Tree: handTree(), URL: "https://x"}
		}), "handshakeBundle.ratchetTreeOption.ratchet_tree_url"},
		{"tree option full, tree cut", withBundle(func(h *HandshakeBundle) { h.RatchetTree = RatchetTreeOption{Kind: TreeFull, Tree: handTree()[1:]} }), "handshakeBundle.ratchetTreeOption.ratchet_tree"},
		{"tree option http", withBundle(func(h *HandshakeBundle) { h.RatchetTree = RatchetTreeOption{Kind: TreeHTTPSURI, URL: "http://x"} }), "handshakeBundle.ratchetTreeOption.ratchet_tree_url"},
		{"tree option out of band with a tree", withBundle(func(h *HandshakeBundle) { h.RatchetTree = RatchetTreeOption{Kind: TreeOutOfBand, Tree: handTree()} }), "handshakeBundle.ratchetTreeOption.ratchet_tree"},
		{"tree option DS with a signature", withBundle(func(h *HandshakeBundle) {
			h.RatchetTree = RatchetTreeOption{Kind: TreeDistributionService, Signature: []byte{1}}
		}), "handshakeBundle.ratchetTreeOption.tree_signature"},
		{"update code 4", &UpdateRoomResponse{Code: 4}, "updateRoomResponse.responseCode"},
		{"timestamp on notAllowed", &UpdateRoomResponse{Code: NotAllowed, AcceptedTimestamp: 1}, "updateRoomResponse.accepted_timestamp"},
		{"epoch on success", &UpdateRoomResponse{CurrentEpoch: 1}, "updateRoomResponse.currentEpoch"},
		{"refs on wrongEpoch", &UpdateRoomResponse{Code: WrongEpoch, InvalidProposals: [][]byte{{1}}}, "updateRoomResponse.invalidProposals"},
		{"submit a public message", &SubmitMessageRequest{Protocol: MLS10, AppMessage: m.addProposal}, "submitMessageRequest.appMessage"},
		{"submit protocol 2", &SubmitMessageRequest{Protocol: 2, AppMessage: m.app}, "submitMessageRequest.protocol"},
		{"frank on notAllowed", &SubmitMessageResponse{Protocol: MLS10, Status: SubmitNotAllowed, Frank: frank}, "submitMessageResponse.frank"},
		{"epoch on accepted", &SubmitMessageResponse{Protocol: MLS10, CurrentEpoch: 3}, "submitMessageResponse.currentEpoch"},
		{"submit status 3", &SubmitMessageResponse{Protocol: MLS10, Status: 3}, "submitMessageResponse.statusCode"},
		{"fanout of a group info", &FanoutMessage{Message: WrapMLSMessage(GroupInfo, m.groupInfo)}, "fanoutMessage.message"},
		{"fanout of a key package", &FanoutMessage{Message: WrapMLSMessage(KeyPackage, m.keyPackage)}, "fanoutMessage.message"},
		{"fanout of nothing", &FanoutMessage{}, "fanoutMessage.message"},
		{"frank on a commit", &FanoutMessage{Message: m.updateCommit, Frank: frank}, "fanoutMessage.frank"},
		{"tree on an application message", &FanoutMessage{Message: m.app, RatchetTree: RatchetTreeOption{Kind: TreeFull}}, "fanoutMessage.ratchetTreeOption"},
		{"more proposals on a commit", &FanoutMessage{Message: m.updateCommit, MoreProposals: [][]byte{m.addProposal}}, "fanoutMessage.moreProposals"},
		{"external proposals on a proposal", &FanoutMessage{Message: m.addProposal, ExternalProposals: [][]byte{m.addProposal}}, "fanoutMessage.externalProposals"},
		{"welcome without a tree option", &FanoutMessage{Message: m.welcome}, "fanoutMessage.ratchetTreeOption.representation"},
		{"external proposals holding an application message", &FanoutMessage{Message: m.externalCommit, ExternalProposals: [][]byte{m.app}}, "fanoutMessage.externalProposals[0]"},
		{"group info request credential cut", &GroupInfoRequest{Protocol: MLS10, RequestingCredential: basicCred("a")[:3]}, "groupInfoRequest.requestingCredential.identity"},
		{"group info status reserved", &GroupInfoResponse{Protocol: MLS10}, "groupInfoResponse.status"},
		{"signature on notAuthorized", &GroupInfoResponse{Protocol: MLS10, Status: GroupInfoNotAuthorized, Signature: []byte{1}}, "groupInfoResponse.signature"},
		{"hub sender on noSuchRoom", &GroupInfoResponse{Protocol: MLS10, Status: GroupInfoNoSuchRoom, HubSender: ExternalSender{SignatureKey: []byte{1}}}, "groupInfoResponse.hub_sender"},
		{"success without hub credential", &GroupInfoResponse{Protocol: MLS10, Status: GroupInfoSuccess}, "groupInfoResponse.hub_sender.credential"},
		{"TBE group info with its tree", &GroupInfoRatchetTreeTBE{GroupInfo: m.groupInfo, RatchetTree: RatchetTreeOption{Kind: TreeOutOfBand}}, "groupInfoRatchetTreeTBE.groupInfo"},
		{"TBE pending commit", &GroupInfoRatchetTreeTBE{GroupInfo: handGroupInfo(), RatchetTree: RatchetTreeOption{Kind: TreeOutOfBand},
			PendingProposals: []PendingProposal{{Proposal: m.addProposal}, {Proposal: m.addCommit}}}, "groupInfoRatchetTreeTBE.pending_proposals[1].proposal"},
		{"key packages in a request", &ConsentEntry{Operation: ConsentRequest, KeyPackages: [][]byte{kp}}, "consentEntry.clientKeyPackages"},
		{"consent operation 4", &ConsentEntry{Operation: 4}, "consentEntry.consentOperation"},
		{"grant of a cut key package", &ConsentEntry{Operation: ConsentGrant, KeyPackages: [][]byte{kp, kp[:9]}}, "consentEntry.clientKeyPackages[1].leaf_node.encryption_key"},
		{"consent extensions unsorted", &ConsentEntry{Extensions: AppDataDictionary{{ID: 2}, {ID: 1}}}, "consentEntry.consent_extensions.component_data[1].component_id"},
		{"consent extensions twice", &ConsentEntry{Extensions: AppDataDictionary{{ID: 2}, {ID: 2}}}, "consentEntry.consent_extensions.component_data[1].component_id"},
		{"name on a phone query", &IdentifierRequest{QueryElements: []QueryElement{{Type: SearchPhone, Name: "x"}}}, "identifierRequest.query_elements[0].claimName"},
		{"search type 0", &IdentifierRequest{QueryElements: []QueryElement{{}}}, "identifierRequest.query_elements[0].searchType"},
		{"search value not UTF-8", &IdentifierRequest{QueryElements: []QueryElement{{Type: SearchNick, Value: "\xff"}}}, "identifierRequest.query_elements[0].searchValue"},
		{"id code 5", &IdentifierResponse{Code: 5}, "identifierResponse.responseCode"},
		{"uri not UTF-8", &IdentifierResponse{URIs: []string{"ok", "\xc3"}}, "identifierResponse.uri[1]"},
		{"field source reserved", &IdentifierResponse{Profiles: []UserProfile{{Fields: []ProfileField{{}}}}}, "identifierResponse.foundProfiles[0].fields[0].fieldSource"},
		{"abuse note not UTF-8", &AbuseReport{Note: "\x80"}, "abuseReport.note"},
		{"partial group info with ratchet_tree", &PartialGroupInfo{Extensions: []Extension{{Type: extRatchetTree}}}, "partialGroupInfo.group_info_extensions[0].extension_type"},
		{"presence 4", &PartialGroupInfo{Presence: 4}, "partialGroupInfo.ratchet_tree_presence"},
	} {
		_, err := tc.v.Marshal()
		var fe *FieldError
		if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrMalformed) || !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: got %v, want a refusal naming %s", tc.name, err, tc.field)
		}
	}

	if _, err := MarshalNotify(); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty notify: %v", err)
	}
	if _, err := MarshalNotify(&FanoutMessage{Message: m.app}, nil); err == nil || !strings.Contains(err.Error(), "notify[1]") {
		t.Errorf("nil message: %v", err)
	}
	if _, err := (&GroupInfoResponse{Protocol: MLS10, Status: GroupInfoNoSuchRoom}).TBS(); !errors.Is(err, ErrInvalid) {
		t.Errorf("TBS of a failure: %v", err)
	}
	if _, err := (&KeyMaterialRequest{}).TBS(); !errors.Is(err, ErrInvalid) {
		t.Errorf("TBS of an invalid request: %v", err)
	}
}
