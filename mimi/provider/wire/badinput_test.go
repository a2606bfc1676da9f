package wire

import (
	"bytes"
	"errors"
	"testing"
)

// Bad input, structure by structure: each case is a small change to valid
// bytes, and must fail with the reason named.

type badCase struct {
	name   string
	in     []byte
	reason error
}

// decoders by structure, for the tables and the generic checks.
var decoders = map[string]func([]byte) error{
	"KeyMaterialRequest":      func(b []byte) error { _, err := UnmarshalKeyMaterialRequest(b); return err },
	"KeyMaterialResponse":     func(b []byte) error { _, err := UnmarshalKeyMaterialResponse(b); return err },
	"HandshakeBundle":         func(b []byte) error { _, err := UnmarshalHandshakeBundle(b); return err },
	"UpdateRoomResponse":      func(b []byte) error { _, err := UnmarshalUpdateRoomResponse(b); return err },
	"SubmitMessageRequest":    func(b []byte) error { _, err := UnmarshalSubmitMessageRequest(b); return err },
	"SubmitMessageResponse":   func(b []byte) error { _, err := UnmarshalSubmitMessageResponse(b); return err },
	"FanoutMessage":           func(b []byte) error { _, err := UnmarshalFanoutMessage(b); return err },
	"Notify":                  func(b []byte) error { _, err := UnmarshalNotify(b); return err },
	"GroupInfoRequest":        func(b []byte) error { _, err := UnmarshalGroupInfoRequest(b); return err },
	"GroupInfoResponse":       func(b []byte) error { _, err := UnmarshalGroupInfoResponse(b); return err },
	"GroupInfoRatchetTreeTBE": func(b []byte) error { _, err := UnmarshalGroupInfoRatchetTreeTBE(b); return err },
	"ConsentEntry":            func(b []byte) error { _, err := UnmarshalConsentEntry(b); return err },
	"IdentifierRequest":       func(b []byte) error { _, err := UnmarshalIdentifierRequest(b); return err },
	"IdentifierResponse":      func(b []byte) error { _, err := UnmarshalIdentifierResponse(b); return err },
	"AbuseReport":             func(b []byte) error { _, err := UnmarshalAbuseReport(b); return err },
	"PartialGroupInfo":        func(b []byte) error { _, err := UnmarshalPartialGroupInfo(b); return err },
	"RatchetTreeOption":       func(b []byte) error { _, err := UnmarshalRatchetTreeOption(b); return err },
	"MLSMessage":              func(b []byte) error { _, err := InspectMLSMessage(b); return err },
	"GroupInfoOption":         func(b []byte) error { _, err := UnmarshalGroupInfoOption(b); return err },
	"Capabilities":            func(b []byte) error { _, err := UnmarshalCapabilities(b); return err },
	"RequiredCapabilities":    func(b []byte) error { _, err := UnmarshalRequiredCapabilities(b); return err },
	"ClientKeyMaterial":       func(b []byte) error { _, err := UnmarshalClientKeyMaterial(b); return err },
	"Frank":                   func(b []byte) error { _, err := UnmarshalFrank(b); return err },
	"PendingProposal":         func(b []byte) error { _, err := UnmarshalPendingProposal(b); return err },
	"QueryElement":            func(b []byte) error { _, err := UnmarshalQueryElement(b); return err },
	"UserProfile":             func(b []byte) error { _, err := UnmarshalUserProfile(b); return err },
	"ExternalSender":          func(b []byte) error { _, err := UnmarshalExternalSender(b); return err },
	"HPKECiphertext":          func(b []byte) error { _, err := UnmarshalHPKECiphertext(b); return err },
	"AbusiveMessage":          func(b []byte) error { _, err := UnmarshalAbusiveMessage(b); return err },
	"AppDataDictionary":       func(b []byte) error { _, err := UnmarshalAppDataDictionary(b); return err },
}

// Hand-made valid bodies the bad cases change.

func kmRequest(cred []byte, suites []byte) []byte {
	return cat(u8b(1), vec(str(gAlice)), vec(str(gBob)), vec(str(gRoom)), suites, noCaps[:3], vec(str("key")), cred, vec(str("sig")))
}

func commitMsg(path []byte, proposals ...[]byte) []byte {
	p := []byte{0}
	if path != nil {
		p = cat(u8b(1), path)
	}
	return publicMsg(member(0), Commit, cat(vec(proposals...), p))
}

func bundleCommit(welcomeFlag []byte, gio, rto []byte) []byte {
	return cat(commitMsg(nil), welcomeFlag, gio, rto)
}

var (
	gioFull = cat(u8b(1), handGroupInfo())
	rtoDS   = u8b(4)
)

func TestBadInput(t *testing.T) {
	t.Parallel()
	for structure, list := range badInputCases() {
		dec := decoders[structure]
		for _, tc := range list {
			err := dec(tc.in)
			if !isKind(err, tc.reason) {
				t.Errorf("%s: %s: got %v, want %v", structure, tc.name, err, tc.reason)
			}
		}
	}
}

func badInputCases() map[string][]badCase {
	kp := handKeyPackage("b")
	tree := handTree()
	return map[string][]badCase{
		"KeyMaterialRequest": {
			{"protocol reserved", cat(u8b(0), kmRequest(basicCred("a"), vec(u16b(1)))[1:]), errEnum},
			{"protocol 2", cat(u8b(2), kmRequest(basicCred("a"), vec(u16b(1)))[1:]), errEnum},
			{"no cipher suite", kmRequest(basicCred("a"), vec()), errEmpty},
			{"odd cipher suite vector", kmRequest(basicCred("a"), vec(u16b(1), u8b(2))), errElementLength},
			{"credential type 3", kmRequest(cat(u16b(3), vec(str("x"))), vec(u16b(1))), errEnum},
			{"credential type 0", kmRequest(cat(u16b(0), vec(str("x"))), vec(u16b(1))), errEnum},
			{"x509 certificate cut", kmRequest(cat(u16b(2), vec(u8b(5), str("abc"))), vec(u16b(1))), errTruncated},
			{"requestingUser not UTF-8", cat(u8b(1), vec([]byte{0xc3, 0x28}), kmRequest(basicCred("a"), vec(u16b(1)))[23:]), errUTF8},
			{"roomId length non-minimal", cat(kmRequest(basicCred("a"), vec(u16b(1)))[:53], []byte{0x40, 0x15}, kmRequest(basicCred("a"), vec(u16b(1)))[54:]), errNonMinimal},
			{"signature oversize", cat(kmRequest(basicCred("a"), vec(u16b(1)))[:len(kmRequest(basicCred("a"), vec(u16b(1))))-4], []byte{0x80, 0x10, 0x00, 0x01}), errOversize},
		},
		"KeyMaterialResponse": {
			{"protocol 0", cat(u8b(0), u8b(0), vec(str(gBob)), vec()), errEnum},
			{"userStatus 8", cat(u8b(1), u8b(8), vec(str(gBob)), vec()), errEnum},
			{"clientStatus 3", cat(u8b(1), u8b(0), vec(str(gBob)), vec(u8b(3), vec(str(gCli)))), errEnum},
			{"clients with userUnknown", cat(u8b(1), u8b(4), vec(str(gBob)), vec(u8b(1), vec(str(gCli)))), errNotAllowed},
			{"clients with noConsent", cat(u8b(1), u8b(5), vec(str(gBob)), vec(u8b(1), vec(str(gCli)))), errNotAllowed},
			{"capabilities flag 2", cat(u8b(1), u8b(3), vec(str(gBob)), vec(u8b(2), vec(str(gCli)), u8b(2))), errOptional},
			{"key package version 2", cat(u8b(1), u8b(0), vec(str(gBob)), vec(u8b(0), vec(str(gCli)), u16b(2), kp[2:])), errEnum},
			{"key package leaf from an update", cat(u8b(1), u8b(0), vec(str(gBob)), vec(u8b(0), vec(str(gCli)),
				cat(u16b(1), u16b(1), vec(str("init")), leafNode(basicCred("b"), leafSourceUpdate, nil), vec(), vec(str("s"))))), errNotAllowed},
			{"key package leaf source 4", cat(u8b(1), u8b(0), vec(str(gBob)), vec(u8b(0), vec(str(gCli)),
				cat(u16b(1), u16b(1), vec(str("init")), leafNode(basicCred("b"), 4, nil), vec(), vec(str("s"))))), errEnum},
			{"key package runs past its client", cat(u8b(1), u8b(0), vec(str(gBob)), vec(u8b(0), vec(str(gCli)), kp[:len(kp)-1]), kp[len(kp)-1:]), errTruncated},
			{"odd capability vector", cat(u8b(1), u8b(3), vec(str(gBob)), vec(u8b(2), vec(str(gCli)), u8b(1), vec(u8b(1)), vec(), vec(), vec(), vec())), errElementLength},
		},
		"HandshakeBundle": {
			{"application message", cat(publicMsg(member(0), Application, vec(str("hi"))), vec()), errNotAllowed},
			{"welcome as proposalOrCommit", cat(WrapMLSMessage(Welcome, handWelcome()), vec()), errNotAllowed},
			{"key package as proposalOrCommit", cat(WrapMLSMessage(KeyPackage, kp), vec()), errNotAllowed},
			{"welcome flag 2", bundleCommit(u8b(2), gioFull, rtoDS), errOptional},
			{"welcome cut", bundleCommit(u8b(1), handWelcome()[:5], nil), errTruncated},
			{"group info representation 0", bundleCommit(u8b(0), u8b(0), rtoDS), errEnum},
			{"group info representation 3", bundleCommit(u8b(0), u8b(3), rtoDS), errEnum},
			{"group info with ratchet_tree", bundleCommit(u8b(0), cat(u8b(1), handGroupInfo(extension(extRatchetTree, tree))), rtoDS), errNotAllowed},
			{"group info version 2", bundleCommit(u8b(0), cat(u8b(1), u16b(2), handGroupInfo()[2:]), rtoDS), errEnum},
			{"partial group info presence 4", bundleCommit(u8b(0), cat(u8b(2), u8b(4), vec(), vec()), rtoDS), errEnum},
			{"partial group info with ratchet_tree", bundleCommit(u8b(0), cat(u8b(2), u8b(1), vec(extension(extRatchetTree, tree)), vec()), rtoDS), errNotAllowed},
			{"ratchet tree option 0", bundleCommit(u8b(0), gioFull, u8b(0)), errEnum},
			{"ratchet tree option 5", bundleCommit(u8b(0), gioFull, u8b(5)), errEnum},
			{"no ratchet tree option", bundleCommit(u8b(0), gioFull, nil), errTruncated},
			{"http URL", bundleCommit(u8b(0), gioFull, cat(u8b(2), vec(str("http://hub.test/tree")), vec())), errNotAllowed},
			{"URL not UTF-8", bundleCommit(u8b(0), gioFull, cat(u8b(2), vec(str("https://\xff")), vec())), errUTF8},
			{"empty tree", bundleCommit(u8b(0), gioFull, cat(u8b(1), vec())), errBadTree},
			{"tree ending blank", bundleCommit(u8b(0), gioFull, cat(u8b(1), vec(u8b(1), u8b(1), kpLeaf(basicCred("a")), u8b(0), u8b(0)))), errBadTree},
			{"tree of two nodes", bundleCommit(u8b(0), gioFull, cat(u8b(1), vec(u8b(1), u8b(1), kpLeaf(basicCred("a")), u8b(1), u8b(2), vec(), vec(), vec()))), errBadTree},
			{"parent at a leaf's place", bundleCommit(u8b(0), gioFull, cat(u8b(1), vec(u8b(1), u8b(2), vec(), vec(), vec()))), errEnum},
			{"leaf at a parent's place", bundleCommit(u8b(0), gioFull, cat(u8b(1), vec(u8b(1), u8b(1), kpLeaf(basicCred("a")), u8b(1), u8b(1), kpLeaf(basicCred("c")), u8b(1), u8b(1), kpLeaf(basicCred("b"))))), errEnum},
			{"node type 3", bundleCommit(u8b(0), gioFull, cat(u8b(1), vec(u8b(1), u8b(3)))), errEnum},
			{"node presence 2", bundleCommit(u8b(0), gioFull, cat(u8b(1), vec(u8b(2)))), errOptional},
			{"unmerged leaves not uint32s", bundleCommit(u8b(0), gioFull, cat(u8b(1), vec(u8b(1), u8b(1), kpLeaf(basicCred("a")), u8b(1), u8b(2), vec(), vec(), vec(u8b(1)), u8b(1), u8b(1), kpLeaf(basicCred("b"))))), errElementLength},
			{"commit with a proposal's tail", cat(commitMsg(nil), vec()), errTruncated},
			{"moreProposals holding a commit", cat(handProposal(removeProposal(1)), vec(commitMsg(nil))), errNotAllowed},
			{"moreProposals holding an application message", cat(handProposal(removeProposal(1)), vec(privateMsg(Application))), errNotAllowed},
			{"moreProposals message cut", cat(handProposal(removeProposal(1)), vec(handProposal(removeProposal(2))[:20])), errTruncated},
			{"no moreProposals", handProposal(removeProposal(1)), errTruncated},
			{"trailing byte", cat(handProposal(removeProposal(1)), vec(), u8b(0)), errTrailing},
		},
		"UpdateRoomResponse": {
			{"responseCode 4", cat(u8b(4), vec()), errEnum},
			{"errorDescription not UTF-8", cat(u8b(2), vec([]byte{0xff})), errUTF8},
			{"notAllowed then bytes", cat(u8b(2), vec(), u64b(1)), errTrailing},
			{"success cut", cat(u8b(0), vec(), u32b(1)), errTruncated},
			{"invalid proposal ref cut", cat(u8b(3), vec(), vec(u8b(5), str("ab"))), errTruncated},
		},
		"SubmitMessageRequest": {
			{"protocol 0", cat(u8b(0), privateMsg(Application), vec(str(gAlice))), errEnum},
			{"public application message", cat(u8b(1), publicMsg(member(0), Application, vec(str("hi"))), vec(str(gAlice))), errNotAllowed},
			{"private commit", cat(u8b(1), privateMsg(Commit), vec(str(gAlice))), errNotAllowed},
			{"welcome", cat(u8b(1), WrapMLSMessage(Welcome, handWelcome()), vec(str(gAlice))), errNotAllowed},
			{"sendingUri not UTF-8", cat(u8b(1), privateMsg(Application), vec([]byte{0xe2, 0x82})), errUTF8},
			{"no sendingUri", cat(u8b(1), privateMsg(Application)), errTruncated},
			{"private content type 4", cat(u8b(1), cat(privateMsg(Application)[:18], u8b(4), privateMsg(Application)[19:]), vec(str(gAlice))), errEnum},
		},
		"SubmitMessageResponse": {
			{"statusCode 3", cat(u8b(1), u8b(3)), errEnum},
			{"frank flag 2", cat(u8b(1), u8b(0), u64b(1), u8b(2)), errOptional},
			{"frank cut", cat(u8b(1), u8b(0), u64b(1), u8b(1), make([]byte, 31)), errTruncated},
			{"notAllowed then bytes", cat(u8b(1), u8b(1), u8b(0)), errTrailing},
			{"epochTooOld cut", cat(u8b(1), u8b(2), u16b(1)), errTruncated},
		},
		"FanoutMessage": {
			{"group info", cat(u64b(1), WrapMLSMessage(GroupInfo, handGroupInfo())), errNotAllowed},
			{"key package", cat(u64b(1), WrapMLSMessage(KeyPackage, kp)), errNotAllowed},
			{"welcome without tree option", cat(u64b(1), WrapMLSMessage(Welcome, handWelcome())), errTruncated},
			{"welcome, tree option 0", cat(u64b(1), WrapMLSMessage(Welcome, handWelcome()), u8b(0)), errEnum},
			{"application without frank flag", cat(u64b(1), privateMsg(Application)), errTruncated},
			{"externalProposals holding a commit", cat(u64b(1), commitMsg(nil), vec(commitMsg(nil))), errNotAllowed},
			{"moreProposals holding a welcome", cat(u64b(1), handProposal(removeProposal(1)), vec(WrapMLSMessage(Welcome, handWelcome()))), errNotAllowed},
			{"two messages", cat(u64b(1), privateMsg(Application), u8b(0), u64b(1), privateMsg(Application), u8b(0)), errTrailing},
			{"timestamp cut", u32b(1), errTruncated},
		},
		"Notify": {
			{"empty body", nil, errEmpty},
			{"second message cut", cat(u64b(1), privateMsg(Application), u8b(0), u64b(2), privateMsg(Application)), errTruncated},
			{"second message a group info", cat(u64b(1), privateMsg(Application), u8b(0), u64b(2), WrapMLSMessage(GroupInfo, handGroupInfo())), errNotAllowed},
		},
		"GroupInfoRequest": {
			{"protocol 2", cat(u8b(2), u16b(1), vec(), basicCred("a"), vec(), vec(), vec()), errEnum},
			{"credential type 7", cat(u8b(1), u16b(1), vec(), cat(u16b(7), vec()), vec(), vec(), vec()), errEnum},
			{"no signature", cat(u8b(1), u16b(1), vec(), basicCred("a"), vec(), vec()), errTruncated},
		},
		"GroupInfoResponse": {
			{"status reserved", cat(u8b(1), vec(str(gRoom)), u8b(0)), errEnum},
			{"status 4", cat(u8b(1), vec(str(gRoom)), u8b(4)), errEnum},
			{"notAuthorized then bytes", cat(u8b(1), vec(str(gRoom)), u8b(2), u16b(1)), errTrailing},
			{"room not UTF-8", cat(u8b(1), vec([]byte{0xff}), u8b(3)), errUTF8},
			{"hub sender credential bad", cat(u8b(1), vec(str(gRoom)), u8b(1), u16b(1), vec(), u16b(9), vec(), vec(), vec(), vec()), errEnum},
		},
		"GroupInfoRatchetTreeTBE": {
			{"group info with ratchet_tree", cat(handGroupInfo(extension(extRatchetTree, tree)), rtoDS, vec()), errNotAllowed},
			{"pending application", cat(handGroupInfo(), rtoDS, vec(privateMsg(Application), u64b(1))), errNotAllowed},
			{"pending time cut", cat(handGroupInfo(), rtoDS, vec(handProposal(removeProposal(1)), u32b(1))), errTruncated},
		},
		"ConsentEntry": {
			{"operation 4", cat(u8b(4), vec(str(gAlice)), vec(str(gBob)), u8b(0), vec()), errEnum},
			{"room flag 2", cat(u8b(1), vec(str(gAlice)), vec(str(gBob)), u8b(2), vec()), errOptional},
			{"present empty room", cat(u8b(1), vec(str(gAlice)), vec(str(gBob)), u8b(1), vec(), vec()), errEmpty},
			{"request with a clientKeyPackages vector", cat(u8b(1), vec(str(gAlice)), vec(str(gBob)), u8b(0), vec(), vec()), errTrailing},
			{"grant, key package cut", cat(u8b(2), vec(str(gAlice)), vec(str(gBob)), u8b(0), vec(kp[:30]), vec()), errTruncated},
			{"extensions out of order", cat(u8b(3), vec(str(gAlice)), vec(str(gBob)), u8b(0), vec(u16b(2), vec(), u16b(1), vec())), errOrder},
			{"extension twice", cat(u8b(3), vec(str(gAlice)), vec(str(gBob)), u8b(0), vec(u16b(2), vec(), u16b(2), vec())), errOrder},
		},
		"IdentifierRequest": {
			{"searchType reserved", cat(vec(u8b(0), vec(str("x"))), vec()), errEnum},
			{"searchType 9", cat(vec(u8b(9), vec(str("x"))), vec()), errEnum},
			{"searchValue not UTF-8", cat(vec(u8b(4), vec([]byte{0xf0, 0x28, 0x8c, 0xbc})), vec()), errUTF8},
			{"claim without name", cat(vec(u8b(7), vec(str("x"))), vec()), errTruncated},
			{"no extensions", vec(u8b(4), vec(str("+1"))), errTruncated},
		},
		"IdentifierResponse": {
			{"responseCode 5", cat(u8b(5), vec(), vec(), vec()), errEnum},
			{"uri not UTF-8", cat(u8b(0), vec(vec([]byte{0xc0, 0x80})), vec(), vec()), errUTF8},
			{"fieldSource 6", cat(u8b(0), vec(), vec(vec(str(gBob)), vec(u8b(6), vec(str("n")), vec())), vec()), errEnum},
			{"fieldSource reserved", cat(u8b(0), vec(), vec(vec(str(gBob)), vec(u8b(0), vec(str("n")), vec())), vec()), errEnum},
		},
		"AbuseReport": {
			{"note not UTF-8", cat(vec(), vec(str(gBob)), u8b(0), vec([]byte{0xff}), vec(), vec()), errUTF8},
			{"frank cut", cat(vec(), vec(str(gBob)), u8b(0), vec(), vec(vec(str("m")), make([]byte, 33)), vec()), errTruncated},
			{"messages extend past their vector", cat(vec(), vec(str(gBob)), u8b(0), vec(), vec(vec(str("m")), make([]byte, 34), vec(), u32b(0)), u32b(0), vec()), errTruncated},
		},
		"PartialGroupInfo": {
			{"presence 4", cat(u8b(4), vec(), vec()), errEnum},
			{"ratchet_tree extension", cat(u8b(1), vec(extension(extRatchetTree, tree)), vec()), errNotAllowed},
			{"extension cut", cat(u8b(1), vec(u16b(5)), vec()), errTruncated},
		},
		"RatchetTreeOption": {
			{"full, oversize", cat(u8b(1), []byte{0x80, 0x10, 0x00, 0x01}), errOversize},
			{"outOfBand then a URL", cat(u8b(3), vec(), vec(str("https://x"))), errTrailing},
			{"distributionService then bytes", cat(u8b(4), u8b(0)), errTrailing},
			{"URL without host", cat(u8b(2), vec(str("https://")), vec()), errNotAllowed},
		},
		"MLSMessage": mlsBadCases(),
	}
}

func mlsBadCases() []badCase {
	app := publicMsg(member(0), Application, vec(str("hi")))
	update := cat(u16b(proposalUpdate), leafNode(basicCred("a"), leafSourceUpdate, nil))
	commit := publicMsg(member(0), Commit, cat(vec(), u8b(0)))
	tags := len(vec(str("confirm"))) + len(vec(str("membership")))
	oddExtensions := cat(u16b(1), u16b(1), vec(str("group")), u64b(7), vec(str("tree-hash")), vec(str("cth")), vec(),
		vec(u16b(1)), vec(str("confirm")), u32b(0), vec(str("gi-sig")))
	return []badCase{
		{"version 0", cat(u16b(0), app[2:]), errEnum},
		{"version 2", cat(u16b(2), app[2:]), errEnum},
		{"wire format 0", cat(u16b(1), u16b(0), app[4:]), errEnum},
		{"wire format 6 (not read)", cat(u16b(1), u16b(6), app[4:]), errEnum},
		{"sender type 0", publicMsg([]byte{0}, Proposal, removeProposal(1)), errEnum},
		{"sender type 5", publicMsg([]byte{5}, Proposal, removeProposal(1)), errEnum},
		{"content type 0", publicMsg(member(0), 0, nil), errEnum},
		{"content type 4", publicMsg(member(0), 4, nil), errEnum},
		{"proposal type 0", handProposal(u16b(0)), errEnum},
		{"proposal type 9 (app_ephemeral, not read)", handProposal(cat(u16b(9), u16b(1), vec())), errEnum},
		{"proposal type 0x000b", handProposal(u16b(0x000b)), errEnum},
		{"proposal type GREASE", handProposal(cat(u16b(0x0a0a), vec())), errEnum},
		{"update leaf from a key package", handProposal(cat(u16b(proposalUpdate), kpLeaf(basicCred("a")))), errNotAllowed},
		{"update leaf cut", handProposal(update[:20]), errTruncated},
		{"psk type 0", handProposal(cat(u16b(proposalPSK), u8b(0), vec())), errEnum},
		{"psk type 3", handProposal(cat(u16b(proposalPSK), u8b(3), vec())), errEnum},
		{"psk usage 0", handProposal(cat(u16b(proposalPSK), u8b(2), u8b(0), vec(), u64b(1), vec())), errEnum},
		{"psk usage 4", handProposal(cat(u16b(proposalPSK), u8b(2), u8b(4), vec(), u64b(1), vec())), errEnum},
		{"reinit version 2", handProposal(cat(u16b(proposalReInit), vec(str("g")), u16b(2), u16b(1), vec())), errEnum},
		{"app data op 0", handProposal(cat(u16b(proposalAppDataUpdate), u16b(0x22), u8b(0))), errEnum},
		{"app data op 3", handProposal(cat(u16b(proposalAppDataUpdate), u16b(0x22), u8b(3))), errEnum},
		{"app data remove then data", handProposal(cat(u16b(proposalAppDataUpdate), u16b(0x22), u8b(2), vec(str("x")))), errTrailing},
		{"proposal or ref type 0", commitMsg(nil, u8b(0)), errEnum},
		{"proposal or ref type 3", commitMsg(nil, u8b(3), vec()), errEnum},
		{"path flag 2", publicMsg(member(0), Commit, cat(vec(), u8b(2))), errOptional},
		{"path leaf from a key package", commitMsg(cat(kpLeaf(basicCred("a")), vec())), errNotAllowed},
		{"path node cut", commitMsg(cat(leafNode(basicCred("a"), leafSourceCommit, vec()), vec(vec(str("k")), vec(vec(str("kem")))))), errTruncated},
		{"credential type 3 in a key package", WrapMLSMessage(KeyPackage, cat(u16b(1), u16b(1), vec(), kpLeaf(cat(u16b(3), vec())), vec(), vec())), errEnum},
		{"commit without confirmation tag", commit[:len(commit)-tags], errTruncated},
		{"member message without membership tag", app[:len(app)-len(vec(str("membership")))], errTruncated},
		{"external proposal with a membership tag", cat(publicMsg(cat(u8b(SenderExternal), u32b(0)), Proposal, removeProposal(1)), vec()), errTrailing},
		{"private content type 0", cat(privateMsg(Application)[:18], u8b(0), privateMsg(Application)[19:]), errEnum},
		{"welcome secrets cut", WrapMLSMessage(Welcome, cat(u16b(1), vec(vec(str("r")), vec(str("kem"))), vec())), errTruncated},
		{"group info extension cut", WrapMLSMessage(GroupInfo, oddExtensions), errTruncated},
		{"empty", nil, errTruncated},
	}
}

// TestTruncatedAndTrailing: every valid sample fails when cut anywhere or
// followed by one more byte, and never panics doing so.
func TestTruncatedAndTrailing(t *testing.T) {
	t.Parallel()
	for structure, samples := range validSamples(t) {
		dec := decoders[structure]
		if dec == nil {
			t.Fatalf("no decoder for %s", structure)
		}
		for i, b := range samples {
			if err := dec(b); err != nil {
				t.Errorf("%s sample %d: %v", structure, i, err)
				continue
			}
			for n := range len(b) {
				if structure == "Notify" && n > 0 {
					// A cut between two whole messages is a shorter
					// valid body.
					if msgs, err := UnmarshalNotify(b[:n]); err == nil {
						if again, err := MarshalNotify(msgs...); err != nil || !bytes.Equal(again, b[:n]) {
							t.Fatalf("notify sample %d cut to %d bytes decodes, but not to itself", i, n)
						}
						continue
					}
				}
				if err := dec(b[:n]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s sample %d cut to %d bytes: %v", structure, i, n, err)
				}
			}
			if structure == "Notify" {
				continue // a byte after a notify body starts a next message, cut short
			}
			if err := dec(append(bytes.Clone(b), 0)); !isKind(err, errTrailing) {
				t.Errorf("%s sample %d with a byte more: %v", structure, i, err)
			}
		}
	}
}
