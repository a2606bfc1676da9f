// Package fthttp reads and writes the RCS file transfer via HTTP descriptor
// (GSMA RCC.07, application/vnd.gsma.rcs-ft-http+xml): where a file and its
// thumbnail can be fetched, until when, their sizes, names and media types,
// and the playing length of audio messages. The gateway maps it to a MIMI
// ExternalPart and its preview.
//
// It owns the XML bytes only. It never fetches or uploads files, and never
// touches SIP, sockets or the bus.
package fthttp
