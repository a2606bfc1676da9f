//go:build race

package sip

// raceEnabled says the race detector is on: it multiplies memory, so the
// session memory tests assert their per-session bounds only without it.
const raceEnabled = true
