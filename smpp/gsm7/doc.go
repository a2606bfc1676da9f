// Package gsm7 holds the GSM 7-bit default alphabet of 3GPP TS 23.038
// (formerly GSM 03.38): the 128-character default table, the extension table
// reached through the escape septet 0x1B, and the packing of septets into
// octets.
//
// It owns bytes and text only: conversion between Go strings and septets,
// and between unpacked septets (one per octet, as most SMSCs carry
// data_coding 0x00) and the packed 7-bit form. It never substitutes a
// character it cannot represent: Encode fails with ErrUnencodable naming the
// character, and callers choose another alphabet (package coding does).
// It never touches sockets, SMPP sessions or the message bus.
package gsm7
