package revoke

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultRequest(t *testing.T) {
	t.Parallel()
	out, err := DefaultRequestTemplate().Execute(Data{MessageID: "Msg2BCqcBUWKA", Recipient: "tel:+15551230002"})
	if err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?>
<rcsrevoke xmlns="urn:gsma:params:xml:ns:rcs:rcs:rcsrevoke"><Message-ID>Msg2BCqcBUWKA</Message-ID></rcsrevoke>
`
	if string(out) != want {
		t.Errorf("Execute() =\n%s\nwant\n%s", out, want)
	}
	// Our own request echoed back is not a result.
	if _, err := ParseResult(out); !errors.Is(err, ErrNoResult) {
		t.Errorf("ParseResult(request) error = %v, want ErrNoResult", err)
	}
}

func TestExecuteEscapes(t *testing.T) {
	t.Parallel()
	tpl, err := ParseTemplate(`<r xmlns="` + Namespace + `" to="{{.Recipient}}" conv="{{.ConversationID}}" contrib="{{.ContributionID}}"><id>{{.MessageID}}</id></r>`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Execute(Data{MessageID: `a<b>&"c'`, Recipient: `sip:x@y;p="q"`, ConversationID: "c1", ContributionID: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := wellFormed(out); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{`<id>a&lt;b&gt;&amp;&#34;c&#39;</id>`, `to="sip:x@y;p=&#34;q&#34;"`, `conv="c1"`, `contrib="c2"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

func TestParseTemplateErrors(t *testing.T) {
	t.Parallel()
	for name, text := range map[string]string{
		"syntax":              `<r>{{.MessageID</r>`,
		"unknown field":       `<r>{{.MessageID}}{{.Nope}}</r>`,
		"no message id":       `<r>nothing</r>`,
		"not well-formed":     `<r>{{.MessageID}}</x>`,
		"doctype":             `<!DOCTYPE r [<!ENTITY e "x">]><r>{{.MessageID}}</r>`,
		"empty":               ``,
		"two roots":           `<r>{{.MessageID}}</r><r/>`,
		"id only in comments": `<r><!-- {{.MessageID}} --></r>extra`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseTemplate(text); !errors.Is(err, ErrTemplate) {
				t.Errorf("ParseTemplate(%q) error = %v, want ErrTemplate", text, err)
			}
		})
	}
}

func TestParseResult(t *testing.T) {
	t.Parallel()
	const ns = `xmlns="urn:gsma:params:xml:ns:rcs:rcs:rcsrevoke"`
	tests := []struct {
		name    string
		in      string
		id      string
		success bool
	}{
		{"lower-case result success", `<rcsrevoke ` + ns + `><Message-ID>m1</Message-ID><result>success</result></rcsrevoke>`, "m1", true},
		{"capitalised Result failure", `<rcsrevoke ` + ns + `><Message-ID>m1</Message-ID><Result>failure</Result></rcsrevoke>`, "m1", false},
		{"status attribute on the root", `<rcsrevoke ` + ns + ` status="Revoked"><message-id>m2</message-id></rcsrevoke>`, "m2", true},
		{"result attribute on a child", `<revoke><msg id="x" result="FAILED"/><messageId>m3</messageId></revoke>`, "m3", false},
		{"marker element", `<rcsrevoke ` + ns + `><Message-ID>m4</Message-ID><revoke-result><revoked/></revoke-result></rcsrevoke>`, "m4", true},
		{"already delivered marker", `<rcsrevoke><Message-ID>m5</Message-ID><status><delivered/></status></rcsrevoke>`, "m5", false},
		{"status code 200", `<rcsrevoke><Message_ID>m6</Message_ID><code>200</code></rcsrevoke>`, "m6", true},
		{"response code 404", `<rcsrevoke><message.id>m7</message.id><response-code> 404 </response-code></rcsrevoke>`, "m7", false},
		{"prefixed elements, message id attribute", `<r:rcsrevoke xmlns:r="urn:x" r:Message-ID="m8"><r:Outcome>Success</r:Outcome></r:rcsrevoke>`, "m8", true},
		{"no message id in the body", `<rcsrevoke><result>success</result></rcsrevoke>`, "", true},
		{"unknown words ignored", `<rcsrevoke><Message-ID>m9</Message-ID><result>pending</result><status>failed</status></rcsrevoke>`, "m9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseResult([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if r.MessageID != tt.id || r.Success != tt.success || r.Evidence == "" {
				t.Errorf("ParseResult() = %+v, want id %q success %v", r, tt.id, tt.success)
			}
		})
	}
}

func TestParseResultErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"no outcome", `<rcsrevoke><Message-ID>m1</Message-ID></rcsrevoke>`, ErrNoResult},
		{"unknown outcome word", `<rcsrevoke><Message-ID>m1</Message-ID><result>maybe</result></rcsrevoke>`, ErrNoResult},
		{"message id that looks like an outcome", `<rcsrevoke><Message-ID>success</Message-ID></rcsrevoke>`, ErrNoResult},
		{"both", `<rcsrevoke><result>success</result><status>failure</status></rcsrevoke>`, ErrAmbiguous},
		{"doctype", `<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><rcsrevoke><result>&e;</result></rcsrevoke>`, ErrDTD},
		{"malformed", `<rcsrevoke><result>success</rcsrevoke>`, ErrMalformed},
		{"too deep", strings.Repeat("<a>", maxDepth+1) + strings.Repeat("</a>", maxDepth+1), ErrMalformed},
		{"too large", `<r><result>success</result>` + strings.Repeat(" ", MaxSize) + `</r>`, ErrTooLarge},
		{"not XML", `success`, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseResult([]byte(tt.in))
			if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "revoke: ") {
				t.Errorf("ParseResult() = %+v, %v; want %v", r, err, tt.want)
			}
		})
	}
}

// Both outcomes, written with the default result template, read back.
func TestResultRoundTrip(t *testing.T) {
	t.Parallel()
	tpl := DefaultResultTemplate()
	for _, success := range []bool{true, false} {
		out, err := tpl.Execute(Data{MessageID: "Msg2BCqcBUWKA", Result: outcome(success)})
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseResult(out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if r.MessageID != "Msg2BCqcBUWKA" || r.Success != success {
			t.Errorf("success=%v: ParseResult() = %+v", success, r)
		}
	}
}

func TestIsRevoke(t *testing.T) {
	t.Parallel()
	if !IsRevoke("application/vnd.gsma.rcsrevoke+xml;charset=utf-8") || IsRevoke("message/imdn+xml") {
		t.Error("IsRevoke")
	}
}

func outcome(success bool) string {
	if success {
		return "success"
	}
	return "failure"
}

// FuzzParseResult: never panics; what parses is rewritten with the default
// result template and reads back the same.
func FuzzParseResult(f *testing.F) {
	f.Add([]byte(`<rcsrevoke xmlns="urn:gsma:params:xml:ns:rcs:rcs:rcsrevoke"><Message-ID>m1</Message-ID><result>success</result></rcsrevoke>`))
	f.Add([]byte(`<rcsrevoke status="404"><messageId>m</messageId><status><delivered/></status></rcsrevoke>`))
	f.Add([]byte(DefaultRequest))
	tpl := DefaultResultTemplate()
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseResult(in)
		if err != nil {
			return
		}
		out, err := tpl.Execute(Data{MessageID: r.MessageID, Result: outcome(r.Success)})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseResult(out)
		if err != nil {
			t.Fatalf("ParseResult(rewritten) failed: %v\n%s", err, out)
		}
		if r2.MessageID != r.MessageID || r2.Success != r.Success {
			t.Fatalf("rewritten result differs: %+v vs %+v", r, r2)
		}
	})
}
