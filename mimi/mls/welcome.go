package mls

import (
	"bytes"
	"crypto/ecdh"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/thomas-vilte/mls-go/ciphersuite"
	mlsext "github.com/thomas-vilte/mls-go/extensions"
	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
	"github.com/thomas-vilte/mls-go/keypackages"
	"github.com/thomas-vilte/mls-go/schedule"
	"github.com/thomas-vilte/mls-go/treesync"
)

// Joining from a Welcome is done here rather than by mls-go's
// JoinFromWelcome, which (v1.6.0) cannot take a ratchet tree delivered
// outside the Welcome: given a GroupInfo without the ratchet_tree
// extension it returns a group with a one-leaf placeholder tree, own leaf
// index 0 and no members, having checked neither the tree nor the GroupInfo
// signature. MIMI sends the tree separately (RatchetTreeOption), so the
// gateway opens the Welcome itself, verifies the tree and GroupInfo the way
// RFC 9420 section 12.4.3.1 requires, and hands mls-go a complete state.
// It also lets a room carry GroupContext extensions that mls-go does not
// know but the configuration lists (MIMI's app_data_dictionary).

// parseWelcome reads an MLSMessage carrying a Welcome.
func parseWelcome(b []byte) (*group.Welcome, error) {
	m, err := framing.UnmarshalMLSMessage(b)
	if err != nil {
		return nil, fmt.Errorf("%w: welcome: %v", ErrMalformed, err)
	}
	if m.Welcome == nil {
		return nil, fmt.Errorf("%w: wire format %d is not a welcome", ErrMalformed, m.WireFormat())
	}
	w, err := group.UnmarshalWelcome(m.Welcome)
	if err != nil {
		return nil, fmt.Errorf("%w: welcome: %v", ErrMalformed, err)
	}
	return w, nil
}

// openedWelcome is what a joiner learns from a Welcome before looking at
// the tree: the signed GroupInfo, its group secrets and the epoch secrets.
type openedWelcome struct {
	info    *group.Info
	secrets *group.Secrets
	epoch   *schedule.EpochSecrets
	psks    map[string][]byte
}

// openWelcome decrypts the joiner's GroupSecrets and the GroupInfo, runs the
// key schedule and checks the confirmation tag. psks holds external PSKs by
// ID (the interop vectors use them; MIMI rooms do not).
func openWelcome(w *group.Welcome, kp *keypackages.KeyPackage, initPriv *ecdh.PrivateKey, psks map[string][]byte) (*openedWelcome, error) {
	cs := w.CipherSuite
	if cs != kp.CipherSuite {
		return nil, fmt.Errorf("%w: welcome cipher suite %d, key package %d", ErrRejected, cs, kp.CipherSuite)
	}
	ref := keyPackageRef(cs, kp)
	var mine *group.EncryptedGroupSecrets
	for i := range w.Secrets {
		if bytes.Equal(w.Secrets[i].NewMember, ref) {
			mine = &w.Secrets[i]
			break
		}
	}
	if mine == nil {
		return nil, fmt.Errorf("%w: welcome has no secrets for key package %x", ErrUnknownKeyPackage, ref)
	}
	pt, err := ciphersuite.DecryptWithLabel(initPriv.Bytes(), "Welcome", w.EncryptedGroupInfo, &mine.EncryptedGroupSecrets, cs)
	if err != nil {
		return nil, fmt.Errorf("%w: group secrets: %v", ErrAuthentication, err)
	}
	gs, err := group.UnmarshalGroupSecrets(pt)
	if err != nil {
		return nil, fmt.Errorf("%w: group secrets: %v", ErrMalformed, err)
	}
	if gs.JoinerSecret == nil || len(gs.JoinerSecret.AsSlice()) != cs.HashLength() {
		return nil, fmt.Errorf("%w: joiner secret length", ErrMalformed)
	}
	var plist []schedule.Psk
	for _, id := range gs.Psks {
		if id.PskType != 1 {
			return nil, fmt.Errorf("%w: welcome needs a PSK of type %d", ErrUnsupported, id.PskType)
		}
		v, ok := psks[string(id.ID)]
		if !ok {
			return nil, fmt.Errorf("%w: welcome needs PSK %x", ErrUnsupported, id.ID)
		}
		plist = append(plist, schedule.Psk{PskType: schedule.PskType(id.PskType), PskID: id.ID, PskNonce: id.Nonce, Psk: v})
	}
	joiner := gs.JoinerSecret.AsSlice()

	// welcome_secret = DeriveSecret(HKDF-Extract(joiner_secret, psk_secret), "welcome")
	pskSecret := ciphersuite.ZeroSecretCS(cs)
	if len(plist) > 0 {
		in, err := schedule.ComputePskInput(plist, cs)
		if err != nil {
			return nil, fmt.Errorf("%w: psk: %v", ErrRejected, err)
		}
		pskSecret = ciphersuite.NewSecretForCS(cs, in)
	}
	member, err := ciphersuite.NewSecretForCS(cs, joiner).HKDFExtract(pskSecret)
	if err != nil {
		return nil, fmt.Errorf("mls: member secret: %w", err)
	}
	welcomeSecret, err := member.DeriveSecret(cs, "welcome")
	if err != nil {
		return nil, fmt.Errorf("mls: welcome secret: %w", err)
	}
	wkey, err := welcomeSecret.KdfExpandLabel("key", nil, cs.AEADKeyLength())
	if err != nil {
		return nil, fmt.Errorf("mls: welcome key: %w", err)
	}
	wnonce, err := welcomeSecret.KdfExpandLabel("nonce", nil, cs.AEADNonceLength())
	if err != nil {
		return nil, fmt.Errorf("mls: welcome nonce: %w", err)
	}
	giBytes, err := ciphersuite.DecryptWithCipherSuite(wkey.AsSlice(), wnonce.AsSlice(), w.EncryptedGroupInfo, nil, cs)
	if err != nil {
		return nil, fmt.Errorf("%w: group info: %v", ErrAuthentication, err)
	}
	info, err := group.UnmarshalGroupInfo(giBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: group info: %v", ErrMalformed, err)
	}
	gc := info.GroupContext
	if gc.Version != keypackages.MLS10 || gc.CipherSuite != cs {
		return nil, fmt.Errorf("%w: group info version %d suite %d", ErrRejected, gc.Version, gc.CipherSuite)
	}

	ks := schedule.NewKeySchedule(cs, ciphersuite.ZeroSecretCS(cs))
	ks.SetJoinerSecret(ciphersuite.NewSecretForCS(cs, joiner))
	if _, err := ks.ComputePskSecret(plist); err != nil {
		return nil, fmt.Errorf("mls: psk secret: %w", err)
	}
	if _, err := ks.ComputeEpochSecret(gc.Marshal()); err != nil {
		return nil, fmt.Errorf("mls: epoch secret: %w", err)
	}
	es, err := ks.DeriveEpochSecrets()
	if err != nil {
		return nil, fmt.Errorf("mls: epoch secrets: %w", err)
	}
	tag := schedule.ComputeConfirmationTag(cs, es.ConfirmationKey.AsSlice(), gc.ConfirmedTranscriptHash)
	if !ciphersuite.EqualCT(tag, info.ConfirmationTag) {
		return nil, fmt.Errorf("%w: welcome confirmation tag", ErrAuthentication)
	}
	return &openedWelcome{info: info, secrets: gs, epoch: es, psks: psks}, nil
}

// verifyGroupInfoSignature checks the GroupInfo against its signer's leaf.
func verifyGroupInfoSignature(info *group.Info, sigKey []byte) error {
	pub := ciphersuite.NewMLSSignaturePublicKey(sigKey, info.GroupContext.CipherSuite.SignatureScheme())
	if err := ciphersuite.VerifyWithLabel(pub, "GroupInfoTBS", info.MarshalTBS(), ciphersuite.NewSignature(info.Signature)); err != nil {
		return fmt.Errorf("%w: group info signature: %v", ErrAuthentication, err)
	}
	return nil
}

// joinTree finds the ratchet tree: the GroupInfo's ratchet_tree extension if
// present (it is signed with the GroupInfo), else the one delivered beside
// the Welcome, as the extension_data of a ratchet_tree extension.
func joinTree(info *group.Info, separate []byte) (*treesync.RatchetTree, error) {
	cs := info.GroupContext.CipherSuite
	data := separate
	for _, ext := range info.Extensions {
		if ext.Type == mlsext.ExtensionTypeRatchetTree {
			data = ext.Data
			break
		}
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: no ratchet tree in the welcome or beside it", ErrRejected)
	}
	tree, err := treesync.UnmarshalTreeFromExtension(data, cs)
	if err != nil {
		return nil, fmt.Errorf("%w: ratchet tree: %v", ErrMalformed, err)
	}
	return tree.ExpandToPowerOf2(), nil
}

// verifyJoinedTree runs the checks RFC 9420 section 12.4.3.1 asks of a
// joiner: the tree hash matches the GroupContext, every leaf is valid in
// its position, every parent hash holds and unmerged leaves are real.
func verifyJoinedTree(tree *treesync.RatchetTree, gc *group.GroupContext) error {
	cs := gc.CipherSuite
	if !bytes.Equal(tree.TreeHash(), gc.TreeHash) {
		return fmt.Errorf("%w: ratchet tree hash does not match the group context", ErrAuthentication)
	}
	gid := gc.GroupID.AsSlice()
	for i := treesync.LeafIndex(0); i < treesync.LeafIndex(tree.NumLeaves); i++ {
		n := tree.GetLeaf(i)
		if n == nil || n.State != treesync.NodeStatePresent || n.LeafData == nil {
			continue
		}
		if err := treesync.ValidateLeafNodeStructureWithContext(n.LeafData, cs, gid, uint32(i)); err != nil {
			return fmt.Errorf("%w: leaf %d: %v", ErrAuthentication, i, err)
		}
	}
	if err := tree.VerifyAllParentHashes(); err != nil {
		return fmt.Errorf("%w: parent hashes: %v", ErrAuthentication, err)
	}
	for idx := range tree.Nodes {
		n := &tree.Nodes[idx]
		if n.State != treesync.NodeStatePresent || treesync.IsLeaf(treesync.NodeIndex(idx)) {
			continue
		}
		for _, l := range n.UnmergedLeaves {
			ln := tree.GetLeaf(l)
			if ln == nil || ln.State != treesync.NodeStatePresent || !tree.SubtreeContainsLeaf(treesync.NodeIndex(idx), l) {
				return fmt.Errorf("%w: node %d lists unmerged leaf %d wrongly", ErrAuthentication, idx, l)
			}
		}
	}
	return nil
}

// joinFromWelcome builds the group a Welcome admits the KeyPackage's owner
// to. separateTree is the ratchet tree delivered beside the Welcome (nil
// when it is inside). knownExts are GroupContext extension types the caller
// accepts besides those mls-go implements.
func joinFromWelcome(w *group.Welcome, kp *keypackages.KeyPackage, initPriv, encPriv *ecdh.PrivateKey,
	separateTree []byte, psks map[string][]byte, knownExts []uint16) (*group.Group, error) {
	ow, err := openWelcome(w, kp, initPriv, psks)
	if err != nil {
		return nil, err
	}
	info, gc := ow.info, ow.info.GroupContext
	cs := gc.CipherSuite
	supported := append(keypackages.SupportedExtensionTypes(), knownExts...)
	for _, ext := range gc.Extensions {
		if !slices.Contains(supported, uint16(ext.Type)) {
			return nil, fmt.Errorf("%w: group context extension 0x%04x", ErrUnsupported, uint16(ext.Type))
		}
	}
	tree, err := joinTree(info, separateTree)
	if err != nil {
		return nil, err
	}
	if err := verifyJoinedTree(tree, gc); err != nil {
		return nil, err
	}
	signer := tree.GetLeaf(treesync.LeafIndex(info.Signer))
	if signer == nil || signer.State != treesync.NodeStatePresent || signer.LeafData == nil {
		return nil, fmt.Errorf("%w: group info signer %d is not in the tree", ErrAuthentication, info.Signer)
	}
	if err := verifyGroupInfoSignature(info, signer.LeafData.SigKeyBytes()); err != nil {
		return nil, err
	}
	own, ok := tree.FindLeafByEncKey(kp.LeafNode.EncryptionKey)
	if !ok {
		return nil, fmt.Errorf("%w: own leaf is not in the ratchet tree", ErrRejected)
	}
	if ownLeaf := tree.GetLeaf(own); !bytes.Equal(ownLeaf.LeafData.SigKeyBytes(), kp.LeafNode.SignatureKeyBytes) {
		return nil, fmt.Errorf("%w: own leaf carries another signature key", ErrRejected)
	}

	// Private keys of the committer's path above the joiner, from
	// path_secret (RFC 9420 section 12.4.3.1), needed when one of those
	// nodes is in the resolution of a later commit's path.
	pathKeys := map[treesync.NodeIndex][]byte{}
	if len(ow.secrets.PathSecret) > 0 {
		ps := ciphersuite.NewSecretForCS(cs, ow.secrets.PathSecret)
		dp := tree.DirectPath(treesync.LeafIndex(info.Signer))
		started := false
		for i, n := range dp {
			if i == 0 || int(n) >= len(tree.Nodes) {
				continue // the committer's own leaf
			}
			if tree.Nodes[n].State != treesync.NodeStatePresent {
				continue
			}
			if !started {
				if !tree.SubtreeContainsLeaf(n, own) {
					continue
				}
				started = true
			}
			nodeSecret, err := ps.DeriveSecret(cs, "node")
			if err != nil {
				return nil, fmt.Errorf("mls: path node secret: %w", err)
			}
			priv, err := ciphersuite.DeriveKeyPair(cs, nodeSecret.AsSlice())
			if err != nil {
				return nil, fmt.Errorf("mls: path node key: %w", err)
			}
			if pk := tree.Nodes[n].EncryptionKey; pk == nil || !bytes.Equal(priv.PublicKey().Bytes(), pk.Bytes()) {
				return nil, fmt.Errorf("%w: path secret does not match node %d", ErrAuthentication, n)
			}
			pathKeys[n] = priv.Bytes()
			if ps, err = ps.DeriveSecret(cs, "path"); err != nil {
				return nil, fmt.Errorf("mls: path secret: %w", err)
			}
		}
		if !started {
			return nil, fmt.Errorf("%w: path secret for no common ancestor", ErrAuthentication)
		}
	}

	members := map[uint32]*group.MemberStateData{}
	for i := treesync.LeafIndex(0); i < treesync.LeafIndex(tree.NumLeaves); i++ {
		n := tree.GetLeaf(i)
		if n == nil || n.State != treesync.NodeStatePresent || n.LeafData == nil {
			continue
		}
		members[uint32(i)] = &group.MemberStateData{
			LeafIndex:  uint32(i),
			Credential: n.LeafData.Credential.Marshal(),
			SigningKey: n.LeafData.SigKeyBytes(),
			Active:     true,
		}
	}

	sd := group.StateData{
		GroupID:               gc.GroupID.AsSlice(),
		Epoch:                 gc.Epoch.AsUint64(),
		CipherSuite:           uint16(cs),
		OwnLeafIndex:          uint32(own),
		RatchetTree:           tree.MarshalTree(),
		GroupContext:          gc.Marshal(),
		InterimTranscriptHash: schedule.ComputeInterimTranscriptHash(cs, gc.ConfirmedTranscriptHash, info.ConfirmationTag),
		ConfirmationTag:       info.ConfirmationTag,
		EpochSecrets:          ow.epoch.MarshalData(),
		Members:               members,
		MyLeafEncryptionKey:   encPriv.Bytes(),
		PathNodePrivKeys:      pathKeys,
	}
	b, err := json.Marshal(&sd)
	if err != nil {
		return nil, fmt.Errorf("mls: joined state: %w", err)
	}
	g, err := group.UnmarshalGroupState(b)
	if err != nil {
		return nil, fmt.Errorf("%w: joined state: %v", ErrRejected, err)
	}
	// PSKs go in after the JSON round trip, which would mangle their
	// binary IDs (see pskEntry).
	for id, v := range psks {
		g.LoadPsk([]byte(id), slices.Clone(v))
	}
	g.LoadPsk([]byte(group.ResumptionPskCacheKey(gc.GroupID.AsSlice(), gc.Epoch.AsUint64())), slices.Clone(ow.epoch.ResumptionSecret.AsSlice()))
	return g, nil
}
