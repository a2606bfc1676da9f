package wire

import "strconv"

// SearchType is a QueryElement's searchType (SearchIdentifierType).
type SearchType uint8

const (
	SearchHandle       SearchType = 1
	SearchNick         SearchType = 2
	SearchEmail        SearchType = 3
	SearchPhone        SearchType = 4
	SearchPartialName  SearchType = 5
	SearchWholeProfile SearchType = 6
	SearchOIDCStdClaim SearchType = 7
	SearchVCardField   SearchType = 8
)

var searchTypeNames = [...]string{"reserved", "handle", "nick", "email", "phone", "partialName", "wholeProfile",
	"oidcStdClaim", "vcardField"}

func (t SearchType) String() string {
	if t > 0 && int(t) < len(searchTypeNames) {
		return searchTypeNames[t]
	}
	return "SearchType(" + strconv.Itoa(int(t)) + ")"
}

// QueryElement is one condition of an identifier query.
type QueryElement struct {
	Type SearchType
	// Name is the claimName (SearchOIDCStdClaim) or propertyName
	// (SearchVCardField); empty for the other types.
	Name string
	// Value is the searchValue, UTF-8; for SearchPhone the number in
	// international format with its "+".
	Value string
}

// PhoneQuery is the query element that finds the user of a phone number
// given as "+" and its E.164 digits.
func PhoneQuery(e164 string) QueryElement {
	return QueryElement{Type: SearchPhone, Value: e164}
}

func (q *QueryElement) hasName() bool {
	return q.Type == SearchOIDCStdClaim || q.Type == SearchVCardField
}

func (q *QueryElement) nameField() string {
	if q.Type == SearchVCardField {
		return "propertyName"
	}
	return "claimName"
}

func (q *QueryElement) decode(r *reader) {
	q.Type = SearchType(r.enum("searchType", 1, 8))
	if q.hasName() {
		q.Name = r.str(q.nameField())
	}
	q.Value = r.str("searchValue")
}

func (q *QueryElement) encode(w *writer) {
	w.enum("searchType", uint8(q.Type), 1, 8)
	w.empty("claimName", !q.hasName() && q.Name != "")
	if q.hasName() {
		w.str(q.nameField(), q.Name)
	}
	w.str("searchValue", q.Value)
}

// IdentifierRequest asks a provider for the internal URI of a user
// (draft-ietf-mimi-protocol-06 section 5.8). Every element must match.
type IdentifierRequest struct {
	QueryElements []QueryElement
	Extensions    AppDataDictionary // id_request_extensions
}

// Marshal encodes q.
func (q *IdentifierRequest) Marshal() ([]byte, error) {
	w := newWriter("identifierRequest")
	w.list("query_elements", len(q.QueryElements), func(i int) { q.QueryElements[i].encode(w) })
	q.Extensions.encode(w, "id_request_extensions")
	return w.result()
}

// UnmarshalIdentifierRequest decodes one whole IdentifierRequest.
func UnmarshalIdentifierRequest(b []byte) (*IdentifierRequest, error) {
	r := newReader(b, "identifierRequest")
	q := new(IdentifierRequest)
	r.list("query_elements", func(int) {
		var e QueryElement
		e.decode(r)
		q.QueryElements = append(q.QueryElements, e)
	})
	q.Extensions.decode(r, "id_request_extensions")
	if err := r.finish(); err != nil {
		return nil, err
	}
	return q, nil
}

// IDCode is an IdentifierResponse's responseCode (IdentifierQueryCode).
type IDCode uint8

const (
	IDSuccess          IDCode = 0
	IDNotFound         IDCode = 1
	IDAmbiguous        IDCode = 2
	IDForbidden        IDCode = 3
	IDUnsupportedField IDCode = 4
)

var idCodeNames = [...]string{"success", "notFound", "ambiguous", "forbidden", "unsupportedField"}

func (c IDCode) String() string {
	if int(c) < len(idCodeNames) {
		return idCodeNames[c]
	}
	return "IDCode(" + strconv.Itoa(int(c)) + ")"
}

// FieldSource says which registry names a ProfileField.
type FieldSource uint8

const (
	FieldOIDCStdClaim FieldSource = 7
	FieldVCardField   FieldSource = 8
)

func (s FieldSource) String() string {
	switch s {
	case FieldOIDCStdClaim:
		return "oidcStdClaim"
	case FieldVCardField:
		return "vcardField"
	}
	return "FieldSource(" + strconv.Itoa(int(s)) + ")"
}

// ProfileField is one field of a UserProfile.
type ProfileField struct {
	Source FieldSource
	Name   string
	Value  []byte
}

// UserProfile is a user an identifier query found.
type UserProfile struct {
	StableURI string
	Fields    []ProfileField
}

func (p *UserProfile) decode(r *reader) {
	p.StableURI = r.str("stableUri")
	r.list("fields", func(int) {
		var f ProfileField
		f.Source = FieldSource(r.enum("fieldSource", 7, 8))
		f.Name = r.str("fieldName")
		f.Value = r.opaque("fieldValue")
		p.Fields = append(p.Fields, f)
	})
}

func (p *UserProfile) encode(w *writer) {
	w.str("stableUri", p.StableURI)
	w.list("fields", len(p.Fields), func(i int) {
		f := &p.Fields[i]
		w.enum("fieldSource", uint8(f.Source), 7, 8)
		w.str("fieldName", f.Name)
		w.opaque("fieldValue", f.Value)
	})
}

// IdentifierResponse answers an IdentifierRequest.
type IdentifierResponse struct {
	Code       IDCode
	URIs       []string // uri: the matching users' URIs
	Profiles   []UserProfile
	Extensions AppDataDictionary // id_response_extensions
}

// Marshal encodes q.
func (q *IdentifierResponse) Marshal() ([]byte, error) {
	w := newWriter("identifierResponse")
	w.enum("responseCode", uint8(q.Code), 0, 4)
	w.list("uri", len(q.URIs), func(i int) { w.str("", q.URIs[i]) })
	w.list("foundProfiles", len(q.Profiles), func(i int) { q.Profiles[i].encode(w) })
	q.Extensions.encode(w, "id_response_extensions")
	return w.result()
}

// UnmarshalIdentifierResponse decodes one whole IdentifierResponse.
func UnmarshalIdentifierResponse(b []byte) (*IdentifierResponse, error) {
	r := newReader(b, "identifierResponse")
	q := new(IdentifierResponse)
	q.Code = IDCode(r.enum("responseCode", 0, 4))
	r.list("uri", func(int) { q.URIs = append(q.URIs, r.str("")) })
	r.list("foundProfiles", func(int) {
		var p UserProfile
		p.decode(r)
		q.Profiles = append(q.Profiles, p)
	})
	q.Extensions.decode(r, "id_response_extensions")
	if err := r.finish(); err != nil {
		return nil, err
	}
	return q, nil
}
