// Package stack grows a goroutine's stack ahead of deep work.
package stack

// Reserve grows the calling goroutine's stack, while it is still shallow,
// to what a handler that encrypts, decrypts and calls out needs. A new
// goroutine (an HTTP request's) starts with a small stack, and the garbage
// collector shrinks an idle worker's; grown deep in its work instead, the
// stack would be grown two or three times, each growth copying and
// walking every frame. Grown here, it is copied with a few frames on it.
//
//go:noinline
func Reserve() byte {
	var b [reserve]byte
	return touch(b[:])
}

// reserve is the frame Reserve takes: the goroutine's stack ends up at
// least twice that.
const reserve = 16 << 10

//go:noinline
func touch(b []byte) byte { return b[len(b)-1] }
