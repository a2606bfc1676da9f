package content

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// vectorDir holds the drafts' example bytes (testdata/README.md says
// where each set comes from).
const vectorDir = "testdata"

type vector struct {
	name string // file name without .cbor
	cbor []byte
	edn  string
}

func loadVectors(t testing.TB, sub string) []vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorDir, sub, "*.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no vectors under %s", filepath.Join(vectorDir, sub))
	}
	var vs []vector
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		edn, err := os.ReadFile(strings.TrimSuffix(f, ".cbor") + ".edn")
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, vector{name: strings.TrimSuffix(filepath.Base(f), ".cbor"), cbor: b, edn: string(edn)})
	}
	return vs
}

func loadVector(t testing.TB, sub, name string) vector {
	t.Helper()
	for _, v := range loadVectors(t, sub) {
		if v.name == name {
			return v
		}
	}
	t.Fatalf("vector %s/%s missing", sub, name)
	return vector{}
}

// ednHex returns the bytes of the first h'...' literal after marker in an
// EDN text; the literal may run over several lines, each continued after
// a '#' comment marker.
func ednHex(t testing.TB, edn, marker string) []byte {
	t.Helper()
	i := strings.Index(edn, marker)
	if i < 0 {
		t.Fatalf("EDN has no %q", marker)
	}
	rest := edn[i+len(marker):]
	j := strings.Index(rest, "h'")
	if j < 0 {
		t.Fatalf("EDN has no h'...' after %q", marker)
	}
	rest = rest[j+2:]
	k := strings.IndexByte(rest, '\'')
	if k < 0 {
		t.Fatalf("unterminated h'...' after %q", marker)
	}
	digits := strings.Map(func(r rune) rune {
		if r == '#' || r == ' ' || r == '\n' || r == '\t' || r == '\r' {
			return -1
		}
		return r
	}, rest[:k])
	b, err := hex.DecodeString(digits)
	if err != nil {
		t.Fatalf("hex after %q: %v", marker, err)
	}
	return b
}

func ednID(t testing.TB, edn, marker string) MessageID {
	t.Helper()
	b := ednHex(t, edn, marker)
	if len(b) != 32 {
		t.Fatalf("ID after %q has %d bytes", marker, len(b))
	}
	return MessageID(b)
}

func TestVectorsContent(t *testing.T) {
	ids := map[string]MessageID{}
	for _, v := range loadVectors(t, "mimi-content") {
		if v.name == "implied-original" {
			continue // not a message: TestVectorImpliedOriginal
		}
		t.Run(v.name, func(t *testing.T) {
			m, err := Decode(v.cbor)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got, err := m.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(got, v.cbor) {
				t.Fatalf("re-encoded bytes differ\n got %x\nwant %x", got, v.cbor)
			}
			want := ednID(t, v.edn, "# message ID = ")
			id, err := m.ID()
			if err != nil {
				t.Fatalf("ID: %v", err)
			}
			if id != want {
				t.Fatalf("ID %s, EDN says %s", id, want)
			}
			if c := ComputeID(m.Extensions.SenderURI, m.Extensions.RoomURI, v.cbor, m.Salt); c != want {
				t.Fatalf("ComputeID %s, EDN says %s", c, want)
			}
			ids[v.name] = id
		})
	}

	// The spec's worked example, and the references between the examples
	// (each taken from the EDN of the referring message).
	if got := ids["original"].String(); got != "017ce54837404c3696e0c747b985cb172716d0ed0a3d249ca63ace7d82a096f4" {
		t.Errorf("original ID %s", got)
	}
	refs := []struct{ from, field, to string }{
		{"reply", "inReplyTo", "original"},
		{"reaction", "inReplyTo", "original"},
		{"edit", "replaces", "reply"},
		{"delete", "replaces", "reply"},
		{"unlike", "replaces", "reaction"},
	}
	for _, r := range refs {
		v := loadVector(t, "mimi-content", r.from)
		m, err := Decode(v.cbor)
		if err != nil {
			t.Fatal(err)
		}
		ref := m.Replaces
		if r.field == "inReplyTo" {
			ref = m.InReplyTo
		}
		if ref == nil || *ref != ids[r.to] {
			t.Errorf("%s.%s = %v, want ID of %s %s", r.from, r.field, ref, r.to, ids[r.to])
		}
	}
}

func TestVectorImpliedOriginal(t *testing.T) {
	v := loadVector(t, "mimi-content", "implied-original")

	// It is the hub-supplied data beside a message, not a message: the
	// first item is a 32-byte ID where a message has its 16-byte salt.
	_, err := Decode(v.cbor)
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, ErrSchema) || de.Field != "salt" {
		t.Fatalf("Decode(implied-original) = %v, want a schema error at the salt", err)
	}
	if !strings.Contains(err.Error(), "32 bytes, want 16") {
		t.Errorf("error does not say what is wrong: %v", err)
	}

	dv, err := DecodeDerivedValues(v.cbor)
	if err != nil {
		t.Fatalf("DecodeDerivedValues: %v", err)
	}
	orig := loadVector(t, "mimi-content", "original")
	om, err := Decode(orig.cbor)
	if err != nil {
		t.Fatal(err)
	}
	origID, err := om.ID()
	if err != nil {
		t.Fatal(err)
	}
	if want := ednID(t, v.edn, "messageId"); want != origID {
		t.Errorf("EDN messageId %s, original's ID is %s", want, origID)
	}
	if dv.MessageID != origID {
		t.Errorf("messageId %s, original's ID is %s", dv.MessageID, origID)
	}
	if dv.SenderUserURL != om.Extensions.SenderURI || dv.RoomURL != om.Extensions.RoomURI {
		t.Errorf("sender %q room %q, original has %q %q", dv.SenderUserURL, dv.RoomURL, om.Extensions.SenderURI, om.Extensions.RoomURI)
	}
	if ts := ednNumberAfter(t, v.edn, "hubAcceptedTimestamp"); dv.HubAccepted != ts {
		t.Errorf("hubAcceptedTimestamp %d, EDN says %d", dv.HubAccepted, ts)
	}
	if !bytes.Equal(dv.MLSGroupID, ednHex(t, v.edn, "mlsGroupId")) {
		t.Errorf("mlsGroupId %x", dv.MLSGroupID)
	}
	if leaf := ednNumberAfter(t, v.edn, "senderLeafIndex"); uint64(dv.SenderLeafIndex) != leaf {
		t.Errorf("senderLeafIndex %d, EDN says %d", dv.SenderLeafIndex, leaf)
	}
	if !strings.Contains(v.edn, `"`+dv.SenderClientURL+`"`) || dv.SenderClientURL == "" {
		t.Errorf("senderClientUrl %q not in EDN", dv.SenderClientURL)
	}
	got, err := dv.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, v.cbor) {
		t.Errorf("re-encoded bytes differ\n got %x\nwant %x", got, v.cbor)
	}
}

// ednNumberAfter returns the first integer on the lines after the comment
// naming marker ("/ hubAcceptedTimestamp = ... /" then "1644387225019,").
func ednNumberAfter(t testing.TB, edn, marker string) uint64 {
	t.Helper()
	i := strings.Index(edn, marker)
	if i < 0 {
		t.Fatalf("EDN has no %q", marker)
	}
	rest := edn[i:]
	rest = rest[strings.IndexByte(rest, '\n')+1:]
	m := regexp.MustCompile(`^\s*(\d+)`).FindStringSubmatch(rest)
	if m == nil {
		t.Fatalf("no number after %q", marker)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestVectorStatus(t *testing.T) {
	v := loadVector(t, "mimi-status", "status")
	entries, err := DecodeStatusReport(v.cbor)
	if err != nil {
		t.Fatalf("DecodeStatusReport: %v", err)
	}

	// The entries as the EDN writes them: h'...' (over two lines), status.
	re := regexp.MustCompile(`h'([0-9a-fA-F\s]+)',\s*(\d+)`)
	var want []StatusEntry
	for _, m := range re.FindAllStringSubmatch(v.edn, -1) {
		b, err := hex.DecodeString(strings.Join(strings.Fields(m[1]), ""))
		if err != nil || len(b) != 32 {
			t.Fatalf("EDN ID %q: %v", m[1], err)
		}
		s, _ := strconv.Atoi(m[2])
		want = append(want, StatusEntry{ID: MessageID(b), Status: Status(s)})
	}
	if len(want) != 4 {
		t.Fatalf("parsed %d entries from the EDN, expected the draft's 4", len(want))
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, EDN has %d", len(entries), len(want))
	}
	for i := range want {
		if entries[i] != want[i] {
			t.Errorf("entry %d = %s %s, want %s %s", i, entries[i].ID, entries[i].Status, want[i].ID, want[i].Status)
		}
	}

	// The report names the example messages by their computed IDs.
	for i, name := range []string{"original", "reply", "mention", "expiring"} {
		m, err := Decode(loadVector(t, "mimi-content", name).cbor)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := m.ID()
		if entries[i].ID != id {
			t.Errorf("entry %d is %s, %s has ID %s", i, entries[i].ID, name, id)
		}
	}

	got, err := EncodeStatusReport(entries)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, v.cbor) {
		t.Errorf("re-encoded bytes differ\n got %x\nwant %x", got, v.cbor)
	}

	// Carried in a message, as the bus carries it.
	var salt [16]byte
	msg := NewStatusReport("mimi://example.com/u/bob-jones", "mimi://example.com/r/engineering_team", entries, salt)
	wire, err := msg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	es, ok, err := back.StatusReport()
	if !ok || err != nil || len(es) != len(entries) || es[3] != entries[3] {
		t.Fatalf("StatusReport() = %v, %v, %v", es, ok, err)
	}
	if !bytes.Equal(back.Body.Content, v.cbor) {
		t.Errorf("report body %x, want the vector's bytes", back.Body.Content)
	}
}
