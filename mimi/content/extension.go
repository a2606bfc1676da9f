package content

import (
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Extension values are arbitrary CBOR, so Go values go through
// fxamacker/cbor: its core deterministic mode (sorted keys, shortest
// floats, NaN as 0xf97e00, no indefinite lengths) writes what the format
// requires, and checkValue then applies MIMI's own limits (depth, key
// types) that the library does not know.

var extensionModes = sync.OnceValues(func() (cbor.EncMode, error) {
	return cbor.CoreDetEncOptions().EncMode()
})

var extensionDecMode = sync.OnceValues(func() (cbor.DecMode, error) {
	return cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
		MaxNestedLevels:  MaxExtensionDepth,
		MapKeyByteString: cbor.MapKeyByteStringAllowed,
	}.DecMode()
})

// NewExtension encodes v as the value of extension key.
func NewExtension(key ExtensionKey, v any) (Extension, error) {
	em, err := extensionModes()
	if err != nil {
		return Extension{}, err
	}
	raw, err := em.Marshal(v)
	if err != nil {
		return Extension{}, fmt.Errorf("content: extension %s: %w", key, err)
	}
	x := Extension{Key: key, Value: raw}
	if err := x.check(); err != nil {
		return Extension{}, fmt.Errorf("content: extension %s: %w", key, err)
	}
	return x, nil
}

// Unmarshal decodes the extension's value into v.
func (x Extension) Unmarshal(v any) error {
	dm, err := extensionDecMode()
	if err != nil {
		return err
	}
	if err := dm.Unmarshal(x.Value, v); err != nil {
		return fmt.Errorf("content: extension %s: %w", x.Key, err)
	}
	return nil
}
