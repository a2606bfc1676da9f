package sip

import (
	"bytes"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// Over TCP and TLS a request whose body is over max_body must get a 413 and
// leave the connection usable. sipgo's stream parser cannot do that: it
// refuses such a message before reading its body, and with no way to skip
// the body it closes the connection, dropping whatever the peer had queued
// behind it. So every accepted stream connection is read through a framer
// that finds message boundaries by Content-Length as sipgo does, passes
// messages within the limit through unchanged, and takes out those over it,
// answering each with a 413 on the same connection.

type frameState uint8

const (
	frameHeader frameState = iota // reading a header block
	frameBody                     // passing a body on
	frameSkip                     // dropping the body of a refused message
	frameOff                      // framing lost: everything passes on
)

// framer splits a SIP byte stream into messages. It holds back a message's
// header block until it is whole (at most maxHeader bytes), then passes it
// on with its body, or, when Content-Length is over maxBody, drops both and
// reports the header block. Whatever it cannot frame (no Content-Length, a
// bad or conflicting one, a header block over maxHeader) switches it off:
// the rest of the stream passes on as it came, for sipgo to refuse.
type framer struct {
	maxBody, maxHeader int

	state frameState
	left  uint64 // body bytes left to pass or to drop
	hdr   []byte // the header block so far
	// nl is where the scan of hdr stands: 0 inside a line, 1 just after a
	// line feed, 2 after a line feed and a carriage return, 3 at the end of
	// the block (a line feed in state 1 or 2).
	nl uint8
}

// feed frames data, appending to out what goes on to the parser. It
// returns out and, for each message refused for its size, a copy of its
// header block.
func (f *framer) feed(out, data []byte) ([]byte, [][]byte) {
	var refused [][]byte
	for len(data) > 0 {
		switch f.state {
		case frameOff:
			return append(out, data...), refused
		case frameBody, frameSkip:
			n := uint64(len(data))
			if f.left < n {
				n = f.left
			}
			if f.state == frameBody {
				out = append(out, data[:n]...)
			}
			data, f.left = data[n:], f.left-n
			if f.left == 0 {
				f.state = frameHeader
			}
		case frameHeader:
			if len(f.hdr) == 0 {
				// Between messages: CRLF keep-alives pass on at once.
				i := 0
				for i < len(data) && (data[i] == '\r' || data[i] == '\n') {
					i++
				}
				out, data = append(out, data[:i]...), data[i:]
				if len(data) == 0 {
					break
				}
				f.nl = 0
			}
			end := f.scan(data)
			if end < 0 {
				end = len(data)
			}
			f.hdr, data = append(f.hdr, data[:end]...), data[end:]
			if len(f.hdr) > f.maxHeader {
				out, f.hdr, f.state = append(out, f.hdr...), nil, frameOff
				continue
			}
			if f.nl != 3 {
				return out, refused // the block goes on in the next read
			}
			out, refused = f.decide(out, refused)
			f.hdr = f.hdr[:0]
		}
	}
	return out, refused
}

// scan looks for the end of the header block in data, the header block so
// far having left the scan in state f.nl. It returns the length of data
// that completes the block (and sets f.nl to 3), or -1.
func (f *framer) scan(data []byte) int {
	for i, b := range data {
		switch {
		case b == '\n' && f.nl != 0:
			f.nl = 3
			return i + 1
		case b == '\n':
			f.nl = 1
		case b == '\r' && f.nl == 1:
			f.nl = 2
		case b != '\r':
			f.nl = 0
		}
	}
	return -1
}

// decide sends the whole header block in f.hdr on, or refuses its message.
func (f *framer) decide(out []byte, refused [][]byte) ([]byte, [][]byte) {
	n, ok := contentLength(f.hdr)
	switch {
	case !ok:
		f.state = frameOff
		return append(out, f.hdr...), refused
	case n > uint64(f.maxBody):
		f.state, f.left = frameSkip, n
		return out, append(refused, bytes.Clone(f.hdr))
	case n > 0:
		f.state, f.left = frameBody, n
	}
	return append(out, f.hdr...), refused
}

// contentLength reads the Content-Length (or compact "l") of a header
// block. ok is false when there is none, when it is not a number, or when
// two disagree.
func contentLength(hdr []byte) (n uint64, ok bool) {
	_, rest, _ := bytes.Cut(hdr, []byte("\n")) // after the start line
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		name, value, found := bytes.Cut(bytes.TrimRight(line, "\r"), []byte(":"))
		if !found || len(name) == 0 || name[0] == ' ' || name[0] == '\t' {
			continue
		}
		if !isContentLength(name) {
			continue
		}
		v, err := strconv.ParseUint(string(bytes.TrimSpace(value)), 10, 63)
		if err != nil || (ok && v != n) {
			return 0, false
		}
		n, ok = v, true
	}
	return n, ok
}

// isContentLength reports whether a header name is Content-Length, in its
// long or compact form.
func isContentLength(name []byte) bool {
	name = bytes.TrimSpace(name)
	return bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("l"))
}

// framedListener hands out connections read through a framer.
type framedListener struct {
	net.Listener
	newConn func(net.Conn) net.Conn
}

func (l framedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.newConn(c), nil
}

// framedConn is an accepted stream connection read through a framer. Its
// writes are serialised, so that a 413 it sends never interleaves with an
// answer sipgo writes.
type framedConn struct {
	net.Conn
	f      framer
	refuse func(c *framedConn, header []byte)

	in  []byte
	out []byte // framed bytes not yet read, from off
	off int
	err error // the read error to return once out is drained

	wmu sync.Mutex
}

func (c *framedConn) Read(p []byte) (int, error) {
	for c.off == len(c.out) {
		if c.err != nil {
			return 0, c.err
		}
		n, err := c.Conn.Read(c.in)
		var refused [][]byte
		c.out, refused = c.f.feed(c.out[:0], c.in[:n])
		c.off, c.err = 0, err
		for _, h := range refused {
			c.refuse(c, h)
		}
	}
	n := copy(p, c.out[c.off:])
	c.off += n
	return n, nil
}

func (c *framedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.Write(p)
}

// ConnectionState is the TLS state of a TLS connection (zero otherwise),
// for checking the peer's identity.
func (c *framedConn) ConnectionState() (tls.ConnectionState, bool) {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// framedReadSize is what a framed connection reads from its socket at a
// time: enough for a pager-mode message whole, small beside sipgo's own
// 32 KiB buffer per connection.
const framedReadSize = 8 << 10

// framed reads the connections l accepts through a framer.
func (e *Edge) framed(l net.Listener, transport string) net.Listener {
	return framedListener{Listener: l, newConn: func(c net.Conn) net.Conn {
		return &framedConn{Conn: c, in: make([]byte, framedReadSize),
			f:      framer{maxBody: e.cfg.MaxBody, maxHeader: e.parser.MaxMessageLength},
			refuse: func(c *framedConn, hdr []byte) { e.refuseLarge(c, hdr, transport) }}
	}}
}

// refuseLarge answers a request whose body the framer dropped with a 413
// on its connection. A response, an ACK or a header block that does not
// parse gets nothing but a log line.
func (e *Edge) refuseLarge(c *framedConn, hdr []byte, transport string) {
	size, _ := contentLength(hdr)
	msg, err := e.parser.ParseSIP(withoutBody(hdr))
	req, isReq := msg.(*sip.Request)
	if err != nil || !isReq {
		e.log.Warn("sip: dropped an oversized message", "peer", c.RemoteAddr().String(), "bytes", size, "err", err)
		return
	}
	method := methodLabel(string(req.Method))
	e.m.requests.WithLabelValues(method, strings.ToLower(transport)).Inc()
	if req.IsAck() {
		return
	}
	req.SetTransport(transport)
	req.SetSource(c.RemoteAddr().String())
	ans := e.tooLarge(size)
	res := e.response(req, ans, sip.GenerateTagN(12))
	if _, err := c.Write([]byte(res.String())); err != nil {
		e.log.Warn("sip: write answer", "peer", req.Source(), "status", ans.Status, "err", err)
	}
	e.m.answers.WithLabelValues(method, codeLabel(ans.Status)).Inc()
}

// withoutBody is a header block with its Content-Length set to 0, so that
// it parses as a whole message.
func withoutBody(hdr []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(hdr, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			continue
		}
		if name, _, ok := bytes.Cut(line, []byte(":")); ok && isContentLength(name) {
			continue
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.Bytes()
}
