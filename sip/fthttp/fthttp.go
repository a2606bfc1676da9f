package fthttp

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mimigw/mimigw/sip/cpim"
	"github.com/mimigw/mimigw/sip/xmldoc"
)

// Media type and namespaces of the descriptor.
const (
	ContentType = "application/vnd.gsma.rcs-ft-http+xml"
	Namespace   = "urn:gsma:params:xml:ns:rcs:rcs:fthttp"
	// NamespaceAudio is RCS audio messaging's, for am:playing-length.
	NamespaceAudio = "urn:gsma:params:xml:ns:rcs:rcs:rram"
)

// MaxSize bounds the documents Parse accepts.
const MaxSize = 64 << 10

// Errors about the descriptor's content.
var (
	ErrWrongNamespace = errors.New("not an FT-HTTP descriptor")
	ErrMissing        = errors.New("required element missing")
	ErrBadValue       = errors.New("bad value")
)

// Info describes the file or its thumbnail.
type Info struct {
	Size        int64
	Name        string // file-name; usually absent for a thumbnail
	ContentType string
	URL         string // http or https
	Until       time.Time
	// Disposition is the file-disposition attribute ("render" or
	// "attachment"), "" when absent.
	Disposition string
	// PlayingLength is am:playing-length of an audio message as the
	// sender wrote it, 0 when absent.
	PlayingLength int64
}

// Descriptor is one FT-HTTP document: the file, and optionally its
// thumbnail.
type Descriptor struct {
	File      Info
	Thumbnail *Info
}

// IsFileTransfer reports whether a Content-Type names an FT-HTTP
// descriptor.
func IsFileTransfer(contentType string) bool {
	return cpim.MediaType(contentType) == ContentType
}

// Parse reads a descriptor. It requires the FT-HTTP namespace and one
// file-info of type "file" with a content type and an http(s) data URL; a
// thumbnail is optional and checked the same way. Unknown elements and
// file-info types are ignored; a DOCTYPE or entity declaration is refused
// before any parsing.
func Parse(b []byte) (*Descriptor, error) {
	desc, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("fthttp: %w", err)
	}
	return desc, nil
}

func parse(b []byte) (*Descriptor, error) {
	d, _, err := xmldoc.Open(b, MaxSize, Namespace, "file", ErrWrongNamespace)
	if err != nil {
		return nil, err
	}
	desc := &Descriptor{}
	var haveFile bool
	err = xmldoc.Children(d, func(t xml.StartElement) error {
		if t.Name.Space != Namespace || t.Name.Local != "file-info" {
			return xmldoc.Skip(d)
		}
		typ := strings.ToLower(attr(t, "type"))
		var dst *Info
		switch typ {
		case "file", "":
			if haveFile {
				return fmt.Errorf("%w: two file-info of type file", ErrBadValue)
			}
			typ, haveFile, dst = "file", true, &desc.File
		case "thumbnail":
			if desc.Thumbnail != nil {
				return fmt.Errorf("%w: two thumbnails", ErrBadValue)
			}
			desc.Thumbnail = &Info{}
			dst = desc.Thumbnail
		default:
			return xmldoc.Skip(d)
		}
		dst.Disposition = attr(t, "file-disposition")
		if err := info(d, dst); err != nil {
			return fmt.Errorf("%s: %w", typ, err)
		}
		if err := check(dst); err != nil {
			return fmt.Errorf("%s: %w", typ, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := xmldoc.End(d); err != nil {
		return nil, err
	}
	if !haveFile {
		return nil, fmt.Errorf("%w: no file-info of type file", ErrMissing)
	}
	return desc, nil
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// info reads the children of a file-info element.
func info(d *xml.Decoder, dst *Info) error {
	return xmldoc.Children(d, func(t xml.StartElement) (err error) {
		name := t.Name.Local
		if t.Name.Space != Namespace && t.Name.Space != NamespaceAudio {
			name = "" // another vendor's extension
		}
		switch name {
		case "data":
			dst.URL = attr(t, "url")
			if until := attr(t, "until"); until != "" {
				if dst.Until, err = time.Parse(time.RFC3339, until); err != nil {
					return fmt.Errorf("%w: until %q", ErrBadValue, excerpt(until))
				}
			}
			return xmldoc.Skip(d)
		case "file-size":
			dst.Size, err = number(d, name)
		case "playing-length":
			dst.PlayingLength, err = number(d, name)
		case "file-name":
			dst.Name, err = xmldoc.Text(d)
		case "content-type":
			dst.ContentType, err = xmldoc.Text(d)
		default:
			err = xmldoc.Skip(d)
		}
		return err
	})
}

func number(d *xml.Decoder, name string) (int64, error) {
	v, err := xmldoc.Text(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %s %q", ErrBadValue, name, excerpt(v))
	}
	return n, nil
}

func check(in *Info) error {
	if in.ContentType == "" {
		return fmt.Errorf("%w: content-type", ErrMissing)
	}
	if in.URL == "" {
		return fmt.Errorf("%w: data url", ErrMissing)
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%w: data url %q is not an http(s) URL", ErrBadValue, excerpt(in.URL))
	}
	return nil
}

func excerpt(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Bytes writes the descriptor in the form of RCC.07's examples: the
// thumbnail first, then the file.
func (desc *Descriptor) Bytes() []byte {
	out := make([]byte, 0, 512)
	out = append(out, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<file xmlns="`+Namespace+`"`...)
	if desc.File.PlayingLength > 0 || desc.Thumbnail != nil && desc.Thumbnail.PlayingLength > 0 {
		out = append(out, ` xmlns:am="`+NamespaceAudio+`"`...)
	}
	out = append(out, ">\n"...)
	if desc.Thumbnail != nil {
		out = appendInfo(out, "thumbnail", desc.Thumbnail)
	}
	out = appendInfo(out, "file", &desc.File)
	return append(out, "</file>\n"...)
}

func appendInfo(out []byte, typ string, in *Info) []byte {
	out = append(out, ` <file-info type="`+typ+`"`...)
	if in.Disposition != "" {
		out = xmldoc.AppendEscaped(append(out, ` file-disposition="`...), in.Disposition)
		out = append(out, '"')
	}
	out = append(out, ">\n  <file-size>"...)
	out = strconv.AppendInt(out, in.Size, 10)
	out = append(out, "</file-size>\n"...)
	if in.Name != "" {
		out = xmldoc.AppendEscaped(append(out, "  <file-name>"...), in.Name)
		out = append(out, "</file-name>\n"...)
	}
	out = xmldoc.AppendEscaped(append(out, "  <content-type>"...), in.ContentType)
	out = append(out, "</content-type>\n"...)
	if in.PlayingLength > 0 {
		out = strconv.AppendInt(append(out, "  <am:playing-length>"...), in.PlayingLength, 10)
		out = append(out, "</am:playing-length>\n"...)
	}
	out = xmldoc.AppendEscaped(append(out, `  <data url="`...), in.URL)
	out = append(out, '"')
	if !in.Until.IsZero() {
		out = in.Until.AppendFormat(append(out, ` until="`...), time.RFC3339Nano)
		out = append(out, '"')
	}
	return append(out, "/>\n </file-info>\n"...)
}
