package metal

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestParamBytes checks that upload's reflection-free encoding of every
// parameter type is what encoding/binary writes in little-endian order:
// the layout of the MSL structs.
func TestParamBytes(t *testing.T) {
	for _, v := range []any{
		uint32(7), []int32{1, -2, 3}, []uint32{4, 5}, []float32{0.5, -1.25},
		qmvParams{1, 2}, qmmParams{1, 2, 3}, gatherParams{1, 2, 3},
		normParams{1, 1e-6, 1}, ropeParams{1, 2, 3, 0.5, 1}, sdpaParams{1, 2, 3, 4, 5, 6, 7, 0.125, 1}, kvStoreParams{1, 2},
		routeParams{1, 2, 3, 4, 5, 6, 7, 2.5}, convParams{1, 2, 3}, gateParams{1, 2}, deltaParams{1, 2, 3, 4, 5},
		slotParts{1, 2, 3, 4}, layerNormParams{1, 1e-5, 1, 0}, sparseMixerParams{1, 2, 0.01}, splitParams{1, 2}, mergeParams{1, 2, 3, 4},
	} {
		var dst [paramMax]byte
		got, err := paramBytes(&dst, v)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := binary.Write(&want, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%T %v: % x, want % x", v, v, got, want.Bytes())
		}
	}
	if _, err := paramBytes(new([paramMax]byte), int64(1)); err == nil {
		t.Error("paramBytes(int64) did not fail")
	}
}
