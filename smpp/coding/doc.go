// Package coding turns text into the short_message bytes of SMPP and back:
// the choice of alphabet and data_coding for outbound text, segmentation of
// long text with a concatenation user data header (8-bit or 16-bit
// reference), SAR TLVs or message_payload, the decoding of inbound
// short_message bytes per data_coding (with the per-SMSC meaning of 0x00)
// and the parsing of the user data header and SAR TLVs that number
// inbound parts.
//
// It owns bytes and text only. It never touches sockets, SMPP sessions, PDUs
// or the message bus: the session hands it bytes and TLV values and gets
// text and segments back. It never mangles text
// silently: a character an alphabet cannot carry makes another alphabet the
// choice, and bytes that are not valid for their data_coding are an error.
package coding
