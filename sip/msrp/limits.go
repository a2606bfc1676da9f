package msrp

import (
	"errors"
	"fmt"
	"time"
)

// DefaultChunkSize is the body size Chunks cuts outgoing messages into:
// just under 10 KiB, the size RCS clients use and the most a relay such as
// Kamailio's msrp module takes in one frame.
const DefaultChunkSize = 10000

// Limits bound what a peer can make this package read, buffer and hold.
// Nothing a peer says (Byte-Range totals, chunk counts) is trusted beyond
// them. The zero value is filled by Defaults.
type Limits struct {
	// MaxHeaderBytes bounds the start line and header lines of one frame,
	// line ends included; it is also the longest line read.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxHeaders bounds the header lines of one frame.
	MaxHeaders int `yaml:"max_headers"`
	// MaxChunk is the largest body of one frame. A larger body is read
	// past and reported (the frame is answered 413).
	MaxChunk int `yaml:"max_chunk"`
	// MaxMessage is the largest reassembled message, and the most the
	// reader skips when it reads past a body over MaxChunk.
	MaxMessage int64 `yaml:"max_message"`
	// MaxInFlight is how many messages one session may have partly
	// received at once.
	MaxInFlight int `yaml:"max_in_flight"`
	// IncompleteTimeout is how long a partly received message waits for
	// its next chunk before it is dropped.
	IncompleteTimeout time.Duration `yaml:"incomplete_timeout"`
}

// Defaults fills what was left zero.
func (l *Limits) Defaults() {
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = 16 << 10
	}
	if l.MaxHeaders == 0 {
		l.MaxHeaders = 64
	}
	if l.MaxChunk == 0 {
		l.MaxChunk = 1 << 20
	}
	if l.MaxMessage == 0 {
		l.MaxMessage = 16 << 20
	}
	if l.MaxInFlight == 0 {
		l.MaxInFlight = 16
	}
	if l.IncompleteTimeout == 0 {
		l.IncompleteTimeout = time.Minute
	}
}

// Validate checks filled limits, naming the field at fault.
func (l Limits) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("msrp: limits.%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if l.MaxHeaderBytes < 256 {
		bad("max_header_bytes", "%d is under 256: a start line and two paths do not fit", l.MaxHeaderBytes)
	}
	if l.MaxHeaders < 2 {
		bad("max_headers", "%d is under 2: To-Path and From-Path do not fit", l.MaxHeaders)
	}
	if l.MaxChunk < 1 {
		bad("max_chunk", "%d must be positive", l.MaxChunk)
	}
	if l.MaxMessage < int64(l.MaxChunk) {
		bad("max_message", "%d is under max_chunk %d", l.MaxMessage, l.MaxChunk)
	}
	if l.MaxInFlight < 1 {
		bad("max_in_flight", "%d must be positive", l.MaxInFlight)
	}
	if l.IncompleteTimeout <= 0 {
		bad("incomplete_timeout", "%v must be positive", l.IncompleteTimeout)
	}
	return errors.Join(errs...)
}

func (l Limits) filled() Limits {
	l.Defaults()
	return l
}
