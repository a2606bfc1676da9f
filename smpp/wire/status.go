package wire

import (
	"errors"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

// Command IDs, as go-smpp names them, plus data_sm which its codec leaves
// undecoded.
const (
	GenericNack         = pdu.GenericNACKID
	BindReceiver        = pdu.BindReceiverID
	BindReceiverResp    = pdu.BindReceiverRespID
	BindTransmitter     = pdu.BindTransmitterID
	BindTransmitterResp = pdu.BindTransmitterRespID
	BindTransceiver     = pdu.BindTransceiverID
	BindTransceiverResp = pdu.BindTransceiverRespID
	SubmitSM            = pdu.SubmitSMID
	SubmitSMResp        = pdu.SubmitSMRespID
	DeliverSM           = pdu.DeliverSMID
	DeliverSMResp       = pdu.DeliverSMRespID
	DataSM              = pdu.DataSMID
	DataSMResp          = pdu.DataSMRespID
	Unbind              = pdu.UnbindID
	UnbindResp          = pdu.UnbindRespID
	EnquireLink         = pdu.EnquireLinkID
	EnquireLinkResp     = pdu.EnquireLinkRespID
	Outbind             = pdu.OutbindID
	AlertNotification   = pdu.AlertNotificationID
)

// ResponseID returns the command_id that answers id.
func ResponseID(id pdu.ID) pdu.ID { return id | 0x80000000 }

// Command statuses (SMPP v3.4 section 5.1.3) the gateway sends or branches
// on.
const (
	StatusOK                pdu.Status = 0x00
	StatusInvMsgLen         pdu.Status = 0x01 // ESME_RINVMSGLEN
	StatusInvCmdLen         pdu.Status = 0x02 // ESME_RINVCMDLEN
	StatusInvCmdID          pdu.Status = 0x03 // ESME_RINVCMDID
	StatusInvBndSts         pdu.Status = 0x04 // ESME_RINVBNDSTS
	StatusAlyBnd            pdu.Status = 0x05 // ESME_RALYBND
	StatusSysErr            pdu.Status = 0x08 // ESME_RSYSERR
	StatusInvSrcAdr         pdu.Status = 0x0A // ESME_RINVSRCADR
	StatusInvDstAdr         pdu.Status = 0x0B // ESME_RINVDSTADR
	StatusInvMsgID          pdu.Status = 0x0C // ESME_RINVMSGID
	StatusBindFail          pdu.Status = 0x0D // ESME_RBINDFAIL
	StatusInvPaswd          pdu.Status = 0x0E // ESME_RINVPASWD
	StatusInvSysID          pdu.Status = 0x0F // ESME_RINVSYSID
	StatusMsgQFul           pdu.Status = 0x14 // ESME_RMSGQFUL
	StatusInvEsmClass       pdu.Status = 0x43 // ESME_RINVESMCLASS
	StatusSubmitFail        pdu.Status = 0x45 // ESME_RSUBMITFAIL
	StatusThrottled         pdu.Status = 0x58 // ESME_RTHROTTLED
	StatusTempAppError      pdu.Status = 0x64 // ESME_RX_T_APPN: the SMSC retries
	StatusPermAppError      pdu.Status = 0x65 // ESME_RX_P_APPN: the SMSC gives up
	StatusRejectMsg         pdu.Status = 0x66 // ESME_RX_R_APPN
	StatusInvOptParamStream pdu.Status = 0xC0 // ESME_RINVOPTPARSTREAM
	StatusInvParamLen       pdu.Status = 0xC2 // ESME_RINVPARLEN
	StatusUnknownErr        pdu.Status = 0xFF // ESME_RUNKNOWNERR
)

// Decoding errors. Each maps to the status a peer gets (StatusFor).
var (
	// ErrTruncated: the mandatory fields do not fit command_length.
	ErrTruncated = errors.New("truncated PDU body")
	// ErrBadTLV: the optional part does not parse as TLVs.
	ErrBadTLV = errors.New("bad optional parameters")
	// ErrFieldValue: a field holds a value the PDU cannot carry.
	ErrFieldValue = errors.New("bad field value")
)

// StatusFor returns the command_status a peer gets for a decoding error.
// Truncated mandatory fields make the command_length wrong for the command,
// which SMPP answers with a generic_nack (see NackOnDecode).
func StatusFor(err error) pdu.Status {
	switch {
	case errors.Is(err, ErrTruncated):
		return StatusInvCmdLen
	case errors.Is(err, ErrBadTLV):
		return StatusInvOptParamStream
	case errors.Is(err, ErrFieldValue):
		return StatusInvParamLen
	}
	return StatusSysErr
}

// NackOnDecode reports whether a request that failed to decode with err is
// answered by generic_nack rather than by its own response with an error
// status: a body shorter than its mandatory fields means the length is
// wrong, and SMPP answers a wrong length with generic_nack.
func NackOnDecode(err error) bool { return errors.Is(err, ErrTruncated) }

// Temporary reports whether a response status asks the sender to try again
// later rather than give up.
func Temporary(s pdu.Status) bool {
	switch s {
	case StatusThrottled, StatusMsgQFul, StatusTempAppError, StatusSysErr:
		return true
	}
	return false
}
