package uri

import (
	"errors"
	"strings"
	"testing"
)

func TestParseNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, region string
		want       Number
	}{
		{"+15551230002", "", "+15551230002"},
		{"tel:+15551230002", "", "+15551230002"},
		{"tel:+1-555-123-0002;phone-context=example.net", "", "+15551230002"},
		{"<tel:+15551230002>", "", "+15551230002"},
		{"sip:+15551230002@ims.example.net;user=phone", "", "+15551230002"},
		{"sip:+15551230002@ims.example.net", "", "+15551230002"},
		{"sips:+15551230002@ims.example.net:5061;transport=tls", "", "+15551230002"},
		{"sip:5551230002@ims.example.net;user=phone", "US", "+15551230002"},
		{"sip:+15551230002;npdi@ims.example.net;user=phone", "", "+15551230002"},
		{"+1 (555) 123-0002", "", "+15551230002"},
		{"555.123.0002", "US", "+15551230002"},
		{"(555) 123 0002", "us", "+15551230002"},
		{"015112345678", "DE", "+4915112345678"},
		{"+49 151 1234 5678", "US", "+4915112345678"},
		{"07700 900123", "GB", "+447700900123"},
	}
	for _, tt := range tests {
		got, err := ParseNumber(tt.in, tt.region)
		if err != nil {
			t.Errorf("ParseNumber(%q, %q): %v", tt.in, tt.region, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseNumber(%q, %q) = %q, want %q", tt.in, tt.region, got, tt.want)
		}
	}
}

func TestParseNumberRejects(t *testing.T) {
	t.Parallel()
	bad := []struct{ in, region string }{
		{"", "US"},
		{"hello", "US"},
		{"5551230002", ""},               // national without a region
		{"+1555", ""},                    // too short
		{"+12345678901234567", ""},       // too long
		{"+999123456", ""},               // no such country code
		{"tel:", ""},                     // nothing after the scheme
		{"sip:alice@example.net", ""},    // a name, not a number
		{"sip:+15551230002", ""},         // no host
		{"+1555123000a", ""},             // a letter
		{"1+5551230002", "US"},           // plus in the middle
		{"mimi://example.com/u/bob", ""}, // another scheme
		{strings.Repeat("1", 300), "US"}, // absurd length
	}
	for _, tt := range bad {
		if n, err := ParseNumber(tt.in, tt.region); err == nil {
			t.Errorf("ParseNumber(%q, %q) = %q, want an error", tt.in, tt.region, n)
		} else if !errors.Is(err, ErrBadNumber) {
			t.Errorf("ParseNumber(%q): error %v is not ErrBadNumber", tt.in, err)
		}
	}
}

func TestNumberForms(t *testing.T) {
	t.Parallel()
	n, err := NumberFromDigits("15551230002")
	if err != nil {
		t.Fatal(err)
	}
	if n.Digits() != "15551230002" || n.TelURI() != "tel:+15551230002" || n.String() != "+15551230002" {
		t.Errorf("forms of %q: %q %q %q", n, n.Digits(), n.TelURI(), n.String())
	}
	back, err := ParseNumber(n.TelURI(), "")
	if err != nil || back != n {
		t.Errorf("tel URI round trip: %q, %v", back, err)
	}
	for _, d := range []string{"", "+15551230002", "1555123000x", "1"} {
		if _, err := NumberFromDigits(d); err == nil {
			t.Errorf("NumberFromDigits(%q) accepted", d)
		}
	}
}

func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"+15551230002", "tel:+1-555-123-0002;x=y", "sip:+15551230002@h;user=phone", "(555) 123 0002", "sip:;@;user=phone"} {
		f.Add(s, "US")
	}
	f.Fuzz(func(t *testing.T, s, region string) {
		n, err := ParseNumber(s, region)
		if err != nil {
			return
		}
		// Whatever parses is E.164, and E.164 parses to itself.
		again, err := ParseNumber(string(n), "")
		if err != nil || again != n {
			t.Fatalf("%q -> %q -> %q, %v", s, n, again, err)
		}
	})
}

func TestParseNumberRemembered(t *testing.T) {
	t.Parallel()
	// The same answers the second time, from memory.
	for i := 0; i < 2; i++ {
		if n, err := ParseNumber("+1 (555) 123-0002", ""); err != nil || n != "+15551230002" {
			t.Fatalf("round %d: %q %v", i, n, err)
		}
		if _, err := ParseNumber("+1555", ""); !errors.Is(err, ErrBadNumber) {
			t.Fatalf("round %d: %v", i, err)
		}
		// The region is part of what is remembered.
		if n, err := ParseNumber("07700 900123", "GB"); err != nil || n != "+447700900123" {
			t.Fatalf("round %d GB: %q %v", i, n, err)
		}
		if _, err := ParseNumber("07700 900123", ""); err == nil {
			t.Fatalf("round %d: national number without region accepted", i)
		}
	}
	m := newMemo[int](4, 2)
	for i := 0; i < 10; i++ {
		m.put(string(rune('a'+i)), i)
	}
	held := 0
	for i := range m.shards {
		held += len(m.shards[i].m)
	}
	if held > 4 {
		t.Errorf("memo holds %d entries, bound 4", held)
	}
}

func BenchmarkParseNumber(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseNumber("+15551230002", ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseNumberUncached(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := parseNumber("+15551230002", ""); err != nil {
			b.Fatal(err)
		}
	}
}
