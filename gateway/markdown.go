package gateway

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// plainFromMarkdown makes GFM-MIMI markdown readable as plain text for a
// phone that shows characters as they are: emphasis and code markers go,
// links keep their text and address, headings and fences lose their
// markup, and backslash escapes are resolved. What is not markup stays
// exactly as written (snake_case, 2*3*4, a lone asterisk).
func plainFromMarkdown(md string) string {
	var out strings.Builder
	out.Grow(len(md))
	inFence := false
	for i, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			inFence = !inFence
			continue
		}
		if i > 0 && out.Len() > 0 {
			out.WriteByte('\n')
		}
		if inFence {
			out.WriteString(line)
			continue
		}
		out.WriteString(plainInline(blockPrefix(line)))
	}
	return strings.TrimRight(out.String(), "\n")
}

// blockPrefix rewrites the block markup at the start of a line: ATX
// headings lose their hashes, bullets become "- ".
func blockPrefix(line string) string {
	indent := len(line) - len(strings.TrimLeft(line, " "))
	rest := line[indent:]
	if h := len(rest) - len(strings.TrimLeft(rest, "#")); h >= 1 && h <= 6 && (len(rest) == h || rest[h] == ' ') {
		return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(rest[h:]), "#"))
	}
	if len(rest) >= 2 && (rest[0] == '*' || rest[0] == '+') && rest[1] == ' ' {
		return line[:indent] + "- " + rest[2:]
	}
	return line
}

// plainInline removes inline markup from one line.
func plainInline(s string) string {
	var out strings.Builder
	out.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]):
			out.WriteByte(s[i+1])
			i += 2
			continue
		case c == '`':
			n := run(s, i, '`')
			if end := strings.Index(s[i+n:], strings.Repeat("`", n)); end >= 0 {
				out.WriteString(s[i+n : i+n+end])
				i += n + end + n
				continue
			}
			out.WriteString(s[i : i+n])
			i += n
			continue
		case c == '!' && i+1 < len(s) && s[i+1] == '[':
			if text, url, n, ok := link(s[i+1:]); ok {
				writeLink(&out, text, url)
				i += 1 + n
				continue
			}
		case c == '[':
			if text, url, n, ok := link(s[i:]); ok {
				writeLink(&out, text, url)
				i += n
				continue
			}
		case c == '*' || c == '_' || c == '~':
			n := run(s, i, c)
			if (c != '~' || n == 2) && n <= 3 && opens(s, i, n, c) {
				if end := closing(s, i+n, n, c); end >= 0 {
					out.WriteString(plainInline(s[i+n : end]))
					i = end + n
					continue
				}
			}
			out.WriteString(s[i : i+n])
			i += n
			continue
		}
		out.WriteByte(c)
		i++
	}
	return out.String()
}

func writeLink(out *strings.Builder, text, url string) {
	text = plainInline(text)
	switch {
	case url == "" || text == url || "mailto:"+text == url:
		out.WriteString(text)
	case text == "":
		out.WriteString(url)
	default:
		out.WriteString(text + " (" + url + ")")
	}
}

// link parses "[text](url)" at the start of s and returns its length.
func link(s string) (text, url string, n int, ok bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				if i+1 >= len(s) || s[i+1] != '(' {
					return "", "", 0, false
				}
				end := strings.IndexByte(s[i+2:], ')')
				if end < 0 {
					return "", "", 0, false
				}
				target := strings.TrimSpace(s[i+2 : i+2+end])
				if sp := strings.IndexAny(target, " \t"); sp >= 0 { // drop a title
					target = target[:sp]
				}
				return s[1:i], strings.Trim(target, "<>"), i + 3 + end, true
			}
		}
	}
	return "", "", 0, false
}

func run(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

// opens reports whether the delimiter run s[i:i+n] can open emphasis: it is
// followed by a non-space and, for underscores, not preceded by a letter
// or digit (GFM's intraword rule).
func opens(s string, i, n int, c byte) bool {
	next, _ := utf8.DecodeRuneInString(s[i+n:])
	if i+n >= len(s) || unicode.IsSpace(next) {
		return false
	}
	if c == '_' && i > 0 {
		prev, _ := utf8.DecodeLastRuneInString(s[:i])
		if unicode.IsLetter(prev) || unicode.IsDigit(prev) {
			return false
		}
	}
	return true
}

// closing finds a run of exactly n delimiters from i on that can close
// emphasis, or -1.
func closing(s string, i, n int, c byte) int {
	for j := i; j < len(s); j++ {
		if s[j] == '\\' {
			j++
			continue
		}
		if s[j] != c {
			continue
		}
		m := run(s, j, c)
		if m == n && j > i {
			prev, _ := utf8.DecodeLastRuneInString(s[:j])
			next, _ := utf8.DecodeRuneInString(s[j+m:])
			ok := !unicode.IsSpace(prev)
			if c == '_' && j+m < len(s) && (unicode.IsLetter(next) || unicode.IsDigit(next)) {
				ok = false
			}
			if ok {
				return j
			}
		}
		j += m - 1
	}
	return -1
}

func isASCIIPunct(c byte) bool {
	return c < utf8.RuneSelf && unicode.IsPunct(rune(c)) || c == '`' || c == '~' || c == '^' || c == '+' || c == '<' || c == '>' || c == '=' || c == '|' || c == '$'
}
