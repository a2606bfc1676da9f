package wire

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// TLV tags the gateway reads or writes.
const (
	TagReceiptedMessageID = pdutlv.TagReceiptedMessageID // 0x001E
	TagSarMsgRefNum       = pdutlv.TagSarMsgRefNum       // 0x020C
	TagSarTotalSegments   = pdutlv.TagSarTotalSegments   // 0x020E
	TagSarSegmentSeqnum   = pdutlv.TagSarSegmentSeqnum   // 0x020F
	TagMessagePayload     = pdutlv.TagMessagePayload     // 0x0424
	TagMessageState       = pdutlv.TagMessageStateOption // 0x0427
	TagNetworkErrorCode   = pdutlv.TagNetworkErrorCode   // 0x0423
	TagScInterfaceVersion = pdutlv.Tag(0x0210)
)

// esm_class bits (SMPP v3.4 section 5.2.12).
const (
	ESMClassUDHI        = 0x40 // short_message starts with a user data header
	ESMClassTypeMask    = 0x3C // message type bits
	ESMClassReceipt     = 0x04 // SMSC delivery receipt
	ESMClassIntermedNot = 0x20 // intermediate delivery notification
)

// TLV is one optional parameter.
type TLV struct {
	Tag   pdutlv.Tag
	Value []byte
}

// Message is the body of submit_sm and deliver_sm, which share one layout,
// and of data_sm, whose mandatory fields are a subset (DataSM true).
type Message struct {
	ServiceType          string
	SourceTON, SourceNPI byte
	Source               string
	DestTON, DestNPI     byte
	Dest                 string
	ESMClass             byte
	ProtocolID           byte
	Priority             byte
	ScheduleDeliveryTime string
	ValidityPeriod       string
	RegisteredDelivery   byte
	ReplaceIfPresent     byte
	DataCoding           byte
	DefaultMsgID         byte
	ShortMessage         []byte
	// TLVs in ascending tag order (go-smpp's decoder keeps one per tag).
	TLVs []TLV
}

// TLV returns the value of the optional parameter tag.
func (m *Message) TLV(tag pdutlv.Tag) ([]byte, bool) {
	for _, t := range m.TLVs {
		if t.Tag == tag {
			return t.Value, true
		}
	}
	return nil, false
}

// SetTLV sets (or replaces) the optional parameter tag.
func (m *Message) SetTLV(tag pdutlv.Tag, v []byte) {
	for i := range m.TLVs {
		if m.TLVs[i].Tag == tag {
			m.TLVs[i].Value = v
			return
		}
	}
	m.TLVs = append(m.TLVs, TLV{Tag: tag, Value: v})
}

// The mandatory fields, in wire order, as go-smpp names them. deliver_sm is
// decoded with the submit_sm list on purpose: go-smpp's own deliver_sm list
// splits the UDH off short_message and trusts its lengths, while the
// gateway hands short_message whole to smpp/coding, which checks the UDH.
var (
	messageFields = pdufield.List{
		pdufield.ServiceType,
		pdufield.SourceAddrTON, pdufield.SourceAddrNPI, pdufield.SourceAddr,
		pdufield.DestAddrTON, pdufield.DestAddrNPI, pdufield.DestinationAddr,
		pdufield.ESMClass, pdufield.ProtocolID, pdufield.PriorityFlag,
		pdufield.ScheduleDeliveryTime, pdufield.ValidityPeriod,
		pdufield.RegisteredDelivery, pdufield.ReplaceIfPresentFlag,
		pdufield.DataCoding, pdufield.SMDefaultMsgID,
		pdufield.SMLength, pdufield.ShortMessage,
	}
	dataSMFields = pdufield.List{
		pdufield.ServiceType,
		pdufield.SourceAddrTON, pdufield.SourceAddrNPI, pdufield.SourceAddr,
		pdufield.DestAddrTON, pdufield.DestAddrNPI, pdufield.DestinationAddr,
		pdufield.ESMClass, pdufield.RegisteredDelivery, pdufield.DataCoding,
	}
	bindFields = pdufield.List{
		pdufield.SystemID, pdufield.Password, pdufield.SystemType,
		pdufield.InterfaceVersion, pdufield.AddrTON, pdufield.AddrNPI,
		pdufield.AddressRange,
	}
)

// decodeFields runs go-smpp's field decoder and closes the gaps it leaves:
// it stops silently at the end of the body, so every field is checked to be
// present, and it ignores up to three trailing bytes, which here are a
// truncated TLV.
func decodeFields(l pdufield.List, body []byte) (pdufield.Map, []TLV, error) {
	r := bytes.NewBuffer(body)
	f, err := l.Decode(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrTruncated, err)
	}
	for _, k := range l {
		if _, ok := f[k]; !ok {
			return nil, nil, fmt.Errorf("%w: field %s missing", ErrTruncated, k)
		}
	}
	if r.Len() == 0 {
		return f, nil, nil
	}
	m, err := pdutlv.DecodeTLV(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadTLV, err)
	}
	if r.Len() != 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes left after the last TLV", ErrBadTLV, r.Len())
	}
	tlvs := make([]TLV, 0, len(m))
	for tag, v := range m {
		tlvs = append(tlvs, TLV{Tag: tag, Value: v.Bytes()})
	}
	slices.SortFunc(tlvs, func(a, b TLV) int { return int(a.Tag) - int(b.Tag) })
	return f, tlvs, nil
}

func str(f pdufield.Map, k pdufield.Name) string { return f[k].String() }

func octet(f pdufield.Map, k pdufield.Name) byte {
	if b := f[k].Bytes(); len(b) > 0 {
		return b[0]
	}
	return 0
}

// DecodeMessage decodes a submit_sm or deliver_sm body.
func DecodeMessage(body []byte) (Message, error) {
	f, tlvs, err := decodeFields(messageFields, body)
	if err != nil {
		return Message{}, err
	}
	return Message{
		ServiceType:          str(f, pdufield.ServiceType),
		SourceTON:            octet(f, pdufield.SourceAddrTON),
		SourceNPI:            octet(f, pdufield.SourceAddrNPI),
		Source:               str(f, pdufield.SourceAddr),
		DestTON:              octet(f, pdufield.DestAddrTON),
		DestNPI:              octet(f, pdufield.DestAddrNPI),
		Dest:                 str(f, pdufield.DestinationAddr),
		ESMClass:             octet(f, pdufield.ESMClass),
		ProtocolID:           octet(f, pdufield.ProtocolID),
		Priority:             octet(f, pdufield.PriorityFlag),
		ScheduleDeliveryTime: str(f, pdufield.ScheduleDeliveryTime),
		ValidityPeriod:       str(f, pdufield.ValidityPeriod),
		RegisteredDelivery:   octet(f, pdufield.RegisteredDelivery),
		ReplaceIfPresent:     octet(f, pdufield.ReplaceIfPresentFlag),
		DataCoding:           octet(f, pdufield.DataCoding),
		DefaultMsgID:         octet(f, pdufield.SMDefaultMsgID),
		ShortMessage:         f[pdufield.ShortMessage].Bytes(),
		TLVs:                 tlvs,
	}, nil
}

// DecodeDataSM decodes a data_sm body; its text is in message_payload.
func DecodeDataSM(body []byte) (Message, error) {
	f, tlvs, err := decodeFields(dataSMFields, body)
	if err != nil {
		return Message{}, err
	}
	return Message{
		ServiceType:        str(f, pdufield.ServiceType),
		SourceTON:          octet(f, pdufield.SourceAddrTON),
		SourceNPI:          octet(f, pdufield.SourceAddrNPI),
		Source:             str(f, pdufield.SourceAddr),
		DestTON:            octet(f, pdufield.DestAddrTON),
		DestNPI:            octet(f, pdufield.DestAddrNPI),
		Dest:               str(f, pdufield.DestinationAddr),
		ESMClass:           octet(f, pdufield.ESMClass),
		RegisteredDelivery: octet(f, pdufield.RegisteredDelivery),
		DataCoding:         octet(f, pdufield.DataCoding),
		TLVs:               tlvs,
	}, nil
}

// Limits of the C-octet-string fields (with their NUL), SMPP v3.4 5.2.
const (
	maxAddr       = 21
	maxServiceTyp = 6
	maxTime       = 17
	maxSystemID   = 16
	maxPassword   = 9
	maxSystemType = 13
	maxMessageID  = 65
	// MaxShortMessage is the most short_message can hold; longer texts go in
	// message_payload.
	MaxShortMessage = 254
)

func checkCString(name, v string, max int) error {
	if len(v)+1 > max {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrFieldValue, name, len(v), max-1)
	}
	if bytes.IndexByte([]byte(v), 0) >= 0 {
		return fmt.Errorf("%w: %s holds a NUL", ErrFieldValue, name)
	}
	return nil
}

// AppendMessage appends m as a submit_sm or deliver_sm (id) with sequence
// number seq.
func AppendMessage(dst []byte, id pdu.ID, seq uint32, m *Message) ([]byte, error) {
	if id != SubmitSM && id != DeliverSM {
		return dst, fmt.Errorf("%w: command %#x does not carry a message", ErrFieldValue, uint32(id))
	}
	for _, c := range []struct {
		name, v string
		max     int
	}{
		{"service_type", m.ServiceType, maxServiceTyp},
		{"source_addr", m.Source, maxAddr},
		{"destination_addr", m.Dest, maxAddr},
		{"schedule_delivery_time", m.ScheduleDeliveryTime, maxTime},
		{"validity_period", m.ValidityPeriod, maxTime},
	} {
		if err := checkCString(c.name, c.v, c.max); err != nil {
			return dst, err
		}
	}
	if len(m.ShortMessage) > MaxShortMessage {
		return dst, fmt.Errorf("%w: short_message is %d bytes, at most %d", ErrFieldValue, len(m.ShortMessage), MaxShortMessage)
	}
	n := HeaderLen + len(m.ServiceType) + len(m.Source) + len(m.Dest) +
		len(m.ScheduleDeliveryTime) + len(m.ValidityPeriod) + 5 + 12 + len(m.ShortMessage)
	for _, tlv := range m.TLVs {
		if len(tlv.Value) > 0xFFFF {
			return dst, fmt.Errorf("%w: TLV %s is %d bytes", ErrFieldValue, tlv.Tag.Hex(), len(tlv.Value))
		}
		n += 4 + len(tlv.Value)
	}
	// The layout is go-smpp's submit_sm field list (pdu.NewSubmitSM), which
	// deliver_sm shares; it is written directly rather than through the
	// codec's maps, which cost a third of a submission. TestAppendMatchesCodec
	// checks the bytes against the codec's.
	dst = appendHeader(dst, uint32(n), id, StatusOK, seq)
	dst = append(append(dst, m.ServiceType...), 0)
	dst = append(dst, m.SourceTON, m.SourceNPI)
	dst = append(append(dst, m.Source...), 0)
	dst = append(dst, m.DestTON, m.DestNPI)
	dst = append(append(dst, m.Dest...), 0)
	dst = append(dst, m.ESMClass, m.ProtocolID, m.Priority)
	dst = append(append(dst, m.ScheduleDeliveryTime...), 0)
	dst = append(append(dst, m.ValidityPeriod...), 0)
	dst = append(dst, m.RegisteredDelivery, m.ReplaceIfPresent, m.DataCoding, m.DefaultMsgID, byte(len(m.ShortMessage)))
	dst = append(dst, m.ShortMessage...)
	for _, tlv := range m.TLVs {
		dst = append(dst, byte(tlv.Tag>>8), byte(tlv.Tag), byte(len(tlv.Value)>>8), byte(len(tlv.Value)))
		dst = append(dst, tlv.Value...)
	}
	return dst, nil
}

func serialize(dst []byte, p pdu.Body) ([]byte, error) {
	b := bytes.NewBuffer(dst)
	if err := p.SerializeTo(b); err != nil {
		return dst, fmt.Errorf("smpp: encode %s: %w", p.Header().ID, err)
	}
	return b.Bytes(), nil
}

// Bind is the body of the three bind requests.
type Bind struct {
	SystemID         string
	Password         string
	SystemType       string
	InterfaceVersion byte
	AddrTON, AddrNPI byte
	AddressRange     string
}

// DecodeBind decodes a bind_transmitter, bind_receiver or bind_transceiver
// body.
func DecodeBind(body []byte) (Bind, error) {
	f, _, err := decodeFields(bindFields, body)
	if err != nil {
		return Bind{}, err
	}
	return Bind{
		SystemID:         str(f, pdufield.SystemID),
		Password:         str(f, pdufield.Password),
		SystemType:       str(f, pdufield.SystemType),
		InterfaceVersion: octet(f, pdufield.InterfaceVersion),
		AddrTON:          octet(f, pdufield.AddrTON),
		AddrNPI:          octet(f, pdufield.AddrNPI),
		AddressRange:     str(f, pdufield.AddressRange),
	}, nil
}

// AppendBind appends a bind request (id is one of the three bind commands).
func AppendBind(dst []byte, id pdu.ID, seq uint32, b Bind) ([]byte, error) {
	var p pdu.Body
	switch id {
	case BindTransceiver:
		p = pdu.NewBindTransceiver()
	case BindTransmitter:
		p = pdu.NewBindTransmitter()
	case BindReceiver:
		p = pdu.NewBindReceiver()
	default:
		return dst, fmt.Errorf("%w: command %#x is not a bind", ErrFieldValue, uint32(id))
	}
	for _, c := range []struct {
		name, v string
		max     int
	}{
		{"system_id", b.SystemID, maxSystemID},
		{"password", b.Password, maxPassword},
		{"system_type", b.SystemType, maxSystemType},
		{"address_range", b.AddressRange, 41},
	} {
		if err := checkCString(c.name, c.v, c.max); err != nil {
			return dst, err
		}
	}
	p.Header().Seq = seq
	f := p.Fields()
	f.Set(pdufield.SystemID, b.SystemID)
	f.Set(pdufield.Password, b.Password)
	f.Set(pdufield.SystemType, b.SystemType)
	f.Set(pdufield.InterfaceVersion, b.InterfaceVersion)
	f.Set(pdufield.AddrTON, b.AddrTON)
	f.Set(pdufield.AddrNPI, b.AddrNPI)
	f.Set(pdufield.AddressRange, b.AddressRange)
	return serialize(dst, p)
}

// DecodeResponseID returns the first field of a response body: system_id
// of a bind response, message_id of submit_sm_resp, deliver_sm_resp and
// data_sm_resp. An empty body (a response with an error status) gives "".
func DecodeResponseID(body []byte) (string, error) {
	if len(body) == 0 {
		return "", nil
	}
	i := bytes.IndexByte(body, 0)
	if i < 0 {
		return "", fmt.Errorf("%w: response id has no NUL", ErrTruncated)
	}
	if i+1 > maxMessageID {
		return "", fmt.Errorf("%w: response id is %d bytes", ErrFieldValue, i)
	}
	// What follows (bind_resp's sc_interface_version TLV, vendor TLVs) is
	// not needed to match the response, and refusing it would lose one.
	return string(body[:i]), nil
}

// AppendResponse appends the response to a request: a bind response
// carries idField as system_id, submit_sm_resp, deliver_sm_resp and
// data_sm_resp carry it as message_id. A response with an error status has
// no body, as SMPP v3.4 has it.
func AppendResponse(dst []byte, id pdu.ID, status pdu.Status, seq uint32, idField string) ([]byte, error) {
	switch id {
	case BindTransceiverResp, BindTransmitterResp, BindReceiverResp,
		SubmitSMResp, DeliverSMResp, DataSMResp:
	default:
		return AppendHeader(dst, id, status, seq), nil
	}
	if status != StatusOK {
		return AppendHeader(dst, id, status, seq), nil
	}
	if err := checkCString("message_id", idField, maxMessageID); err != nil {
		return dst, err
	}
	var p pdu.Body
	switch id {
	case BindTransceiverResp:
		p = pdu.NewBindTransceiverResp()
	case BindTransmitterResp:
		p = pdu.NewBindTransmitterResp()
	case BindReceiverResp:
		p = pdu.NewBindReceiverResp()
	case SubmitSMResp:
		p = pdu.NewSubmitSMResp()
	default:
		// deliver_sm_resp and data_sm_resp share one layout.
		p = pdu.NewDeliverSMResp()
	}
	h := p.Header()
	h.ID, h.Seq = id, seq
	name := pdufield.MessageID
	switch id {
	case BindTransceiverResp, BindTransmitterResp, BindReceiverResp:
		name = pdufield.SystemID
	}
	p.Fields().Set(name, idField)
	return serialize(dst, p)
}
