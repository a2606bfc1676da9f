package bus

// reserveStack grows the calling goroutine's stack, while it is still
// shallow, to what a handler needs. A worker's stack is shrunk by the
// garbage collector while it waits for a message; a handler that
// encrypts and calls out would otherwise grow it again deep in its work,
// where each growth copies and walks the whole stack, frame by frame.
// Grown here, it is copied with a few frames on it.
//
//go:noinline
func reserveStack() byte {
	var b [stackReserve]byte
	return touchStack(b[:])
}

// stackReserve is the stack frame reserveStack takes: the goroutine's
// stack ends up at least twice that.
const stackReserve = 16 << 10

//go:noinline
func touchStack(b []byte) byte { return b[len(b)-1] }
