package wire

// Marshal and Unmarshal for the structures that only appear inside others,
// for callers that build or check them on their own (signatures over a
// Frank's fields, a ratchet tree option stored beside a room, tests).

func marshal(top string, enc func(w *writer)) ([]byte, error) {
	w := newWriter(top)
	enc(w)
	return w.result()
}

func unmarshal[T any](b []byte, top string, dec func(r *reader, v *T)) (*T, error) {
	r := newReader(b, top)
	v := new(T)
	dec(r, v)
	if err := r.finish(); err != nil {
		return nil, err
	}
	return v, nil
}

// Marshal encodes c.
func (c *Capabilities) Marshal() ([]byte, error) {
	return marshal("capabilities", func(w *writer) { c.encode(w, "") })
}

// UnmarshalCapabilities decodes one whole Capabilities.
func UnmarshalCapabilities(b []byte) (*Capabilities, error) {
	return unmarshal(b, "capabilities", func(r *reader, c *Capabilities) { c.decode(r, "") })
}

// Marshal encodes c.
func (c *RequiredCapabilities) Marshal() ([]byte, error) {
	return marshal("requiredCapabilities", func(w *writer) { c.encode(w, "") })
}

// UnmarshalRequiredCapabilities decodes one whole RequiredCapabilities.
func UnmarshalRequiredCapabilities(b []byte) (*RequiredCapabilities, error) {
	return unmarshal(b, "requiredCapabilities", func(r *reader, c *RequiredCapabilities) { c.decode(r, "") })
}

// Marshal encodes c as an mls10 ClientKeyMaterial.
func (c *ClientKeyMaterial) Marshal() ([]byte, error) {
	return marshal("clientKeyMaterial", c.encode)
}

// UnmarshalClientKeyMaterial decodes one whole mls10 ClientKeyMaterial.
func UnmarshalClientKeyMaterial(b []byte) (*ClientKeyMaterial, error) {
	return unmarshal(b, "clientKeyMaterial", func(r *reader, c *ClientKeyMaterial) { c.decode(r) })
}

// Marshal encodes o.
func (o *RatchetTreeOption) Marshal() ([]byte, error) {
	return marshal("ratchetTreeOption", func(w *writer) { o.encode(w, "") })
}

// UnmarshalRatchetTreeOption decodes one whole RatchetTreeOption.
func UnmarshalRatchetTreeOption(b []byte) (*RatchetTreeOption, error) {
	return unmarshal(b, "ratchetTreeOption", func(r *reader, o *RatchetTreeOption) { o.decode(r, "") })
}

// Marshal encodes o.
func (o *GroupInfoOption) Marshal() ([]byte, error) {
	return marshal("groupInfoOption", func(w *writer) { o.encode(w, "") })
}

// UnmarshalGroupInfoOption decodes one whole GroupInfoOption.
func UnmarshalGroupInfoOption(b []byte) (*GroupInfoOption, error) {
	return unmarshal(b, "groupInfoOption", func(r *reader, o *GroupInfoOption) { o.decode(r, "") })
}

// Marshal encodes f.
func (f *Frank) Marshal() ([]byte, error) {
	return marshal("frank", func(w *writer) { f.encode(w, "") })
}

// UnmarshalFrank decodes one whole (bare) Frank.
func UnmarshalFrank(b []byte) (*Frank, error) {
	return unmarshal(b, "frank", func(r *reader, f *Frank) { f.decode(r, "") })
}

// Marshal encodes p.
func (p *PendingProposal) Marshal() ([]byte, error) {
	return marshal("pendingProposal", p.encode)
}

// UnmarshalPendingProposal decodes one whole PendingProposal.
func UnmarshalPendingProposal(b []byte) (*PendingProposal, error) {
	return unmarshal(b, "pendingProposal", func(r *reader, p *PendingProposal) { p.decode(r) })
}

// Marshal encodes q.
func (q *QueryElement) Marshal() ([]byte, error) {
	return marshal("queryElement", q.encode)
}

// UnmarshalQueryElement decodes one whole QueryElement.
func UnmarshalQueryElement(b []byte) (*QueryElement, error) {
	return unmarshal(b, "queryElement", func(r *reader, q *QueryElement) { q.decode(r) })
}

// Marshal encodes p.
func (p *UserProfile) Marshal() ([]byte, error) {
	return marshal("userProfile", p.encode)
}

// UnmarshalUserProfile decodes one whole UserProfile.
func UnmarshalUserProfile(b []byte) (*UserProfile, error) {
	return unmarshal(b, "userProfile", func(r *reader, p *UserProfile) { p.decode(r) })
}

// Marshal encodes s.
func (s *ExternalSender) Marshal() ([]byte, error) {
	return marshal("externalSender", func(w *writer) { s.encode(w, "") })
}

// UnmarshalExternalSender decodes one whole ExternalSender.
func UnmarshalExternalSender(b []byte) (*ExternalSender, error) {
	return unmarshal(b, "externalSender", func(r *reader, s *ExternalSender) { s.decode(r, "") })
}

// Marshal encodes c.
func (c *HPKECiphertext) Marshal() ([]byte, error) {
	return marshal("hpkeCiphertext", func(w *writer) { c.encode(w, "") })
}

// UnmarshalHPKECiphertext decodes one whole HPKECiphertext.
func UnmarshalHPKECiphertext(b []byte) (*HPKECiphertext, error) {
	return unmarshal(b, "hpkeCiphertext", func(r *reader, c *HPKECiphertext) { c.decode(r, "") })
}

// Marshal encodes m.
func (m *AbusiveMessage) Marshal() ([]byte, error) {
	return marshal("abusiveMessage", m.encode)
}

// UnmarshalAbusiveMessage decodes one whole AbusiveMessage.
func UnmarshalAbusiveMessage(b []byte) (*AbusiveMessage, error) {
	return unmarshal(b, "abusiveMessage", func(r *reader, m *AbusiveMessage) { m.decode(r) })
}

// Marshal encodes d.
func (d AppDataDictionary) Marshal() ([]byte, error) {
	return marshal("appDataDictionary", func(w *writer) { d.encode(w, "") })
}

// UnmarshalAppDataDictionary decodes one whole AppDataDictionary.
func UnmarshalAppDataDictionary(b []byte) (AppDataDictionary, error) {
	d, err := unmarshal(b, "appDataDictionary", func(r *reader, d *AppDataDictionary) { d.decode(r, "") })
	if err != nil {
		return nil, err
	}
	return *d, nil
}
