package sdp

import (
	"bytes"
	"errors"
	"mime/multipart"
	"strings"
	"testing"
)

const offerText = "v=0\r\no=- 1 1 IN IP4 h\r\nm=message 9 TCP/MSRP *\r\na=path:msrp://h:9/s;tcp\r\na=accept-types:message/cpim\r\n"

const cpimText = "From: <sip:+15551230001@ims.test>\r\nTo: <sip:+15551230002@ims.test>\r\n\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"

// multipartBody writes parts (content type, body) as multipart/mixed with
// the boundary b1.
func multipartBody(t testing.TB, parts ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.SetBoundary("b1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		pw, err := w.CreatePart(map[string][]string{"Content-Type": {p[0]}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write([]byte(p[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSplitInviteBody(t *testing.T) {
	sdpPart, cpimPart := [2]string{ContentType, offerText}, [2]string{"message/cpim", cpimText}
	tooMany := make([][2]string, 9)
	for i := range tooMany {
		tooMany[i] = cpimPart
	}
	tooMany[0] = sdpPart
	for _, c := range []struct {
		name, contentType string
		body              []byte
		offer             string
		others            []string // content types
		err               error    // nil: any error when offer is ""
	}{
		{name: "SDP alone", contentType: "application/sdp", body: []byte(offerText), offer: offerText},
		{name: "SDP, type in capitals", contentType: "Application/SDP", body: []byte(offerText), offer: offerText},
		{name: "offer then first message", contentType: "multipart/mixed;boundary=b1", body: multipartBody(t, sdpPart, cpimPart),
			offer: offerText, others: []string{"message/cpim"}},
		{name: "first message then offer, quoted boundary", contentType: `multipart/mixed; boundary="b1"`, body: multipartBody(t, cpimPart, sdpPart),
			offer: offerText, others: []string{"message/cpim"}},
		{name: "second offer kept as a part", contentType: "multipart/mixed;boundary=b1", body: multipartBody(t, sdpPart, sdpPart),
			offer: offerText, others: []string{ContentType}},
		{name: "no body", contentType: ContentType, err: ErrNoOffer},
		{name: "no content type", contentType: "", body: []byte(offerText), err: ErrNoOffer},
		{name: "CPIM alone", contentType: "message/cpim", body: []byte(cpimText), err: ErrNoOffer},
		{name: "multipart without an offer", contentType: "multipart/mixed;boundary=b1", body: multipartBody(t, cpimPart), err: ErrNoOffer},
		{name: "multipart without a boundary", contentType: "multipart/mixed", body: multipartBody(t, sdpPart)},
		{name: "wrong boundary", contentType: "multipart/mixed;boundary=zz", body: multipartBody(t, sdpPart), err: ErrNoOffer},
		{name: "unterminated", contentType: "multipart/mixed;boundary=b1", body: []byte("--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n")},
		{name: "nine parts", contentType: "multipart/mixed;boundary=b1", body: multipartBody(t, tooMany...)},
		{name: "a part over 256 KiB", contentType: "multipart/mixed;boundary=b1",
			body: multipartBody(t, sdpPart, [2]string{"message/cpim", strings.Repeat("x", 256<<10+1)})},
	} {
		offer, others, err := SplitInviteBody(c.contentType, c.body)
		if c.offer == "" {
			if err == nil || (c.err != nil && !errors.Is(err, c.err)) {
				t.Errorf("%s: %v, want an error (%v)", c.name, err, c.err)
			}
			continue
		}
		if err != nil || string(offer) != c.offer {
			t.Errorf("%s: offer %q, %v", c.name, offer, err)
			continue
		}
		var types []string
		for _, p := range others {
			types = append(types, p.ContentType)
		}
		if strings.Join(types, ",") != strings.Join(c.others, ",") {
			t.Errorf("%s: other parts %v, want %v", c.name, types, c.others)
		}
	}
}

// Parts written by mime/multipart come back byte for byte, the offer
// taken out and the rest in order.
func TestSplitInviteBodyRoundTrip(t *testing.T) {
	parts := [][2]string{{"message/cpim", cpimText}, {ContentType, offerText}, {"text/plain;charset=UTF-8", "é\r\n\r\nx"}}
	offer, others, err := SplitInviteBody("multipart/mixed;boundary=b1", multipartBody(t, parts...))
	if err != nil || string(offer) != offerText {
		t.Fatalf("offer %q, %v", offer, err)
	}
	if len(others) != 2 || others[0].ContentType != parts[0][0] || string(others[0].Body) != parts[0][1] ||
		others[1].ContentType != parts[2][0] || string(others[1].Body) != parts[2][1] {
		t.Errorf("other parts %+v", others)
	}
}

// FuzzSplitInviteBody: no panic; an offer comes back only with no error,
// and never more than 8 parts or a part over 256 KiB.
func FuzzSplitInviteBody(f *testing.F) {
	f.Add("application/sdp", []byte(offerText))
	f.Add("multipart/mixed;boundary=b1", multipartBody(f, [2]string{ContentType, offerText}, [2]string{"message/cpim", cpimText}))
	f.Add("multipart/mixed;boundary=\"x\"", []byte("--x\r\n\r\n--x--"))
	f.Add("multipart/mixed;boundary=b1", []byte("--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		offer, others, err := SplitInviteBody(contentType, body)
		if err != nil {
			if offer != nil || others != nil {
				t.Fatalf("error %v with an offer or parts", err)
			}
			return
		}
		if len(offer) == 0 || len(offer) > maxBodyPartSize && len(others) > 0 || len(others) >= maxBodyParts {
			t.Fatalf("offer of %d bytes and %d other parts", len(offer), len(others))
		}
		for _, p := range others {
			if len(p.Body) > maxBodyPartSize {
				t.Fatalf("part of %d bytes", len(p.Body))
			}
		}
	})
}
