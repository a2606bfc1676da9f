package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// goldenParticipants is ParticipantListData with alice (role 1) and bob
// (role 0), written out by hand: 61 bytes.
const goldenParticipants = `
	3c                       // participants<V>: 60 bytes
	15 ` + hexAlice + `      // user<V>
	00000001                 // role_index
	1d ` + hexBob + `        // user<V>
	00000000                 // role_index
`

// goldenAppData is the app_data_dictionary holding only that list.
const goldenAppData = `
	4040                     // component_data<V>: 64 bytes (two-byte varint)
	0022                     // component_id participant_list
	3d                       // data<V>: 61 bytes
` + goldenParticipants

// goldenListUpdate changes bob's role to 3, removes alice and adds her
// back with role 0.
const goldenListUpdate = `
	08 00000001 00000003     // changedRoleParticipants<V>: {user_index 1, role_index 3}
	04 00000000              // removedIndices<V>: 0
	1a 15 ` + hexAlice + ` 00000000 // addedParticipants<V>: alice, role 0
`

var (
	goldenList = ParticipantList{{User: gAlice, RoleIndex: 1}, {User: gBob, RoleIndex: 0}}
	goldenUpd  = &ParticipantListUpdate{
		ChangedRoles: []ParticipantRole{{UserIndex: 1, RoleIndex: 3}},
		Removed:      []uint32{0},
		Added:        []UserRolePair{{User: gAlice}},
	}
)

func TestGoldenParticipantList(t *testing.T) {
	b := hx(t, goldenParticipants)
	got, err := UnmarshalParticipantList(b)
	if err != nil || !reflect.DeepEqual(got, goldenList) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if out, err := goldenList.Marshal(); err != nil || !bytes.Equal(out, b) {
		t.Fatalf("encoded %x, %v\nwant %x", out, err, b)
	}
	app := hx(t, goldenAppData)
	if out, err := AppDataWithParticipants(goldenList); err != nil || !bytes.Equal(out, app) {
		t.Fatalf("app data %x, %v\nwant %x", out, err, app)
	}
	l, ok, err := Participants(app)
	if err != nil || !ok || !reflect.DeepEqual(l, goldenList) {
		t.Fatalf("Participants: %+v %v %v", l, ok, err)
	}
	if _, ok, err := Participants(hx(t, "00")); ok || err != nil {
		t.Errorf("empty dictionary: ok %v err %v", ok, err)
	}
}

func TestGoldenParticipantListUpdate(t *testing.T) {
	b := hx(t, goldenListUpdate)
	got, err := UnmarshalParticipantListUpdate(b)
	if err != nil || !reflect.DeepEqual(got, goldenUpd) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if out, err := goldenUpd.Marshal(); err != nil || !bytes.Equal(out, b) {
		t.Fatalf("encoded %x, %v\nwant %x", out, err, b)
	}
	after, err := goldenUpd.Apply(goldenList)
	if want := (ParticipantList{{User: gBob, RoleIndex: 3}, {User: gAlice}}); err != nil || !reflect.DeepEqual(after, want) {
		t.Fatalf("Apply: %+v, %v; want %+v", after, err, want)
	}
	if goldenList[1].RoleIndex != 0 {
		t.Error("Apply changed the list it was given")
	}
}

func TestParticipantListRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"user twice":      {vec(vec(str(gAlice)), u32b(1), vec(str(gAlice)), u32b(0)), errDuplicate},
		"role cut short":  {vec(vec(str(gAlice)), u8b(0), u8b(1)), ErrMalformed},
		"trailing byte":   {cat(vec(vec(str(gAlice)), u32b(1)), u8b(0)), errTrailing},
		"user not UTF-8":  {vec(vec([]byte{0xff}), u32b(1)), errUTF8},
		"length past end": {cat(u8b(9), vec(str("a")), u32b(0)), ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := UnmarshalParticipantList(tc.in)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			checkRefusal(t, err)
		})
	}
	if _, err := (ParticipantList{{User: gAlice}, {User: gAlice}}).Marshal(); !errors.Is(err, errDuplicate) {
		t.Errorf("encoding a user twice: %v", err)
	}
}

func TestParticipantListUpdateApply(t *testing.T) {
	three := ParticipantList{{User: "mimi://a.test/u/a"}, {User: "mimi://a.test/u/b", RoleIndex: 2}, {User: "mimi://a.test/u/c"}}
	for name, tc := range map[string]struct {
		u    ParticipantListUpdate
		want ParticipantList
		err  string
	}{
		"nothing":         {ParticipantListUpdate{}, three, ""},
		"add":             {ParticipantListUpdate{Added: []UserRolePair{{User: "mimi://b.test/u/d", RoleIndex: 1}}}, append(three[:3:3], UserRolePair{User: "mimi://b.test/u/d", RoleIndex: 1}), ""},
		"remove two":      {ParticipantListUpdate{Removed: []uint32{2, 0}}, ParticipantList{three[1]}, ""},
		"change":          {ParticipantListUpdate{ChangedRoles: []ParticipantRole{{UserIndex: 0, RoleIndex: 5}}}, ParticipantList{{User: three[0].User, RoleIndex: 5}, three[1], three[2]}, ""},
		"remove and back": {ParticipantListUpdate{Removed: []uint32{1}, Added: []UserRolePair{{User: three[1].User}}}, ParticipantList{three[0], three[2], {User: three[1].User}}, ""},
		"index past end":  {ParticipantListUpdate{Removed: []uint32{3}}, nil, "past the 3"},
		"removed twice":   {ParticipantListUpdate{Removed: []uint32{1, 1}}, nil, "removed and removed"},
		"changed removed": {ParticipantListUpdate{ChangedRoles: []ParticipantRole{{UserIndex: 1}}, Removed: []uint32{1}}, nil, "changed and removed"},
		"added present":   {ParticipantListUpdate{Added: []UserRolePair{{User: three[2].User}}}, nil, "listed twice"},
		"added twice":     {ParticipantListUpdate{Added: []UserRolePair{{User: "mimi://x/u/y"}, {User: "mimi://x/u/y"}}}, nil, "listed twice"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := tc.u.Apply(three)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Apply: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Apply: %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParticipantList(f *testing.F) {
	f.Add(hx(f, goldenParticipants))
	f.Add(vec(vec(str(gAlice)), u32b(1), vec(str(gAlice)), u32b(0)))
	f.Add([]byte{0})
	fuzzRoundTrip(f, func(b []byte) (*ParticipantList, error) {
		l, err := UnmarshalParticipantList(b)
		return &l, err
	}, func(l *ParticipantList) ([]byte, error) { return l.Marshal() })
}

func FuzzParticipantListUpdate(f *testing.F) {
	f.Add(hx(f, goldenListUpdate))
	f.Add([]byte{0, 0, 0})
	f.Add(vec(u32b(1)))
	fuzzRoundTrip(f, UnmarshalParticipantListUpdate, func(u *ParticipantListUpdate) ([]byte, error) {
		if _, err := u.Apply(goldenList); err != nil && !strings.Contains(err.Error(), "participant list update") {
			return nil, err
		}
		return u.Marshal()
	})
}
