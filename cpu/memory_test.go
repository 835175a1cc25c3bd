package cpu

import "testing"

// TestMemoryUseTensors: the CPU executor counts its live tensors, takes a
// freed one off, and ignores Free of a view (not a tensor it made).
func TestMemoryUseTensors(t *testing.T) {
	ex := New()
	a, b := ex.NewTensor(3, 5), ex.NewTensor(2, 7)
	if got, want := ex.MemoryUse().Tensors, int64(4*(15+14)); got != want {
		t.Fatalf("two live tensors count %d bytes, want %d", got, want)
	}
	ex.Free(a.View(0, 2, 1, 3))
	ex.Free(b)
	u := ex.MemoryUse()
	if u.Tensors != 4*15 {
		t.Fatalf("after freeing a view and a tensor, %d bytes of tensors, want %d", u.Tensors, 4*15)
	}
	if u.Weights != 0 || u.ExpertSlots != 0 {
		t.Fatalf("the CPU executor holds no weights or slots, it reports %+v", u)
	}
	ex.Free(b) // a second Free of the same tensor changes nothing
	if got := ex.MemoryUse().Total(); got != 4*15 {
		t.Fatalf("after freeing a tensor twice, %d bytes counted, want %d", got, 4*15)
	}
}
