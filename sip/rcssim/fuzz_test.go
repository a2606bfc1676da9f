package rcssim

import "testing"

// inviteBody takes whatever an INVITE carries without panicking, and
// returns an offer whenever it returns no error.
func FuzzInviteBody(f *testing.F) {
	f.Add("application/sdp", []byte("v=0\r\n"))
	f.Add("multipart/mixed;boundary=b1", []byte("--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--b1\r\nContent-Type: message/cpim\r\n\r\nFrom: <sip:a@b>\r\n\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1--\r\n"))
	f.Add("multipart/mixed;boundary=\"x\"", []byte("--x\r\n\r\n--x--"))
	f.Add("text/plain", []byte("x"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		offer, _, err := inviteBody(contentType, body)
		if err == nil && offer == nil {
			t.Fatal("no error and no offer")
		}
	})
}
