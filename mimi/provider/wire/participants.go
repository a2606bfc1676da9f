package wire

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// The room's participant list (draft-ietf-mimi-protocol-06 section 7):
// a component of the app_data_dictionary GroupContext extension
// (draft-ietf-mls-extensions-09), naming each participant of the room, a
// user rather than a client, with the index of its role in the room
// policy's roles list.
//
// ComponentParticipantList is participant_list's component ID.
const ComponentParticipantList uint16 = 0x0022

// UserRolePair is one participant: its MIMI user URI and its role.
type UserRolePair struct {
	User      string `json:"user"`
	RoleIndex uint32 `json:"role_index"`
}

// ParticipantList is ParticipantListData: every participant once.
type ParticipantList []UserRolePair

// ParticipantListUpdate is the change a commit makes to the list, applied
// in this order: roles changed (by index into the list before the
// update), participants removed (indices into the list before the
// update), participants added at the end.
type ParticipantListUpdate struct {
	ChangedRoles []ParticipantRole
	Removed      []uint32
	Added        []UserRolePair
}

// ParticipantRole is one role change: the participant at UserIndex takes
// RoleIndex.
type ParticipantRole struct {
	UserIndex uint32
	RoleIndex uint32
}

func (w *writer) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }

func (p *UserRolePair) decode(r *reader) {
	p.User = r.str("user")
	p.RoleIndex = r.u32("role_index")
}

func (p UserRolePair) encode(w *writer) {
	w.str("user", p.User)
	w.u32(p.RoleIndex)
}

func decodePairs(r *reader, field string) []UserRolePair {
	var out []UserRolePair
	r.list(field, func(int) {
		var p UserRolePair
		p.decode(r)
		out = append(out, p)
	})
	return out
}

func encodePairs(w *writer, field string, ps []UserRolePair) {
	w.list(field, len(ps), func(i int) { ps[i].encode(w) })
}

func (l *ParticipantList) decode(r *reader) {
	start := r.off
	*l = decodePairs(r, "participants")
	if r.err == nil {
		if i, j := l.duplicate(); j >= 0 {
			r.failAt(start, "participants", errDuplicate, fmt.Sprintf("%q at %d and %d", (*l)[i].User, i, j))
		}
	}
}

func (l ParticipantList) encode(w *writer) {
	if i, j := l.duplicate(); j >= 0 {
		w.fail("participants", errDuplicate, fmt.Sprintf("%q at %d and %d", l[i].User, i, j))
		return
	}
	encodePairs(w, "participants", l)
}

// duplicate finds a user listed twice: the indices of both, or -1, -1.
func (l ParticipantList) duplicate() (int, int) {
	seen := make(map[string]int, len(l))
	for j, p := range l {
		if i, ok := seen[p.User]; ok {
			return i, j
		}
		seen[p.User] = j
	}
	return -1, -1
}

func (u *ParticipantListUpdate) decode(r *reader) {
	r.list("changedRoleParticipants", func(int) {
		u.ChangedRoles = append(u.ChangedRoles, ParticipantRole{UserIndex: r.u32("user_index"), RoleIndex: r.u32("role_index")})
	})
	r.list("removedIndices", func(int) { u.Removed = append(u.Removed, r.u32("index")) })
	u.Added = decodePairs(r, "addedParticipants")
}

func (u *ParticipantListUpdate) encode(w *writer) {
	w.list("changedRoleParticipants", len(u.ChangedRoles), func(i int) {
		w.u32(u.ChangedRoles[i].UserIndex)
		w.u32(u.ChangedRoles[i].RoleIndex)
	})
	w.list("removedIndices", len(u.Removed), func(i int) { w.u32(u.Removed[i]) })
	encodePairs(w, "addedParticipants", u.Added)
}

// Marshal encodes l as ParticipantListData.
func (l ParticipantList) Marshal() ([]byte, error) {
	return marshal("participantListData", l.encode)
}

// UnmarshalParticipantList decodes one whole ParticipantListData. A user
// listed twice is malformed.
func UnmarshalParticipantList(b []byte) (ParticipantList, error) {
	l, err := unmarshal(b, "participantListData", func(r *reader, l *ParticipantList) { l.decode(r) })
	if err != nil {
		return nil, err
	}
	return *l, nil
}

// Marshal encodes u.
func (u *ParticipantListUpdate) Marshal() ([]byte, error) {
	return marshal("participantListUpdate", u.encode)
}

// UnmarshalParticipantListUpdate decodes one whole ParticipantListUpdate.
func UnmarshalParticipantListUpdate(b []byte) (*ParticipantListUpdate, error) {
	return unmarshal(b, "participantListUpdate", func(r *reader, u *ParticipantListUpdate) { u.decode(r) })
}

// Apply returns the list u makes of l, refusing what the draft forbids: an
// index past the list, a participant changed or removed twice, or changed
// and removed in the same update ("one change per user per commit"), and
// an added user already in the list (and not removed by this update) or
// added twice.
func (u *ParticipantListUpdate) Apply(l ParticipantList) (ParticipantList, error) {
	touched := make(map[uint32]string, len(u.ChangedRoles)+len(u.Removed))
	touch := func(i uint32, what string) error {
		if int64(i) >= int64(len(l)) {
			return fmt.Errorf("wire: participant list update: %s index %d past the %d participants", what, i, len(l))
		}
		if prev, ok := touched[i]; ok {
			return fmt.Errorf("wire: participant list update: participant %d (%s) %s and %s in one update", i, l[i].User, prev, what)
		}
		touched[i] = what
		return nil
	}
	out := make(ParticipantList, len(l))
	copy(out, l)
	for _, c := range u.ChangedRoles {
		if err := touch(c.UserIndex, "changed"); err != nil {
			return nil, err
		}
		out[c.UserIndex].RoleIndex = c.RoleIndex
	}
	removed := make(map[uint32]bool, len(u.Removed))
	for _, i := range u.Removed {
		if err := touch(i, "removed"); err != nil {
			return nil, err
		}
		removed[i] = true
	}
	kept := out[:0]
	for i, p := range out {
		if !removed[uint32(i)] {
			kept = append(kept, p)
		}
	}
	out = append(kept, u.Added...)
	if i, j := out.duplicate(); j >= 0 {
		return nil, fmt.Errorf("wire: participant list update: %q would be listed twice (%s and %s)", out[i].User, strconv.Itoa(i), strconv.Itoa(j))
	}
	return out, nil
}

// Participants reads the participant list from an app_data_dictionary
// extension's data; ok is false when the dictionary has no
// participant_list component.
func Participants(appData []byte) (l ParticipantList, ok bool, err error) {
	d, err := UnmarshalAppDataDictionary(appData)
	if err != nil {
		return nil, false, err
	}
	for _, c := range d {
		if c.ID == ComponentParticipantList {
			l, err := UnmarshalParticipantList(c.Data)
			return l, err == nil, err
		}
	}
	return nil, false, nil
}

// AppDataWithParticipants is app_data_dictionary extension data holding
// only l as participant_list.
func AppDataWithParticipants(l ParticipantList) ([]byte, error) {
	data, err := l.Marshal()
	if err != nil {
		return nil, err
	}
	return AppDataDictionary{{ID: ComponentParticipantList, Data: data}}.Marshal()
}
