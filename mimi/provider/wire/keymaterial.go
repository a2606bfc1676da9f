package wire

import (
	"crypto/ed25519"
	"errors"
	"strconv"
)

// KeyMaterialRequest asks a target provider for KeyPackages of all the
// clients of one user (draft-ietf-mimi-protocol-06 section 5.2), signed by
// the requester.
type KeyMaterialRequest struct {
	Protocol               Protocol
	RequestingUser         string
	TargetUser             string
	RoomID                 string
	AcceptableCipherSuites []uint16 // not empty
	RequiredCapabilities   RequiredCapabilities
	RequesterSignatureKey  []byte
	// RequesterCredential is an encoded RFC 9420 Credential (basic or
	// x509).
	RequesterCredential []byte
	// Signature is key_material_request_signature: see TBS.
	Signature []byte
}

// Marshal encodes r.
func (r *KeyMaterialRequest) Marshal() ([]byte, error) {
	w := newWriter("keyMaterialRequest")
	r.encodeTBS(w)
	w.opaque("key_material_request_signature", r.Signature)
	return w.result()
}

// TBS returns the bytes the requester signs: RFC 9420 SignContent with the
// label "MLS 1.0 KeyMaterialRequestTBS" and, as content, the request
// encoded without its signature field.
func (r *KeyMaterialRequest) TBS() ([]byte, error) {
	w := newWriter("keyMaterialRequest")
	r.encodeTBS(w)
	b, err := w.result()
	if err != nil {
		return nil, err
	}
	return SignContent("KeyMaterialRequestTBS", b), nil
}

// Sign sets Signature with an Ed25519 key (the signature scheme of the
// cipher suites MIMI rooms use here); RequesterSignatureKey must be its
// public key.
func (r *KeyMaterialRequest) Sign(key ed25519.PrivateKey) error {
	tbs, err := r.TBS()
	if err != nil {
		return err
	}
	r.Signature = ed25519.Sign(key, tbs)
	return nil
}

// ErrSignature: a signature does not verify.
var ErrSignature = errors.New("wire: signature does not verify")

// Verify checks Signature as Ed25519 under RequesterSignatureKey.
func (r *KeyMaterialRequest) Verify() error {
	tbs, err := r.TBS()
	if err != nil {
		return err
	}
	if len(r.RequesterSignatureKey) != ed25519.PublicKeySize ||
		!ed25519.Verify(ed25519.PublicKey(r.RequesterSignatureKey), tbs, r.Signature) {
		return ErrSignature
	}
	return nil
}

func (r *KeyMaterialRequest) encodeTBS(w *writer) {
	w.protocol("protocol", r.Protocol)
	w.str("requestingUser", r.RequestingUser)
	w.str("targetUser", r.TargetUser)
	w.str("roomId", r.RoomID)
	if len(r.AcceptableCipherSuites) == 0 {
		w.fail("acceptableCiphersuites", errEmpty, "")
	}
	w.u16s("acceptableCiphersuites", r.AcceptableCipherSuites)
	r.RequiredCapabilities.encode(w, "requiredCapabilities")
	w.opaque("requesterSignatureKey", r.RequesterSignatureKey)
	w.mls("requesterCredential", kindCredential, r.RequesterCredential)
}

// UnmarshalKeyMaterialRequest decodes one whole KeyMaterialRequest.
func UnmarshalKeyMaterialRequest(b []byte) (*KeyMaterialRequest, error) {
	r := newReader(b, "keyMaterialRequest")
	m := new(KeyMaterialRequest)
	m.Protocol = r.protocol("protocol")
	m.RequestingUser = r.str("requestingUser")
	m.TargetUser = r.str("targetUser")
	m.RoomID = r.str("roomId")
	start := r.off
	m.AcceptableCipherSuites = r.u16s("acceptableCiphersuites")
	if r.err == nil && len(m.AcceptableCipherSuites) == 0 {
		r.failAt(start, "acceptableCiphersuites", errEmpty, "")
	}
	m.RequiredCapabilities.decode(r, "requiredCapabilities")
	m.RequesterSignatureKey = r.opaque("requesterSignatureKey")
	cred, _ := r.embedded("requesterCredential", kindCredential)
	m.RequesterCredential = clone(cred)
	m.Signature = r.opaque("key_material_request_signature")
	if err := r.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// UserStatus is a KeyMaterialResponse's userStatus.
type UserStatus uint8

const (
	Success              UserStatus = 0
	PartialSuccess       UserStatus = 1
	IncompatibleProtocol UserStatus = 2
	NoCompatibleMaterial UserStatus = 3
	UserUnknown          UserStatus = 4
	NoConsent            UserStatus = 5
	NoConsentForThisRoom UserStatus = 6
	UserDeleted          UserStatus = 7
)

var userStatusNames = [...]string{"success", "partialSuccess", "incompatibleProtocol", "noCompatibleMaterial",
	"userUnknown", "noConsent", "noConsentForThisRoom", "userDeleted"}

func (s UserStatus) String() string {
	if int(s) < len(userStatusNames) {
		return userStatusNames[s]
	}
	return "UserStatus(" + strconv.Itoa(int(s)) + ")"
}

// hasClients: the statuses whose response lists clients.
func (s UserStatus) hasClients() bool {
	return s == Success || s == PartialSuccess || s == NoCompatibleMaterial
}

// ClientStatus is a ClientKeyMaterial's clientStatus.
type ClientStatus uint8

const (
	ClientSuccess        ClientStatus = 0
	KeyMaterialExhausted ClientStatus = 1
	NothingCompatible    ClientStatus = 2
)

func (s ClientStatus) String() string {
	switch s {
	case ClientSuccess:
		return "success"
	case KeyMaterialExhausted:
		return "keyMaterialExhausted"
	case NothingCompatible:
		return "nothingCompatible"
	}
	return "ClientStatus(" + strconv.Itoa(int(s)) + ")"
}

// ClientKeyMaterial is one client's answer in a KeyMaterialResponse.
type ClientKeyMaterial struct {
	Status    ClientStatus
	ClientURI string
	// KeyPackage (success only) is a bare RFC 9420 KeyPackage struct, not
	// an MLSMessage.
	KeyPackage []byte
	// Capabilities (nothingCompatible only) is optional: nil when the
	// provider withholds them.
	Capabilities *Capabilities
}

// KeyMaterialResponse answers a KeyMaterialRequest.
type KeyMaterialResponse struct {
	Protocol   Protocol
	UserStatus UserStatus
	UserURI    string
	// Clients is empty unless UserStatus is Success, PartialSuccess or
	// NoCompatibleMaterial.
	Clients []ClientKeyMaterial
}

// Marshal encodes m.
func (m *KeyMaterialResponse) Marshal() ([]byte, error) {
	w := newWriter("keyMaterialResponse")
	w.protocol("protocol", m.Protocol)
	w.enum("userStatus", uint8(m.UserStatus), 0, 7)
	w.str("userUri", m.UserURI)
	w.empty("clients", len(m.Clients) > 0 && !m.UserStatus.hasClients())
	w.list("clients", len(m.Clients), func(i int) { m.Clients[i].encode(w) })
	return w.result()
}

// UnmarshalKeyMaterialResponse decodes one whole KeyMaterialResponse.
func UnmarshalKeyMaterialResponse(b []byte) (*KeyMaterialResponse, error) {
	r := newReader(b, "keyMaterialResponse")
	m := new(KeyMaterialResponse)
	m.Protocol = r.protocol("protocol")
	m.UserStatus = UserStatus(r.enum("userStatus", 0, 7))
	m.UserURI = r.str("userUri")
	start := r.off
	r.list("clients", func(int) {
		var c ClientKeyMaterial
		c.decode(r)
		m.Clients = append(m.Clients, c)
	})
	if r.err == nil && len(m.Clients) > 0 && !m.UserStatus.hasClients() {
		r.failAt(start, "clients", errNotAllowed, "not empty with userStatus "+m.UserStatus.String())
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

func (c *ClientKeyMaterial) encode(w *writer) {
	w.enum("clientStatus", uint8(c.Status), 0, 2)
	w.str("clientUri", c.ClientURI)
	w.empty("keyPackage", c.Status != ClientSuccess && len(c.KeyPackage) > 0)
	w.empty("clientCapabilities", c.Status != NothingCompatible && c.Capabilities != nil)
	switch c.Status {
	case ClientSuccess:
		w.mls("keyPackage", kindKeyPackage, c.KeyPackage)
	case NothingCompatible:
		w.flag(c.Capabilities != nil)
		if c.Capabilities != nil {
			c.Capabilities.encode(w, "clientCapabilities")
		}
	}
}

func (c *ClientKeyMaterial) decode(r *reader) {
	c.Status = ClientStatus(r.enum("clientStatus", 0, 2))
	c.ClientURI = r.str("clientUri")
	switch c.Status {
	case ClientSuccess:
		kp, _ := r.embedded("keyPackage", kindKeyPackage)
		c.KeyPackage = clone(kp)
	case NothingCompatible:
		if r.flag("clientCapabilities") {
			c.Capabilities = new(Capabilities)
			c.Capabilities.decode(r, "clientCapabilities")
		}
	}
}
