package bus

import (
	"errors"
	"testing"

	"github.com/mimigw/mimigw/mimi/uri"
)

func TestSubjects(t *testing.T) {
	n := uri.Number("+15551230002")
	if got := SubjectToPhone(n); got != "mimi.to.tel.15551230002" {
		t.Errorf("SubjectToPhone = %q", got)
	}
	if got := SubjectFromPhone(n); got != "mimi.from.tel.15551230002" {
		t.Errorf("SubjectFromPhone = %q", got)
	}
	for _, s := range []string{SubjectToPhone(n), SubjectFromPhone(n)} {
		got, err := NumberFromSubject(s)
		if err != nil || got != n {
			t.Errorf("NumberFromSubject(%q) = %q, %v; want %q", s, got, err, n)
		}
	}
}

func TestNumberFromSubjectErrors(t *testing.T) {
	for _, s := range []string{
		"", "mimi.to.tel.", "mimi.to.tel.+15551230002", "mimi.to.tel.1555abc",
		"mimi.to.tel.15551230002.x", "mimi.to.sip.15551230002", "mimi.to.tel.>",
		"mimi.from.tel.0", "other.15551230002",
	} {
		if n, err := NumberFromSubject(s); err == nil || !errors.Is(err, ErrBadSubject) {
			t.Errorf("NumberFromSubject(%q) = %q, %v; want ErrBadSubject", s, n, err)
		}
	}
}

func TestValidSubject(t *testing.T) {
	for s, want := range map[string]bool{
		"mimi.to.tel.1": true, "a": true, "mimigw.timer.x:y=z": true,
		"": false, "a..b": false, ".a": false, "a.": false, "a.*": false, "a.>": false,
		"a b": false, "a\tb": false, "a\x00": false,
	} {
		if got := validSubject(s); got != want {
			t.Errorf("validSubject(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidTimerKey(t *testing.T) {
	for k, want := range map[string]bool{
		"a": true, "revoke.3f8c": true, "x-y_z=1:2": true,
		"": false, ".a": false, "a.": false, "a..b": false, "a*": false, "a>": false,
		"a b": false, "ä": false, string(make([]byte, 300)): false,
	} {
		if got := validTimerKey(k); got != want {
			t.Errorf("validTimerKey(%q) = %v, want %v", k, got, want)
		}
	}
}
