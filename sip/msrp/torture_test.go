package msrp

// The torture corpus, testdata/torture/, one stream of frames per file,
// written for this package:
//
//	out-of-order.msrp   three chunks of one message, the last one first
//	wrong-total.msrp    a second chunk whose total disagrees with the first's
//	bad-end-line.msrp   an end-line that goes on after its flag
//	interrupted.msrp    a chunk cut short with '+' (RFC 4975 section 7.1), then the rest
//	over-limit.msrp     a 3000-byte body against a 1024-byte chunk limit, then a small frame
//	tid-in-body.msrp    the transaction ID and its end-line inside the body, never at a line start
//	aborted.msrp        a message abandoned with '#' after its first chunk
//	binding-send.msrp   the bodyless SEND that binds a connection
//
// What happens on a connection (a SEND before the binding SEND, a request
// for a session bound elsewhere) is in conn_test.go.

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// tortureLimits: a small chunk limit for over-limit.msrp.
var tortureLimits = Limits{MaxChunk: 1024}

// feed reads a torture file through a reader and a reassembler, as a
// connection would, and reports what came of it.
type fed struct {
	frames   []*Frame
	messages []*Message
	refused  []error // FrameErrors and ChunkErrors, in order
	final    error   // the error that ended the stream (nil at io.EOF)
}

func feed(t *testing.T, name string) fed {
	t.Helper()
	var out fed
	r := NewReader(bytes.NewReader(readFile(t, "torture/"+name)), tortureLimits)
	ra := NewReassembler(tortureLimits)
	for {
		f, err := r.Next()
		var fe *FrameError
		switch {
		case err == io.EOF:
			return out
		case errors.As(err, &fe):
			out.refused = append(out.refused, err)
			continue
		case err != nil:
			out.final = err
			return out
		}
		out.frames = append(out.frames, f)
		if f.Body == nil && f.ContentType == "" {
			continue // a binding or keepalive SEND: nothing to deliver
		}
		m, err := ra.Add(f)
		if err != nil {
			out.refused = append(out.refused, err)
		}
		if m != nil {
			out.messages = append(out.messages, m)
		}
	}
}

func TestTorture(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file  string
		check func(t *testing.T, got fed)
	}{
		{"out-of-order.msrp", func(t *testing.T, got fed) {
			if len(got.messages) != 1 || string(got.messages[0].Body) != "Hello, out of order world" || got.refused != nil {
				t.Errorf("%+v", got)
			}
		}},
		{"wrong-total.msrp", func(t *testing.T, got fed) {
			if len(got.refused) != 1 || !errors.Is(got.refused[0], ErrTotalMismatch) || CodeFor(got.refused[0]) != 400 {
				t.Errorf("refused %v", got.refused)
			}
		}},
		{"bad-end-line.msrp", func(t *testing.T, got fed) {
			if !errors.Is(got.final, ErrBadEndLine) || len(got.frames) != 0 {
				t.Errorf("final %v, %d frames", got.final, len(got.frames))
			}
		}},
		{"interrupted.msrp", func(t *testing.T, got fed) {
			if len(got.frames) != 2 || !got.frames[0].Interrupted() || got.frames[0].Flag != FlagMore {
				t.Fatalf("frames %+v", got.frames)
			}
			if s, e := got.frames[0].Range(); s != 1 || e != 8 {
				t.Errorf("interrupted chunk carries %d-%d", s, e)
			}
			if len(got.messages) != 1 || string(got.messages[0].Body) != "interrupted, resumed" {
				t.Errorf("messages %+v", got.messages)
			}
		}},
		{"over-limit.msrp", func(t *testing.T, got fed) {
			var fe *FrameError
			if len(got.refused) != 1 || !errors.As(got.refused[0], &fe) || fe.Code != 413 || !errors.Is(fe, ErrChunkTooLarge) {
				t.Fatalf("refused %v", got.refused)
			}
			if fe.Frame.MessageID != "big1" || fe.Frame.TID != "t1aaa" {
				t.Errorf("refused frame %+v", fe.Frame)
			}
			if len(got.messages) != 1 || string(got.messages[0].Body) != "small" || got.final != nil {
				t.Errorf("the frame after: %+v", got)
			}
		}},
		{"tid-in-body.msrp", func(t *testing.T, got fed) {
			if len(got.messages) != 1 || string(got.messages[0].Body) != "t1aaa said x-------t1aaa$ and -------t1aaa+" {
				t.Fatalf("%+v", got)
			}
			// Writing it back, the writer picks another transaction ID.
			f := got.frames[0]
			if _, err := f.Marshal(); err != nil || f.TID == "t1aaa" {
				t.Errorf("TID %q after Marshal: %v", f.TID, err)
			}
		}},
		{"aborted.msrp", func(t *testing.T, got fed) {
			if len(got.refused) != 1 || !errors.Is(got.refused[0], ErrAborted) || CodeFor(got.refused[0]) != 200 || got.messages != nil {
				t.Errorf("%+v", got)
			}
		}},
		{"binding-send.msrp", func(t *testing.T, got fed) {
			if len(got.frames) != 1 || got.frames[0].Body != nil || got.messages != nil || got.refused != nil {
				t.Errorf("%+v", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			tt.check(t, feed(t, tt.file))
		})
	}
}
