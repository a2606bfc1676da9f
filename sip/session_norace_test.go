//go:build !race

package sip

// raceEnabled says the race detector is on (see session_race_test.go).
const raceEnabled = false
