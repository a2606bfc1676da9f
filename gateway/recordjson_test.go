package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// marshalInRecord writes what json.Marshal writes for the record of a
// message from a phone: with and without the optional fields, times in
// several zones and precisions, and strings with every kind of byte JSON
// escapes (controls, quotes, HTML, U+2028, bytes that are not UTF-8).
func TestMarshalInRecordSameAsJSON(t *testing.T) {
	t.Parallel()
	var ascii strings.Builder
	for c := range 0x80 {
		ascii.WriteByte(byte(c))
	}
	texts := []string{"", "a", ascii.String(), "héllo wörld 日本 😀", "\u2028\u2029\u2027\u202a", "a\xffb\xc3", "\xe2\x80",
		"<script>&amp;</script>", `"quoted" \back\slash`, "tab\there\nnew\rline\b\f\x00\x1f\x7f", "Msg2BCqcBUWKA"}
	zone := time.FixedZone("x", -(3*3600 + 30*60))
	times := []time.Time{{}, time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 120000000, zone), time.Now(), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("lmt", 3600+61)), time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("far", 30*3600))}
	n := 0
	for i, s := range texts {
		for j, at := range times {
			r := inRecord{Channel: ChannelRCS, From: "+15551230000", To: "+15559870000", Ref: s, ConversationID: texts[(i+j)%len(texts)],
				Notify: Notifications{Delivery: i%2 == 0, Display: j%2 == 0}, Excerpt: texts[(i+2*j)%len(texts)], At: at}
			if i == 3 {
				r.Told = []Status{StatusDelivered, StatusDelivered + 1}
			}
			if i == 4 {
				r.Channel, r.From, r.To = Channel(s), "", ""
			}
			want, werr := json.Marshal(r)
			got, gerr := marshalInRecord(r)
			if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
				t.Errorf("marshalInRecord(%+v) = %s, %v\njson.Marshal gives %s, %v", r, got, gerr, want, werr)
			}
			n++
		}
	}
	if n != len(texts)*len(times) {
		t.Fatalf("%d records compared", n)
	}
}

// BenchmarkInRecordJSON is the record of one message from a phone as JSON.
func BenchmarkInRecordJSON(b *testing.B) {
	r := inRecord{Channel: ChannelRCS, From: "+15551230000", To: "+15559870000", Ref: "Msg2BCqcBUWKA", ConversationID: "conv-bench",
		Notify: Notifications{Delivery: true, Display: true}, Excerpt: "load test message of a typical length", At: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := marshalInRecord(r); err != nil {
			b.Fatal(err)
		}
	}
}
