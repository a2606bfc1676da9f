package msrp

import (
	"context"
	"errors"
	"strconv"
)

// StatusText is the comment this package writes after a status code.
func StatusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 408:
		return "Request Timeout"
	case 413:
		return "Too Large"
	case 415:
		return "Unsupported Media Type"
	case 423:
		return "Interval Out of Bounds"
	case 481:
		return "Session Does Not Exist"
	case 501:
		return "Not Implemented"
	case 506:
		return "Session Bound To Another Connection"
	}
	return ""
}

// StatusError is an error that says how the request it concerns is
// answered. A Handler returns one to pick the code (415 for a type it does
// not take, 413 for a message too large for it).
type StatusError struct {
	Code    int
	Comment string // StatusText(Code) when empty
	Err     error
}

func (e *StatusError) Error() string {
	s := "msrp: " + strconv.Itoa(e.Code)
	if c := e.comment(); c != "" {
		s += " " + c
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *StatusError) Unwrap() error { return e.Err }

func (e *StatusError) comment() string {
	if e.Comment != "" {
		return e.Comment
	}
	return StatusText(e.Code)
}

// CodeFor is the status code a request is answered with after err: 200
// for nil; the code of a *StatusError, *ChunkError or *FrameError; 408
// when a deadline passed (the handler did not finish in time); 403
// ("action not allowed", RFC 4975 section 10.3) for any other failure,
// such as a handler that could not make the message durable.
func CodeFor(err error) int {
	if err == nil {
		return 200
	}
	var se *StatusError
	var ce *ChunkError
	var fe *FrameError
	switch {
	case errors.As(err, &se):
		return se.Code
	case errors.As(err, &ce):
		return ce.Code
	case errors.As(err, &fe):
		return fe.Code
	case errors.Is(err, context.DeadlineExceeded):
		return 408
	}
	return 403
}

// Respond reports whether the receiver of req sends a transaction
// response with this code, as RFC 4975 section 7.1.2 has Failure-Report
// decide: REPORT requests are never answered; "no" means no response at
// all; "partial" means responses to failures only; "yes", or no header,
// means a response to every request.
func Respond(req *Frame, code int) bool {
	if req.Method == MethodREPORT {
		return false
	}
	switch req.FailureReport {
	case ReportNo:
		return false
	case ReportPartial:
		return code != 200
	}
	return true
}

// WantsSuccessReport reports whether the sender of a message asked for a
// success REPORT once the whole message arrived (Success-Report: yes on
// its last chunk; the default is no).
func WantsSuccessReport(last *Frame) bool {
	return last.Method == MethodSEND && last.SuccessReport == ReportYes
}

// Response builds the response to req. Responses travel one hop (RFC
// 4975 section 7.2): the To-Path is the first URI of the request's
// From-Path, the previous hop, and the From-Path the To-Path URI that
// named the receiver. comment defaults to StatusText(code).
func Response(req *Frame, code int, comment string) *Frame {
	if comment == "" {
		comment = StatusText(code)
	}
	res := &Frame{TID: req.TID, Code: code, Comment: comment, Flag: FlagEnd}
	if len(req.FromPath) > 0 {
		res.ToPath = req.FromPath[:1:1]
	}
	if len(req.ToPath) > 0 {
		res.FromPath = req.ToPath[:1:1]
	}
	return res
}

// SuccessReport builds the REPORT that tells the sender of m that all of
// it arrived (RFC 4975 section 7.1.3): To-Path the From-Path of its last
// chunk (the whole way back, relays included), From-Path the receiver's
// URI, the Message-ID, a Byte-Range of the whole message and Status 000
// 200 OK.
func SuccessReport(m *Message, local URI) *Frame {
	n := int64(len(m.Body))
	return &Frame{
		Method:    MethodREPORT,
		ToPath:    m.Last.FromPath,
		FromPath:  []URI{local},
		MessageID: m.ID,
		ByteRange: ByteRange{Start: 1, End: n, Total: n},
		Status:    &Status{Code: 200, Reason: "OK"},
		Flag:      FlagEnd,
	}
}
