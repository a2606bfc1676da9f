package transport

// reserveStack grows the calling goroutine's stack, while it is still
// shallow, to what a handler needs. The HTTP server runs every request on
// a new goroutine, which starts with a small stack; a handler that
// decrypts (signature checks, AEAD) would otherwise grow it two or three
// times deep in its work, and each growth copies and walks the whole
// stack, frame by frame. Grown here, it is copied once with a few frames
// on it.
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
