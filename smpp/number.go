package smpp

import (
	"fmt"
	"strings"

	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/smpp/gsm7"
)

// Type of number and numbering plan values (SMPP v3.4 5.2.5, 5.2.6).
const (
	tonUnknown       = 0x00
	tonInternational = 0x01
	tonNational      = 0x02
	tonNetwork       = 0x03
	tonSubscriber    = 0x04
	tonAlphanumeric  = 0x05
	tonAbbreviated   = 0x06

	npiUnknown = 0x00
	npiE164    = 0x01
)

// address is an SMPP address with its TON and NPI.
type address struct {
	ton, npi byte
	addr     string
}

// destAddress writes an E.164 number as an international destination.
func destAddress(n uri.Number) (address, error) {
	d := n.Digits()
	if !strings.HasPrefix(string(n), "+") || d == "" || len(d) > 20 || !allDigits(d) {
		return address{}, refuse(refuseAddress, "destination %q is not an E.164 number", n)
	}
	return address{ton: tonInternational, npi: npiE164, addr: d}, nil
}

// isAlphanumeric reports whether a presented sender is an alphanumeric
// sender id rather than a number ("+..." or a short code of digits).
func isAlphanumeric(from string) bool {
	if strings.HasPrefix(from, "+") {
		return false
	}
	return !allDigits(from)
}

// maxAlphanumeric is the most characters an alphanumeric sender id can
// have (11 GSM characters in the 10-octet TP-OA).
const maxAlphanumeric = 11

// sourceAddress writes the presented sender for an SMSC: "+E.164" as
// international/E.164, a short code as unknown/E.164, anything else as an
// alphanumeric id; the SMSC's source_ton/source_npi override numeric ones.
func sourceAddress(from string, c SMSCConfig) (address, error) {
	switch {
	case from == "":
		return address{}, refuse(refuseAddress, "no sender")
	case strings.HasPrefix(from, "+"):
		d := from[1:]
		if d == "" || len(d) > 20 || !allDigits(d) {
			return address{}, refuse(refuseAddress, "sender %q is not an E.164 number", from)
		}
		return override(address{ton: tonInternational, npi: npiE164, addr: d}, c), nil
	case allDigits(from):
		if len(from) > 20 {
			return address{}, refuse(refuseAddress, "sender %q is too long", from)
		}
		return override(address{ton: tonUnknown, npi: npiE164, addr: from}, c), nil
	}
	n := 0
	for _, r := range from {
		n++
		if !gsm7.Encodable(r) || r == 0x1B || r < 0x20 {
			return address{}, refuse(refuseAddress, "alphanumeric sender %q has %q, which GSM 7-bit cannot carry", from, r)
		}
	}
	if n > maxAlphanumeric || len(from) > 20 {
		return address{}, refuse(refuseAddress, "alphanumeric sender %q is longer than %d characters", from, maxAlphanumeric)
	}
	return address{ton: tonAlphanumeric, npi: npiUnknown, addr: from}, nil
}

func override(a address, c SMSCConfig) address {
	if c.SourceTON != nil {
		a.ton = *c.SourceTON
	}
	if c.SourceNPI != nil {
		a.npi = *c.SourceNPI
	}
	return a
}

// parseAddress reads an MO address as a phone number: international as
// is, national in the default region, unknown as international when it
// carries a plus or no region is configured, else as national (which the
// numbering plan also reads right when it starts with the country code).
func parseAddress(ton byte, addr, region string) (uri.Number, error) {
	switch ton {
	case tonAlphanumeric:
		return "", fmt.Errorf("alphanumeric address %q is not a phone number", addr)
	case tonInternational:
		return uri.ParseNumber("+"+strings.TrimPrefix(addr, "+"), "")
	case tonNational, tonSubscriber:
		return uri.ParseNumber(addr, region)
	}
	intl := "+" + strings.TrimPrefix(addr, "+")
	if strings.HasPrefix(addr, "+") || region == "" {
		return uri.ParseNumber(intl, "")
	}
	if n, err := uri.ParseNumber(addr, region); err == nil {
		return n, nil
	}
	return uri.ParseNumber(intl, "")
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
