package mls

import (
	"errors"
	"fmt"

	"github.com/thomas-vilte/mls-go/ciphersuite"
	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
)

// Errors callers branch on. Every error the package returns for bad input
// wraps exactly one of the first group; none of them means stored state
// changed.
var (
	// ErrMalformed: the bytes are not a well-formed MLS message of the
	// expected kind (truncated, wrong wire format, wrong content type).
	ErrMalformed = errors.New("mls: malformed message")
	// ErrWrongEpoch: the message belongs to an epoch the client is not in
	// and cannot decrypt any more (or not yet).
	ErrWrongEpoch = errors.New("mls: wrong epoch")
	// ErrReplay: the message (or its generation) was processed before.
	ErrReplay = errors.New("mls: replayed message")
	// ErrAuthentication: a signature, membership tag, confirmation tag or
	// AEAD tag does not verify, or the sender is not a member.
	ErrAuthentication = errors.New("mls: message does not authenticate")
	// ErrContentMismatch: the MIMI content names a sender or room other than
	// the MLS sender's credential and the group's room. Returned as a
	// *ContentMismatchError.
	ErrContentMismatch = errors.New("mls: content does not match its MLS context")
	// ErrOwnMessage: a message this client sent came back (the hub echoes
	// messages to their sender's provider). Nothing is wrong; drop it.
	ErrOwnMessage = errors.New("mls: own message")
	// ErrUnknownKeyPackage: a Welcome names no KeyPackage this gateway
	// issued.
	ErrUnknownKeyPackage = errors.New("mls: welcome for no known key package")
	// ErrKeyPackageUsed: a Welcome names a one-time KeyPackage that already
	// joined a group.
	ErrKeyPackageUsed = errors.New("mls: key package already used")
	// ErrNoKeyPackage: the user has no KeyPackage to hand out.
	ErrNoKeyPackage = errors.New("mls: no key package available")
	// ErrGroupNotFound: the client is not in that group.
	ErrGroupNotFound = errors.New("mls: group not found")
	// ErrRemoved: the client was removed from the group; its state is gone.
	ErrRemoved = errors.New("mls: removed from group")
	// ErrLeaseHeld: another gateway instance owns the group right now.
	ErrLeaseHeld = errors.New("mls: group owned by another instance")
	// ErrPendingProposals: proposals are waiting to be committed, and RFC
	// 9420 forbids sending application data until they are.
	ErrPendingProposals = errors.New("mls: proposals pending")
	// ErrUnsupported: valid MLS this gateway does not handle (PSK joins,
	// handshakes sent as PrivateMessage, unknown proposal types).
	ErrUnsupported = errors.New("mls: unsupported")
	// ErrUntrustedCredential: a member's credential does not yield a MIMI
	// identity the gateway trusts.
	ErrUntrustedCredential = errors.New("mls: untrusted credential")
	// ErrRejected: an authentic message whose content RFC 9420 forbids
	// applying (invalid proposals, a tree that does not verify, a commit
	// referencing proposals the client never saw).
	ErrRejected = errors.New("mls: message rejected")
)

// ContentMismatchError says which field of the MIMI content disagreed.
type ContentMismatchError struct {
	Field string // "sender" or "room"
	Want  string // what the MLS context says
	Got   string // what the content says
}

func (e *ContentMismatchError) Error() string {
	return fmt.Sprintf("mls: content %s %q does not match %q", e.Field, e.Got, e.Want)
}

// Is makes errors.Is(err, ErrContentMismatch) hold.
func (e *ContentMismatchError) Is(target error) bool { return target == ErrContentMismatch }

// classify maps an error from mls-go onto this package's sentinels, so
// callers need not know the library's error types.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{ErrMalformed, ErrWrongEpoch, ErrReplay, ErrAuthentication,
		ErrContentMismatch, ErrOwnMessage, ErrUnsupported, ErrUntrustedCredential, ErrRemoved,
		ErrRejected, ErrPendingProposals} {
		if errors.Is(err, s) {
			return err
		}
	}
	var em *group.ErrEpochMismatch
	var es *group.ErrInvalidSignature
	var ed *group.ErrDecryptionFailed
	var eu *group.ErrUnknownMember
	var eg *group.ErrGroupIDMismatch
	switch {
	case errors.As(err, &em), errors.Is(err, group.ErrUnknownEpoch):
		return fmt.Errorf("%w: %v", ErrWrongEpoch, err)
	case errors.Is(err, group.ErrPendingProposals):
		return fmt.Errorf("%w: %v", ErrPendingProposals, err)
	case errors.As(err, &es), errors.As(err, &ed), errors.As(err, &eu),
		errors.Is(err, group.ErrSenderNotActive), errors.Is(err, group.ErrMissingSenderSignature),
		errors.Is(err, group.ErrConfirmationTagMismatch),
		errors.Is(err, ciphersuite.ErrInvalidSignature), errors.Is(err, ciphersuite.ErrVerificationError),
		errors.Is(err, ciphersuite.ErrAeadDecryption),
		errors.Is(err, framing.ErrDecryptionFailed), errors.Is(err, framing.ErrVerificationFailed),
		errors.Is(err, framing.ErrInvalidMembershipTag):
		return fmt.Errorf("%w: %v", ErrAuthentication, err)
	case errors.As(err, &eg), errors.Is(err, framing.ErrInvalidMessage),
		errors.Is(err, framing.ErrInvalidWireFormat), errors.Is(err, framing.ErrInvalidContentType),
		errors.Is(err, framing.ErrInvalidSenderType), errors.Is(err, framing.ErrInvalidPadding):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return fmt.Errorf("%w: %v", ErrRejected, err)
}
