// Package uri holds the identifiers that name things on both sides of the
// gateway: MIMI URIs (mimi://domain/u/user, /d/device, /r/room, /g/group) and
// phone numbers, which it normalises to E.164 from every form the phone
// networks write them in (tel URIs, sip URIs with user=phone, national
// numbers with a default region, visual separators).
//
// It parses and formats identifiers only; it knows nothing about who is bound
// to which number (that is gateway identity) or how they travel on the bus.
package uri
