// Package gateway is the core of mimigw, between the phone-network edges
// (sip, smpp) and the MIMI side (mimi/...). It owns identity (phone users'
// MIMI URIs, lent and virtual numbers, trusted providers), routing and
// fallback between RCS and SMS, delivery state, and the conversion of
// messages to and from MIMI content.
//
// It defines what an edge must do (edge.go) and never imports an edge; it
// imports mimi packages and nothing imports it but the edges and cmd.
package gateway
