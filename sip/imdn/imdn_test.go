package imdn

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/sip/cpim"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const head = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

func doc(inner string) string {
	return head + `<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>m1</message-id><datetime>2026-08-08T06:41:00Z</datetime>` + inner + `</imdn>`
}

func TestParse(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 8, 8, 6, 41, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want Notification
	}{
		{"spec example: delivered", string(readFile(t, "delivered.xml")),
			Notification{MessageID: "Msg2BCqcBUWKA", DateTime: at, Kind: Delivery, Status: Delivered}},
		{"all optional fields, unknown elements in and out of namespace", string(readFile(t, "displayed-full.xml")),
			Notification{MessageID: "34jk324j", DateTime: time.Date(2008, 4, 4, 17, 16, 49, 0, time.UTC),
				RecipientURI: "im:bob@example.com", OriginalRecipientURI: "im:bob@example.com", Subject: "Weekly meeting",
				Kind: Display, Status: Displayed}},
		{"failed", doc(`<delivery-notification><status><failed/></status></delivery-notification>`),
			Notification{MessageID: "m1", DateTime: at, Kind: Delivery, Status: Failed}},
		{"forbidden", doc(`<delivery-notification><status><forbidden/></status></delivery-notification>`),
			Notification{MessageID: "m1", DateTime: at, Kind: Delivery, Status: Forbidden}},
		{"display error", doc(`<display-notification><status><error/></status></display-notification>`),
			Notification{MessageID: "m1", DateTime: at, Kind: Display, Status: Error}},
		{"processing stored", doc(`<processing-notification><status><stored/></status></processing-notification>`),
			Notification{MessageID: "m1", DateTime: at, Kind: Processing, Status: Stored}},
		{"prefixed namespace, CDATA, reason element beside status",
			`<i:imdn xmlns:i="urn:ietf:params:xml:ns:imdn"><i:message-id><![CDATA[a&b]]></i:message-id><i:datetime>2026-08-08T06:41:00.250+00:00</i:datetime>` +
				`<i:delivery-notification><i:status><i:delivered/><x:why xmlns:x="urn:x"/></i:status><i:reason>ok</i:reason></i:delivery-notification></i:imdn>`,
			Notification{MessageID: "a&b", DateTime: at.Add(250 * time.Millisecond), Kind: Delivery, Status: Delivered}},
		{"datetime without zone is UTC, entities in text",
			`<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>x&lt;y&amp;z</message-id><datetime>2026-08-08T06:41:00</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>`,
			Notification{MessageID: "x<y&z", DateTime: at, Kind: Delivery, Status: Delivered}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !equal(got, &tt.want) {
				t.Errorf("Parse() = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// The bad inputs of issue 4 and their neighbours.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	delivered := `<delivery-notification><status><delivered/></status></delivery-notification>`
	tests := []struct {
		name string
		in   string
		want error
		text string
	}{
		{"entity expansion bomb", head + `<!DOCTYPE imdn [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>` + doc(delivered)[len(head):], ErrDTD, "DOCTYPE"},
		{"external entity", head + `<!DOCTYPE imdn SYSTEM "file:///etc/passwd">` + doc(delivered)[len(head):], ErrDTD, "DOCTYPE"},
		{"lower-case doctype", `<!doctype imdn>` + doc(delivered)[len(head):], ErrDTD, "DOCTYPE"},
		{"wrong namespace", strings.Replace(doc(delivered), Namespace, "urn:ietf:params:xml:ns:imdn2", 1), ErrWrongNamespace, `"urn:ietf:params:xml:ns:imdn2"`},
		{"no namespace", `<imdn><message-id>m</message-id></imdn>`, ErrWrongNamespace, "<imdn>"},
		{"other root", `<foo xmlns="urn:ietf:params:xml:ns:imdn"/>`, ErrWrongNamespace, "<foo>"},
		{"no message-id", head + `<imdn xmlns="urn:ietf:params:xml:ns:imdn"><datetime>2026-08-08T06:41:00Z</datetime>` + delivered + `</imdn>`, ErrMissing, "<message-id>"},
		{"no datetime", head + `<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>m</message-id>` + delivered + `</imdn>`, ErrMissing, "<datetime>"},
		{"bad datetime", strings.Replace(doc(delivered), "2026-08-08T06:41:00Z", "yesterday", 1), ErrBadDateTime, "yesterday"},
		{"no notification", doc(""), ErrMissing, "no delivery"},
		{"no status", doc(`<delivery-notification/>`), ErrMissing, "<status>"},
		{"empty status", doc(`<delivery-notification><status/></delivery-notification>`), ErrBadStatus, "empty"},
		{"unknown status only", doc(`<delivery-notification><status><teleported/></status></delivery-notification>`), ErrBadStatus, "<teleported>"},
		{"status of another kind", doc(`<delivery-notification><status><displayed/></status></delivery-notification>`), ErrBadStatus, "<displayed>"},
		{"two statuses", doc(`<delivery-notification><status><delivered/><failed/></status></delivery-notification>`), ErrBadStatus, "both"},
		{"two notifications", doc(delivered + `<display-notification><status><displayed/></status></display-notification>`), ErrBadStatus, "one notification"},
		{"duplicate message-id", strings.Replace(doc(delivered), "<datetime>", "<message-id>m2</message-id><datetime>", 1), ErrMalformed, "twice"},
		{"unclosed", doc(delivered)[:60], ErrMalformed, "EOF"},
		{"mismatched tags", `<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>m</datetime></imdn>`, ErrMalformed, "closed by"},
		{"undefined entity", strings.Replace(doc(delivered), "m1", "&xxe;", 1), ErrMalformed, "entity"},
		{"text after root", doc(delivered) + "junk", ErrMalformed, "after the root"},
		{"second root", doc(delivered) + "<imdn/>", ErrMalformed, "second root"},
		{"empty", "", ErrMalformed, "no root"},
		{"latin-1 declared", `<?xml version="1.0" encoding="ISO-8859-1"?>` + doc(delivered)[len(head):], ErrMalformed, "ISO-8859-1"},
		{"too large", doc(delivered + "<pad>" + strings.Repeat("x", MaxSize) + "</pad>"), ErrTooLarge, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, err := Parse([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse() = %+v, %v; want %v", n, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.HasPrefix(err.Error(), "imdn: ") {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
		})
	}
}

// NewDelivered and Bytes write the spec's example byte for byte.
func TestBytesMatchesSpecExample(t *testing.T) {
	t.Parallel()
	n := NewDelivered("Msg2BCqcBUWKA", time.Date(2026, 8, 8, 6, 41, 0, 0, time.UTC))
	if got, want := string(n.Bytes()), string(readFile(t, "delivered.xml")); got != want {
		t.Errorf("Bytes() =\n%s\nwant\n%s", got, want)
	}
}

func TestConstructorsRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 8, 8, 6, 41, 0, 123456789, time.FixedZone("", -5*3600))
	for _, n := range []*Notification{
		NewDelivered("a", at), NewDisplayed("b", at), NewFailed("c", at),
		{MessageID: " <&>\"' \t", DateTime: at, RecipientURI: "tel:+15551230001", OriginalRecipientURI: "sip:x@y;a=\"b\"",
			Subject: "multi\nline\r\nsubject", Kind: Processing, Status: Stored},
	} {
		got, err := Parse(n.Bytes())
		if err != nil {
			t.Fatalf("Parse(%+v.Bytes()): %v\n%s", n, err, n.Bytes())
		}
		want := *n
		want.MessageID = strings.TrimSpace(want.MessageID)
		if !equal(got, &want) {
			t.Errorf("round trip: %+v\nwant %+v", got, want)
		}
	}
	if k, s := NewFailed("c", at).Kind, NewFailed("c", at).Status; k != Delivery || s != Failed {
		t.Errorf("NewFailed = %s/%s", k, s)
	}
	if n := NewDisplayed("b", at); n.Kind != Display || n.Status != Displayed {
		t.Errorf("NewDisplayed = %s/%s", n.Kind, n.Status)
	}
}

func TestBytesNeverBreaksTheDocument(t *testing.T) {
	t.Parallel()
	n := &Notification{MessageID: "m", Kind: "<x>", Status: "a b"}
	if _, err := Parse(n.Bytes()); err == nil || errors.Is(err, ErrMalformed) {
		t.Errorf("an invalid kind must give a well-formed but refused document, got %v\n%s", err, n.Bytes())
	}
}

func TestCPIM(t *testing.T) {
	t.Parallel()
	n := NewDisplayed("Msg2BCqcBUWKA", time.Date(2026, 8, 8, 6, 41, 0, 0, time.UTC))
	m, err := cpim.Parse(n.CPIM("tel:+15551230002", "tel:+15551230001", "Ntf1").Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageID() != "Ntf1" || !IsNotification(m.ContentType()) || m.ContentHeader("Content-Disposition") != ContentDisposition {
		t.Errorf("envelope: %+v %+v", m.Headers, m.Content)
	}
	if pos, neg, disp := m.DispositionNotification(); pos || neg || disp {
		t.Error("a notification must not ask for notifications")
	}
	got, err := Parse(m.Body)
	if err != nil || !equal(got, n) {
		t.Errorf("body: %+v, %v", got, err)
	}
}

func TestIsNotification(t *testing.T) {
	t.Parallel()
	if !IsNotification("Message/IMDN+XML; charset=utf-8") || IsNotification("text/plain") {
		t.Error("IsNotification")
	}
}

func equal(a, b *Notification) bool {
	return a.MessageID == b.MessageID && a.DateTime.Equal(b.DateTime) && a.RecipientURI == b.RecipientURI &&
		a.OriginalRecipientURI == b.OriginalRecipientURI && a.Subject == b.Subject && a.Kind == b.Kind && a.Status == b.Status
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"delivered.xml", "displayed-full.xml"} {
		f.Add(readFile(f, name))
	}
	f.Add([]byte(doc(`<processing-notification><status><processed/></status></processing-notification>`)))
	f.Add([]byte(head + `<!DOCTYPE x [<!ENTITY a "b">]><imdn/>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := Parse(in)
		if err != nil {
			return
		}
		out := n.Bytes()
		n2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Bytes()) failed: %v\ninput %q\noutput %q", err, in, out)
		}
		if !equal(n, n2) {
			t.Fatalf("round trip differs: %+v vs %+v", n, n2)
		}
		if out2 := n2.Bytes(); !bytes.Equal(out, out2) {
			t.Fatalf("Bytes() not stable:\n%q\n%q", out, out2)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	in := readFile(b, "delivered.xml")
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBytes(b *testing.B) {
	n := NewDelivered("Msg2BCqcBUWKA", time.Date(2026, 8, 8, 6, 41, 0, 0, time.UTC))
	b.ReportAllocs()
	for b.Loop() {
		if len(n.Bytes()) == 0 {
			b.Fatal("empty")
		}
	}
}

func TestBytesEscapes(t *testing.T) {
	t.Parallel()
	for _, kind := range []Kind{"-x", "", "1a", "a:b"} {
		n := &Notification{MessageID: "m\x00\xff", Kind: kind, Status: Delivered}
		if _, err := Parse(n.Bytes()); err == nil || errors.Is(err, ErrMalformed) {
			t.Errorf("kind %q: want a well-formed but refused document, got %v\n%s", kind, err, n.Bytes())
		}
	}
	n := &Notification{MessageID: "m\x00\xff", Kind: Delivery, Status: Delivered}
	got, err := Parse(n.Bytes())
	if err != nil || got.MessageID != "m\uFFFD\uFFFD" {
		t.Errorf("invalid characters: %+v, %v", got, err)
	}
}
