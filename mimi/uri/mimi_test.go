package uri

import (
	"errors"
	"testing"
)

func TestParseMIMI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want MIMI
	}{
		{"mimi://a.example", MIMI{Kind: Provider, Domain: "a.example"}},
		{"mimi://a.example/u/alice", MIMI{Kind: User, Domain: "a.example", ID: "alice"}},
		{"mimi://a.example/d/ClientA1", MIMI{Kind: Device, Domain: "a.example", ID: "ClientA1"}},
		{"mimi://a.example/r/clubhouse", MIMI{Kind: Room, Domain: "a.example", ID: "clubhouse"}},
		{"mimi://a.example/g/clubhouse", MIMI{Kind: Group, Domain: "a.example", ID: "clubhouse"}},
		{"mimi://example.com/d/3b52249d-68f9-45ce-8bf5-c799f3cad7ec/0003", MIMI{Kind: Device, Domain: "example.com", ID: "3b52249d-68f9-45ce-8bf5-c799f3cad7ec/0003"}},
		{"MIMI://GW.Example.NET/u/+15551230002", MIMI{Kind: User, Domain: "gw.example.net", ID: "+15551230002"}},
		{"mimi://localhost:8443/r/dm-1", MIMI{Kind: Room, Domain: "localhost:8443", ID: "dm-1"}},
	}
	for _, tt := range tests {
		got, err := ParseMIMI(tt.in)
		if err != nil {
			t.Errorf("ParseMIMI(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseMIMI(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		again, err := ParseMIMI(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", tt.in, again, err)
		}
	}
}

func TestParseMIMIRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "mimi:/a.example", "https://a.example/u/alice", "mimi://", "mimi:///u/x",
		"mimi://a.example/", "mimi://a.example/u/", "mimi://a.example/x/alice",
		"mimi://a.example/u", "mimi://a..example/u/a", "mimi://-a.example/u/a",
		"mimi://a.example/u/al ice", "mimi://a.example/u/a?b", "mimi://a.example/u/\xff",
	} {
		if u, err := ParseMIMI(s); err == nil {
			t.Errorf("ParseMIMI(%q) = %+v, want an error", s, u)
		} else if !errors.Is(err, ErrBadURI) {
			t.Errorf("ParseMIMI(%q): %v is not ErrBadURI", s, err)
		}
	}
}

func TestUserURINumber(t *testing.T) {
	t.Parallel()
	s := UserURI("gw.example.net", "+15551230002")
	if s != "mimi://gw.example.net/u/+15551230002" {
		t.Fatalf("UserURI = %q", s)
	}
	u, err := ParseMIMI(s)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := u.Number(); !ok || n != "+15551230002" {
		t.Errorf("Number() = %q, %v", n, ok)
	}
	for _, s := range []string{"mimi://a.example/u/alice", "mimi://a.example/r/+15551230002", "mimi://a.example/u/+1 555 123 0002"} {
		u, err := ParseMIMI(s)
		if err != nil {
			continue
		}
		if n, ok := u.Number(); ok {
			t.Errorf("%q.Number() = %q, want none", s, n)
		}
	}
}

func FuzzParseMIMI(f *testing.F) {
	for _, s := range []string{"mimi://a.example/u/alice", "mimi://example.com/d/x/0003", "mimi://a.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseMIMI(s)
		if err != nil {
			return
		}
		again, err := ParseMIMI(u.String())
		if err != nil || again != u {
			t.Fatalf("%q -> %+v -> %+v, %v", s, u, again, err)
		}
	})
}
