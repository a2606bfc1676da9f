package msrp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Errors the reader returns or wraps. ErrSyntax, ErrHeadersTooLarge,
// ErrBadEndLine and io.ErrUnexpectedEOF leave the stream out of step:
// the connection must be closed. A *FrameError leaves it in step.
var (
	ErrSyntax          = errors.New("malformed frame")
	ErrHeadersTooLarge = errors.New("header section over the limit")
	ErrBadEndLine      = errors.New("bad end-line")
	ErrChunkTooLarge   = errors.New("body over the chunk limit")
	ErrBadHeader       = errors.New("bad header")
	ErrMissingHeader   = errors.New("missing header")
)

// FrameError is a frame the reader read through its end-line but cannot
// hand on: a header did not parse, one that is required is missing, or
// the body is over Limits.MaxChunk. The stream is still in step, and a
// receiver answers the request with Code (400 or 413) when it can: Frame
// holds the transaction ID, the method or status, and whatever headers
// did parse (never the body).
type FrameError struct {
	Frame *Frame
	Code  int
	Err   error
}

func (e *FrameError) Error() string {
	what := e.Frame.Method
	if what == "" {
		what = "response " + strconv.Itoa(e.Frame.Code)
	}
	return fmt.Sprintf("msrp: %s %s: %v", what, e.Frame.TID, e.Err)
}

func (e *FrameError) Unwrap() error { return e.Err }

// Reader reads frames from a stream. It finds each frame's end by its
// end-line, never by a length the peer sent, and it buffers at most one
// header section (Limits.MaxHeaderBytes) and one body (Limits.MaxChunk).
type Reader struct {
	br  *bufio.Reader
	lim Limits
	err error // sticky: the stream is out of step or ended

	hdr   []byte // header lines of the current frame, line ends removed
	lines []int  // end offset of each header line in hdr
}

// NewReader reads frames from rd within the limits (zero fields take
// their defaults).
func NewReader(rd io.Reader, l Limits) *Reader {
	l.Defaults()
	return &Reader{br: bufio.NewReaderSize(rd, max(l.MaxHeaderBytes, 32<<10)), lim: l}
}

// Next returns the next frame. At the end of the stream between frames it
// returns io.EOF. A *FrameError names a frame that was read through but
// refused; the reader can go on. Any other error is final: every later
// call returns it again.
//
// A chunk the sender interrupted (an end-line before the end of its
// Byte-Range, RFC 4975 section 7.1) is returned as it came, with its flag;
// Frame.Range tells which bytes it carries.
func (r *Reader) Next() (*Frame, error) {
	if r.err != nil {
		return nil, r.err
	}
	f, err := r.next()
	if err != nil {
		if _, ok := err.(*FrameError); !ok {
			r.err = err
			return nil, err
		}
	}
	return f, err
}

func (r *Reader) next() (*Frame, error) {
	var budget int
	var line []byte
	var err error
	for {
		budget = r.lim.MaxHeaderBytes
		var cut bool
		line, cut, err = r.readLine(&budget)
		if err != nil {
			return nil, err
		}
		if cut {
			return nil, io.ErrUnexpectedEOF
		}
		// Blank lines between frames are skipped: some peers send a
		// CRLF as a keepalive. They count against the header budget.
		if len(line) > 0 {
			break
		}
	}
	f := &Frame{}
	if err := parseStartLine(f, line); err != nil {
		return nil, err
	}

	// Header lines up to a blank line (content follows) or the end-line.
	r.hdr, r.lines = r.hdr[:0], r.lines[:0]
	content := false
	for {
		line, cut, err := r.readLine(&budget)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, fmt.Errorf("msrp: %s headers: %w", f.TID, err)
		}
		if cut {
			// Only an end-line may end the stream without a line end.
			if _, ok, _ := endLine(line, f.TID, true); !ok {
				return nil, fmt.Errorf("msrp: %s headers: %w", f.TID, io.ErrUnexpectedEOF)
			}
		}
		if len(line) == 0 {
			content = true
			break
		}
		if fl, ok, err := endLine(line, f.TID, true); err != nil {
			return nil, err
		} else if ok {
			f.Flag = fl
			break
		}
		if len(r.lines) == r.lim.MaxHeaders {
			return nil, fmt.Errorf("msrp: %s: %w: more than %d header lines", f.TID, ErrHeadersTooLarge, r.lim.MaxHeaders)
		}
		r.hdr = append(r.hdr, line...)
		r.lines = append(r.lines, len(r.hdr))
	}
	hdrErr := parseHeaders(f, string(r.hdr), r.lines)

	if content {
		body, flag, over, err := r.readBody(f, sizeHint(f, r.lim.MaxChunk))
		if err != nil {
			return nil, err
		}
		f.Flag = flag
		if over {
			return nil, &FrameError{Frame: f, Code: 413,
				Err: fmt.Errorf("%w: over %d bytes", ErrChunkTooLarge, r.lim.MaxChunk)}
		}
		if len(body) > 0 {
			f.Body = body
		}
	}
	if hdrErr == nil {
		hdrErr = checkFrame(f)
	}
	if hdrErr != nil {
		f.Body = nil
		return nil, &FrameError{Frame: f, Code: 400, Err: hdrErr}
	}
	return f, nil
}

// readLine returns one line without its line end (CRLF, or a bare LF from
// a lenient peer), charging it to budget. cut says the stream ended
// before a line end; io.EOF is returned only when nothing was left.
func (r *Reader) readLine(budget *int) (line []byte, cut bool, err error) {
	line, err = r.br.ReadSlice('\n')
	*budget -= len(line)
	switch {
	case err == bufio.ErrBufferFull || *budget < 0:
		return nil, false, fmt.Errorf("msrp: %w: over %d bytes", ErrHeadersTooLarge, r.lim.MaxHeaderBytes)
	case err == io.EOF && len(line) > 0:
		return line, true, nil
	case err != nil:
		return nil, false, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, false, nil
}

// readBody reads the content up to the end-line: a line, at the start of
// the content or after a line end, of seven dashes, the transaction ID and
// a flag. The line end before the end-line belongs to the framing, not the
// content. A body over the limit is read past without being kept (up to
// Limits.MaxMessage bytes) so that the stream stays in step.
func (r *Reader) readBody(f *Frame, hint int) (body []byte, flag Flag, over bool, err error) {
	body = make([]byte, 0, hint)
	limit := r.lim.MaxChunk + 2
	var skipped int64
	lineStart := true
	for {
		seg, rerr := r.br.ReadSlice('\n')
		if lineStart && len(seg) > 0 {
			fl, ok, err := endLine(seg, f.TID, rerr == io.EOF)
			if err != nil {
				return nil, 0, false, err
			}
			if ok {
				return trimLineEnd(body), fl, over, nil
			}
		}
		if !over && len(body)+len(seg) > limit {
			over, skipped, body = true, int64(len(body)), nil
		}
		if over {
			skipped += int64(len(seg))
			if skipped > r.lim.MaxMessage {
				return nil, 0, false, fmt.Errorf("msrp: %s: %w: no end-line within %d bytes", f.TID, ErrSyntax, r.lim.MaxMessage)
			}
		} else {
			body = append(body, seg...)
		}
		lineStart = len(seg) > 0 && seg[len(seg)-1] == '\n'
		switch rerr {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return nil, 0, false, fmt.Errorf("msrp: %s: %w before the end-line", f.TID, io.ErrUnexpectedEOF)
		default:
			return nil, 0, false, rerr
		}
	}
}

func trimLineEnd(b []byte) []byte {
	if bytes.HasSuffix(b, []byte("\r\n")) {
		return b[:len(b)-2]
	}
	if bytes.HasSuffix(b, []byte("\n")) {
		return b[:len(b)-1]
	}
	return b
}

// endLine reports whether line (starting at a line start, with or without
// its line end) is the end-line of transaction tid. A line that starts
// with the end-line and its flag but goes on is an error: the transaction
// ID may not occur in the content, so the framing is broken. final says
// the stream ends after line, so a missing line end is accepted.
func endLine(line []byte, tid string, final bool) (Flag, bool, error) {
	n := 7 + len(tid)
	if len(line) <= n || string(line[:7]) != "-------" || string(line[7:n]) != tid {
		return 0, false, nil
	}
	fl := Flag(line[n])
	if !fl.valid() {
		return 0, false, nil
	}
	switch rest := string(line[n+1:]); rest {
	case "\r\n", "\n":
	case "":
		if !final {
			return 0, false, fmt.Errorf("msrp: %w %q: no line end", ErrBadEndLine, line)
		}
	default:
		return 0, false, fmt.Errorf("msrp: %w %q", ErrBadEndLine, clip(string(line)))
	}
	return fl, true, nil
}

// sizeHint is the capacity to start a body with: what the Byte-Range
// announces, within bounds, since the peer's numbers are not trusted.
func sizeHint(f *Frame, maxChunk int) int {
	n := int64(4 << 10)
	if br := f.ByteRange; br.Start > 0 && br.End != Unknown {
		n = br.End - br.Start + 1
	}
	return int(min(max(n, 0), int64(maxChunk), 64<<10)) + 2
}

// parseStartLine reads "MSRP tid METHOD" or "MSRP tid 200 comment".
func parseStartLine(f *Frame, line []byte) error {
	bad := func(why string) error {
		return fmt.Errorf("msrp: %w: start line %q: %s", ErrSyntax, clip(string(line)), why)
	}
	s, ok := strings.CutPrefix(string(line), "MSRP ")
	if !ok {
		return bad("does not start with MSRP")
	}
	tid, rest, ok := strings.Cut(s, " ")
	if !ok || !isIdent(tid) {
		return bad("bad transaction ID")
	}
	f.TID = tid
	if len(rest) >= 3 && digit(rest[0]) && digit(rest[1]) && digit(rest[2]) {
		code, comment := rest[:3], rest[3:]
		if comment != "" {
			var ok bool
			if comment, ok = strings.CutPrefix(comment, " "); !ok {
				return bad("bad status code")
			}
		}
		if !validText(comment) {
			return bad("bad comment")
		}
		f.Code, _ = strconv.Atoi(code)
		if f.Code < 100 {
			return bad("status code under 100")
		}
		f.Comment = comment
		return nil
	}
	if rest == "" || !validChars(rest, upper) {
		return bad("bad method")
	}
	f.Method = rest
	return nil
}

// isIdent: ident = ALPHANUM 3*31ident-char, ident-char = ALPHANUM / "." /
// "-" / "+" / "%" / "=" (transaction and message IDs).
func isIdent(s string) bool {
	return len(s) >= 4 && len(s) <= 32 && alnum(s[0]) && validChars(s, identChar)
}

func identChar(c byte) bool { return alnum(c) || strings.IndexByte(".-+%=", c) >= 0 }

func upper(c byte) bool { return c >= 'A' && c <= 'Z' }

// validText: utf8text without control characters but tab.
func validText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// parseHeaders fills f from the header lines (one string, lines ending at
// the given offsets). It goes through every line and returns the first
// problem.
func parseHeaders(f *Frame, s string, ends []int) error {
	var first error
	start := 0
	for _, end := range ends {
		line := s[start:end]
		start = end
		if err := parseHeader(f, line); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func parseHeader(f *Frame, line string) error {
	name, value, ok := strings.Cut(line, ":")
	if !ok || !isHeaderName(name) {
		return fmt.Errorf("%w line %q", ErrBadHeader, clip(line))
	}
	value = strings.Trim(value, " \t")
	if !validText(value) {
		return fmt.Errorf("%w %s: control character", ErrBadHeader, name)
	}
	bad := func(err error) error {
		if err == nil {
			err = errors.New("bad value")
		}
		return fmt.Errorf("%w %s %q: %v", ErrBadHeader, name, clip(value), err)
	}
	dup := func(set bool) error {
		if set {
			return fmt.Errorf("%w: %s twice", ErrBadHeader, name)
		}
		return nil
	}
	var err error
	switch {
	case strings.EqualFold(name, "To-Path"):
		if err := dup(f.ToPath != nil); err != nil {
			return err
		}
		if f.ToPath, err = ParsePath(value); err != nil {
			return bad(err)
		}
	case strings.EqualFold(name, "From-Path"):
		if err := dup(f.FromPath != nil); err != nil {
			return err
		}
		if f.FromPath, err = ParsePath(value); err != nil {
			return bad(err)
		}
	case strings.EqualFold(name, "Message-ID"):
		if err := dup(f.MessageID != ""); err != nil {
			return err
		}
		if !isIdent(value) {
			return bad(nil)
		}
		f.MessageID = value
	case strings.EqualFold(name, "Byte-Range"):
		if err := dup(!f.ByteRange.IsZero()); err != nil {
			return err
		}
		if f.ByteRange, err = ParseByteRange(value); err != nil {
			return bad(err)
		}
	case strings.EqualFold(name, "Success-Report"):
		if err := dup(f.SuccessReport != ReportUnset); err != nil {
			return err
		}
		if f.SuccessReport = parseReport(value, false); f.SuccessReport == ReportUnset {
			return bad(nil)
		}
	case strings.EqualFold(name, "Failure-Report"):
		if err := dup(f.FailureReport != ReportUnset); err != nil {
			return err
		}
		if f.FailureReport = parseReport(value, true); f.FailureReport == ReportUnset {
			return bad(nil)
		}
	case strings.EqualFold(name, "Status"):
		if err := dup(f.Status != nil); err != nil {
			return err
		}
		st, err := ParseStatus(value)
		if err != nil {
			return bad(err)
		}
		f.Status = &st
	case strings.EqualFold(name, "Use-Path"):
		if err := dup(f.UsePath != nil); err != nil {
			return err
		}
		if f.UsePath, err = ParsePath(value); err != nil {
			return bad(err)
		}
	case strings.EqualFold(name, "WWW-Authenticate"):
		return setText(&f.WWWAuthenticate, value, dup, bad)
	case strings.EqualFold(name, "Authorization"):
		return setText(&f.Authorization, value, dup, bad)
	case strings.EqualFold(name, "Authentication-Info"):
		return setText(&f.AuthenticationInfo, value, dup, bad)
	case strings.EqualFold(name, "Expires"):
		return setSeconds(&f.Expires, value, dup, bad)
	case strings.EqualFold(name, "Min-Expires"):
		return setSeconds(&f.MinExpires, value, dup, bad)
	case strings.EqualFold(name, "Max-Expires"):
		return setSeconds(&f.MaxExpires, value, dup, bad)
	case strings.EqualFold(name, "Content-Type"):
		if err := dup(f.ContentType != ""); err != nil {
			return err
		}
		typ, _, _ := strings.Cut(value, ";")
		maj, sub, ok := strings.Cut(strings.TrimSpace(typ), "/")
		if !ok || maj == "" || sub == "" || !validChars(maj, tokenChar) || !validChars(sub, tokenChar) {
			return bad(errors.New("not a media type"))
		}
		f.ContentType = value
	default:
		f.Headers = append(f.Headers, Header{Name: name, Value: value})
	}
	return nil
}

func setText(dst *string, value string, dup func(bool) error, bad func(error) error) error {
	if err := dup(*dst != ""); err != nil {
		return err
	}
	if value == "" {
		return bad(errors.New("empty"))
	}
	*dst = value
	return nil
}

func setSeconds(dst *int, value string, dup func(bool) error, bad func(error) error) error {
	if err := dup(*dst != 0); err != nil {
		return err
	}
	if value == "" || len(value) > 10 || !validChars(value, digit) {
		return bad(nil)
	}
	n, err := strconv.Atoi(value)
	if err != nil {
		return bad(err)
	}
	*dst = n
	return nil
}

// isHeaderName: hname = ALPHA *token.
func isHeaderName(s string) bool {
	return s != "" && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') && validChars(s, tokenChar)
}

func parseReport(v string, failure bool) Report {
	switch {
	case strings.EqualFold(v, "yes"):
		return ReportYes
	case strings.EqualFold(v, "no"):
		return ReportNo
	case failure && strings.EqualFold(v, "partial"):
		return ReportPartial
	}
	return ReportUnset
}

// ParseByteRange reads "start-end/total", where end and total may be '*'.
func ParseByteRange(s string) (ByteRange, error) {
	first, total, ok := strings.Cut(s, "/")
	start, end, ok2 := strings.Cut(first, "-")
	if !ok || !ok2 {
		return ByteRange{}, errors.New("not start-end/total")
	}
	var r ByteRange
	var err error
	if r.Start, err = parseCount(start, false); err != nil {
		return ByteRange{}, err
	}
	if r.End, err = parseCount(end, true); err != nil {
		return ByteRange{}, err
	}
	if r.Total, err = parseCount(total, true); err != nil {
		return ByteRange{}, err
	}
	if err := r.check(); err != nil {
		return ByteRange{}, err
	}
	return r, nil
}

func (r ByteRange) check() error {
	switch {
	case r.Start < 1:
		return errors.New("start under 1")
	case r.End < Unknown || r.Total < Unknown:
		return errors.New("negative end or total")
	case r.End != Unknown && r.End < r.Start-1:
		return errors.New("end before start")
	case r.Total != Unknown && r.End != Unknown && r.End > r.Total:
		return errors.New("end past total")
	case r.Total != Unknown && r.Start > r.Total+1:
		return errors.New("start past total")
	}
	return nil
}

func parseCount(s string, star bool) (int64, error) {
	if star && s == "*" {
		return Unknown, nil
	}
	if s == "" || len(s) > 18 || !validChars(s, digit) {
		return 0, fmt.Errorf("bad number %q", clip(s))
	}
	return strconv.ParseInt(s, 10, 64)
}

// ParseStatus reads a Status header value: "000 200 OK".
func ParseStatus(s string) (Status, error) {
	if len(s) < 7 || s[3] != ' ' || !validChars(s[:3], digit) || !validChars(s[4:7], digit) {
		return Status{}, errors.New("not namespace SP code")
	}
	var st Status
	st.Namespace, _ = strconv.Atoi(s[:3])
	st.Code, _ = strconv.Atoi(s[4:7])
	if rest := s[7:]; rest != "" {
		reason, ok := strings.CutPrefix(rest, " ")
		if !ok {
			return Status{}, errors.New("no space after the code")
		}
		st.Reason = reason
	}
	if st.Code < 100 {
		return Status{}, errors.New("code under 100")
	}
	return st, nil
}

// checkFrame applies the rules that span headers: paths present, content
// only on requests and only with a Content-Type.
func checkFrame(f *Frame) error {
	switch {
	case f.ToPath == nil:
		return fmt.Errorf("%w To-Path", ErrMissingHeader)
	case f.FromPath == nil:
		return fmt.Errorf("%w From-Path", ErrMissingHeader)
	case !f.IsRequest() && (f.Body != nil || f.ContentType != ""):
		return errors.New("response with content")
	case f.Body != nil && f.ContentType == "":
		return fmt.Errorf("%w Content-Type for a body of %d bytes", ErrMissingHeader, len(f.Body))
	case f.Method == MethodREPORT && f.Status == nil:
		return fmt.Errorf("%w Status in a REPORT", ErrMissingHeader)
	}
	return nil
}
