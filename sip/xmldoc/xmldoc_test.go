package xmldoc

import (
	"errors"
	"strings"
	"testing"
)

func TestNewDecoderRefuses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		doc  string
		want error
	}{
		{`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>`, ErrDTD},
		{`<x><!doctype y></x>`, ErrDTD},
		{`<x><!ENTITY y SYSTEM "file:///etc/passwd"></x>`, ErrDTD},
		{`<x>` + strings.Repeat("a", 100) + `</x>`, ErrTooLarge},
	} {
		if _, err := NewDecoder([]byte(tt.doc), 64); !errors.Is(err, tt.want) {
			t.Errorf("NewDecoder(%.40q): %v, want %v", tt.doc, err, tt.want)
		}
	}
}

func TestReadAndEscape(t *testing.T) {
	t.Parallel()
	d, err := NewDecoder([]byte(`<?xml version="1.0"?><a xmlns="urn:x"><b>1 &lt; 2</b><c><d/></c></a>`), 1024)
	if err != nil {
		t.Fatal(err)
	}
	root, err := Root(d)
	if err != nil || root.Name.Local != "a" || root.Name.Space != "urn:x" {
		t.Fatalf("Root = %+v, %v", root, err)
	}
	if _, err := Token(d); err != nil { // <b>
		t.Fatal(err)
	}
	if s, err := Text(d); err != nil || s != "1 < 2" {
		t.Fatalf("Text = %q, %v", s, err)
	}
	if _, err := Token(d); err != nil { // <c>
		t.Fatal(err)
	}
	if err := Skip(d); err != nil {
		t.Fatal(err)
	}
	if got := string(AppendEscaped(nil, `<a href="x">&'`)); got != "&lt;a href=&#34;x&#34;&gt;&amp;&#39;" {
		t.Errorf("AppendEscaped = %q", got)
	}
}
