package receipt

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// ErrBadID reports a message id that is not in the form configured for it.
var ErrBadID = errors.New("receipt: message id not in the configured form")

// IDBase is how an SMSC writes a message id.
type IDBase uint8

const (
	AsIs    IDBase = iota // opaque characters
	Hex                   // a hexadecimal number
	Decimal               // a decimal number
)

var baseNames = [...]string{AsIs: "as_is", Hex: "hex", Decimal: "decimal"}

func (b IDBase) String() string {
	if int(b) < len(baseNames) {
		return baseNames[b]
	}
	return fmt.Sprintf("id_base(%d)", uint8(b))
}

// MarshalText writes "as_is", "hex" or "decimal".
func (b IDBase) MarshalText() ([]byte, error) {
	if int(b) >= len(baseNames) {
		return nil, fmt.Errorf("receipt: unknown id base %d", uint8(b))
	}
	return []byte(baseNames[b]), nil
}

// UnmarshalText reads "as_is", "hex" or "decimal".
func (b *IDBase) UnmarshalText(t []byte) error {
	for i, n := range baseNames {
		if string(t) == n {
			*b = IDBase(i)
			return nil
		}
	}
	return fmt.Errorf("receipt: unknown id base %q (want as_is, hex or decimal)", t)
}

// IDForm is how one SMSC writes message ids in one place (submit_sm_resp,
// or receipts). Configure one form for each place; ids normalised with
// their own form compare equal when they name the same message.
type IDForm struct {
	// Base: as_is (default), hex or decimal. A hex or decimal id is
	// normalised to the decimal digits of its value, so case and leading
	// zeros never matter for them.
	Base IDBase `yaml:"base"`
	// FoldCase: an as_is id is compared without regard to case.
	FoldCase bool `yaml:"fold_case"`
	// TrimZeros: leading zeros of an as_is id do not count.
	TrimZeros bool `yaml:"trim_zeros"`
}

// Validate names the offending key.
func (f IDForm) Validate() error {
	if f.Base > Decimal {
		return fmt.Errorf("receipt: base: unknown id base %v", f.Base)
	}
	if f.Base != AsIs && (f.FoldCase || f.TrimZeros) {
		// Harmless, but says the configuration was misunderstood.
		return fmt.Errorf("receipt: fold_case, trim_zeros: only for base as_is (base %v ignores case and zeros)", f.Base)
	}
	return nil
}

// Normalize returns the canonical form of id, read as f says: for hex and
// decimal the decimal digits of its value (so "00FF", "ff" in hex and "255"
// in decimal all give "255"); for as_is the id itself, lower-cased with
// FoldCase and without leading zeros with TrimZeros ("0" stays "0").
// Surrounding spaces are ignored. An empty id, or one that is not a number
// in its base, is an error wrapping ErrBadID.
func Normalize(id string, f IDForm) (string, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return "", fmt.Errorf("%w: empty id", ErrBadID)
	}
	switch f.Base {
	case Hex:
		return number(id, 16)
	case Decimal:
		return number(id, 10)
	}
	if f.TrimZeros {
		id = trimZeros(id)
	}
	if f.FoldCase {
		id = strings.ToLower(id)
	}
	return id, nil
}

func trimZeros(s string) string {
	i := 0
	for i < len(s)-1 && s[i] == '0' {
		i++
	}
	return s[i:]
}

func number(id string, base int) (string, error) {
	digits := trimZeros(id)
	if len(digits) <= 15 { // fits uint64 in either base
		v, err := strconv.ParseUint(digits, base, 64)
		if err != nil {
			return "", fmt.Errorf("%w: %q is not a base-%d number", ErrBadID, id, base)
		}
		return strconv.FormatUint(v, 10), nil
	}
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i], base) {
			return "", fmt.Errorf("%w: %q is not a base-%d number", ErrBadID, id, base)
		}
	}
	if base == 10 {
		return digits, nil
	}
	v, ok := new(big.Int).SetString(digits, base)
	if !ok {
		return "", fmt.Errorf("%w: %q is not a base-%d number", ErrBadID, id, base)
	}
	return v.String(), nil
}

func isDigit(c byte, base int) bool {
	switch {
	case '0' <= c && c <= '9':
		return true
	case base == 16 && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F'):
		return true
	}
	return false
}
