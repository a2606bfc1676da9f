package reslist

import "github.com/mimigw/mimigw/sip/xmldoc"

// Errors about the XML document itself, shared by every body parser.
var (
	ErrTooLarge  = xmldoc.ErrTooLarge
	ErrDTD       = xmldoc.ErrDTD
	ErrMalformed = xmldoc.ErrMalformed
)
