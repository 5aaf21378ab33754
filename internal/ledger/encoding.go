package ledger

import (
	"bytes"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// State and transactions are canonical CBOR (RFC 8949 core deterministic
// encoding): one value has one encoding, so validators hash identical bytes.
var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   16,
		MaxArrayElements:  1 << 20,
		MaxMapPairs:       1 << 10,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

func marshal(v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("ledger: encoding %T: %v", v, err)) // our own types always encode
	}
	return b
}

// unmarshalCanonical decodes b into v and refuses any encoding but the
// canonical one, so a transaction cannot be re-encoded into a second valid
// form (a different hash for the same signed content).
func unmarshalCanonical(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return err
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, b) {
		return fmt.Errorf("not in canonical encoding")
	}
	return nil
}

func mustUnmarshal(b []byte, v any) {
	if err := decMode.Unmarshal(b, v); err != nil {
		panic(fmt.Sprintf("ledger: stored %T does not decode: %v", v, err))
	}
}
