package receipt

import (
	"errors"
	"testing"
)

func TestNormalizePairs(t *testing.T) {
	t.Parallel()
	var (
		asIs    = IDForm{}
		fold    = IDForm{FoldCase: true}
		zeros   = IDForm{TrimZeros: true}
		both    = IDForm{FoldCase: true, TrimZeros: true}
		hex     = IDForm{Base: Hex}
		decimal = IDForm{Base: Decimal}
	)
	// Each pair: the id in submit_sm_resp and in the receipt for the same
	// message, each read in its SMSC's configured form.
	tests := []struct {
		name     string
		resp     string
		respForm IDForm
		dlr      string
		dlrForm  IDForm
	}{
		{"identical", "0123abcd", asIs, "0123abcd", asIs},
		{"hex vs decimal", "0A1B2C", hex, "662316", decimal},
		{"hex lower vs decimal zero padded", "ff", hex, "0000000255", decimal},
		{"decimal vs hex with zeros", "255", decimal, "00FF", hex},
		{"hex case", "DEADBEEF", hex, "deadbeef", hex},
		{"hex 72-bit vs decimal", "FFFFFFFFFFFFFFFFFF", hex, "4722366482869645213695", decimal},
		{"hex 64-bit", "FFFFFFFFFFFFFFFF", hex, "18446744073709551615", decimal},
		{"decimal leading zeros", "000000123", decimal, "123", decimal},
		{"case folded", "AbC123", fold, "abc123", fold},
		{"zeros trimmed", "000x12", zeros, "x12", zeros},
		{"zeros and case", "00A1", both, "a1", both},
		{"zero id", "0000", decimal, "0", hex},
		{"spaces", " 42 ", decimal, "42", decimal},
	}
	for _, tc := range tests {
		a, err := Normalize(tc.resp, tc.respForm)
		if err != nil {
			t.Errorf("%s: Normalize(%q): %v", tc.name, tc.resp, err)
			continue
		}
		b, err := Normalize(tc.dlr, tc.dlrForm)
		if err != nil {
			t.Errorf("%s: Normalize(%q): %v", tc.name, tc.dlr, err)
			continue
		}
		if a != b {
			t.Errorf("%s: %q -> %q but %q -> %q", tc.name, tc.resp, a, tc.dlr, b)
		}
	}
	// Forms that must keep ids apart.
	apart := []struct {
		a, b string
		f    IDForm
	}{
		{"AbC", "abc", asIs},
		{"0012", "12", asIs},
		{"0012", "12", fold},
		{"10", "16", decimal},
	}
	for _, tc := range apart {
		x, _ := Normalize(tc.a, tc.f)
		y, _ := Normalize(tc.b, tc.f)
		if x == y {
			t.Errorf("%q and %q both normalise to %q with %+v", tc.a, tc.b, x, tc.f)
		}
	}
	if got, _ := Normalize("10", hex); got != "16" {
		t.Errorf("hex 10 = %q, want 16", got)
	}
}

func TestNormalizeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id string
		f  IDForm
	}{
		{"", IDForm{}},
		{"   ", IDForm{Base: Hex}},
		{"12g4", IDForm{Base: Hex}},
		{"12a4", IDForm{Base: Decimal}},
		{"0x1f", IDForm{Base: Hex}},
		{"-12", IDForm{Base: Decimal}},
		{"123456789012345678901234567890z", IDForm{Base: Decimal}},
		{"FFFFFFFFFFFFFFFFFFFFFFG", IDForm{Base: Hex}},
	}
	for _, tc := range tests {
		if got, err := Normalize(tc.id, tc.f); !errors.Is(err, ErrBadID) {
			t.Errorf("Normalize(%q, %+v) = %q, %v; want ErrBadID", tc.id, tc.f, got, err)
		}
	}
}

func TestIDFormConfig(t *testing.T) {
	t.Parallel()
	var b IDBase
	if err := b.UnmarshalText([]byte("hex")); err != nil || b != Hex {
		t.Errorf("hex: %v %v", b, err)
	}
	if err := b.UnmarshalText([]byte("octal")); err == nil {
		t.Error("octal accepted")
	}
	if err := (IDForm{Base: Hex, FoldCase: true}).Validate(); err == nil {
		t.Error("fold_case with hex accepted")
	}
	if err := (IDForm{Base: 7}).Validate(); err == nil {
		t.Error("base 7 accepted")
	}
	if err := (IDForm{FoldCase: true, TrimZeros: true}).Validate(); err != nil {
		t.Error(err)
	}
}
