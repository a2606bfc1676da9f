package wire

import (
	"bytes"
	"errors"
	"testing"
)

// walk reads b as one whole structure of kind with the package's walker.
func walk(b []byte, kind mlsKind) (mlsInfo, error) {
	info, err := checkEmbedded([]elem{{name: "test", idx: -1}}, "", kind, b)
	if err != nil {
		return info, err
	}
	return info, nil
}

func TestRealMLSMessages(t *testing.T) {
	t.Parallel()
	m := mustReal(t)
	for _, tc := range []struct {
		name    string
		msg     []byte
		wf      WireFormat
		ct      ContentType
		sender  uint8
		hasPath bool
		ptype   uint16
	}{
		{"add commit", m.addCommit, PublicMessage, Commit, SenderMember, false, 0},
		{"update commit", m.updateCommit, PublicMessage, Commit, SenderMember, true, 0},
		{"external commit", m.externalCommit, PublicMessage, Commit, SenderNewMemberCommit, true, 0},
		{"add proposal", m.addProposal, PublicMessage, Proposal, SenderMember, false, proposalAdd},
		{"remove proposal", m.removeProposal, PublicMessage, Proposal, SenderMember, false, proposalRemove},
		{"gce proposal", m.gceProposal, PublicMessage, Proposal, SenderMember, false, proposalGCE},
		{"psk proposal", m.pskProposal, PublicMessage, Proposal, SenderMember, false, proposalPSK},
		{"reinit proposal", m.reinitProposal, PublicMessage, Proposal, SenderMember, false, proposalReInit},
		{"application", m.app, PrivateMessage, Application, 0, false, 0},
		{"welcome", m.welcome, Welcome, 0, 0, false, 0},
		{"group info", WrapMLSMessage(GroupInfo, m.groupInfo), GroupInfo, 0, 0, false, 0},
		{"key package", WrapMLSMessage(KeyPackage, m.keyPackage), KeyPackage, 0, 0, false, 0},
		{"x509 key package", WrapMLSMessage(KeyPackage, m.keyPackageX509), KeyPackage, 0, 0, false, 0},
	} {
		info, err := walk(tc.msg, kindMessage)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if info.WireFormat != tc.wf || info.ContentType != tc.ct || info.SenderType != tc.sender || info.hasPath != tc.hasPath || info.proposalType != tc.ptype {
			t.Errorf("%s: got %+v", tc.name, info)
		}
		pub, err := InspectMLSMessage(tc.msg)
		if err != nil || pub.WireFormat != tc.wf {
			t.Errorf("%s: InspectMLSMessage %+v %v", tc.name, pub, err)
		}
		wf, body, err := UnwrapMLSMessage(tc.msg)
		if err != nil || wf != tc.wf || !bytes.Equal(WrapMLSMessage(wf, body), tc.msg) {
			t.Errorf("%s: unwrap/wrap changed the message (%v)", tc.name, err)
		}
	}
	_ = errors.New
}
