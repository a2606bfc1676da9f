package gateway

import "testing"

func TestPlainFromMarkdown(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Hi everyone, we just shipped release 2.0. __Good  work__!", "Hi everyone, we just shipped release 2.0. Good  work!"},
		{"Right on! _Congratulations_ 'all!", "Right on! Congratulations 'all!"},
		{"**bold** and *it* and ***both***", "bold and it and both"},
		{"~~gone~~ stays", "gone stays"},
		{"snake_case_name and 2 * 3 * 4", "snake_case_name and 2 * 3 * 4"},
		{"a * b * c", "a * b * c"},
		{"use `go test` now", "use go test now"},
		{"see [the docs](https://example.com/d) or <b>", "see the docs (https://example.com/d) or <b>"},
		{"[https://x.example](https://x.example)", "https://x.example"},
		{"![cat](https://x.example/c.png \"title\")", "cat (https://x.example/c.png)"},
		{"# Release\n\n* one\n+ two\n- three", "Release\n\n- one\n- two\n- three"},
		{"```\ncode *stays*\n```\nafter", "code *stays*\nafter"},
		{"\\*not emphasis\\*", "*not emphasis*"},
		{"unclosed **bold", "unclosed **bold"},
		{"@**Alice Smith** hello", "@Alice Smith hello"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := plainFromMarkdown(tt.in); got != tt.want {
			t.Errorf("plainFromMarkdown(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzPlainFromMarkdown(f *testing.F) {
	for _, s := range []string{"__Good  work__!", "[a](b) ![c](d)", "```\nx", "\\", "*_~`[", "# h #"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := plainFromMarkdown(s)
		if len(out) > len(s)+8*len(s) {
			t.Fatalf("output grew from %d to %d bytes", len(s), len(out))
		}
	})
}
