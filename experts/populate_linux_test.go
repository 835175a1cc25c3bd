package experts

import "testing"

// TestSlotPoolPopulated: on Linux a slot pool is resident once allocated,
// so RSS does not creep up as slots are first written.
func TestSlotPoolPopulated(t *testing.T) {
	const n = 64 << 20
	before, _, err := ProcessMemory()
	if err != nil {
		t.Fatal(err)
	}
	a := DefaultAllocator()
	b, err := a.Alloc(0, SlotPool, n)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Free(b)
	after, _, err := ProcessMemory()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < n*9/10 {
		t.Errorf("RSS grew %d bytes for a %d-byte slot pool", after-before, n)
	}
}
