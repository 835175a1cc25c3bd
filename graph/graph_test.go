package graph

import (
	"slices"
	"testing"
)

func TestViews(t *testing.T) {
	data := make([]float32, 4*6)
	for i := range data {
		data[i] = float32(i)
	}
	x := &Tensor{Rows: 4, Cols: 6, Data: data}
	v := x.View(1, 2, 2, 3)
	if v.Rows != 2 || v.Cols != 3 || v.RowStride() != 6 || v.Contiguous(2) || !v.Contiguous(1) {
		t.Fatalf("view %+v", v)
	}
	if !slices.Equal(v.Row(0), []float32{8, 9, 10}) || !slices.Equal(v.Row(1), []float32{14, 15, 16}) {
		t.Fatalf("rows %v %v", v.Row(0), v.Row(1))
	}
	// A view of a view keeps the stride of the storage.
	w := v.View(1, 1, 1, 2)
	if !slices.Equal(w.Row(0), []float32{15, 16}) {
		t.Fatalf("view of a view %v", w.Row(0))
	}
	// Whole rows are contiguous.
	r := x.View(2, 2, 0, 6)
	if r.Stride != 0 || !r.Contiguous(2) || len(r.Data) != 12 || r.Data[0] != 12 {
		t.Fatalf("row range %+v", r)
	}
	v.Row(1)[0] = -1
	if x.Data[14] != -1 {
		t.Fatal("a view does not share its parent's storage")
	}
	var reused Tensor
	if reused.SetView(x, 3, 1, 0, 2); reused.Row(0)[1] != 19 {
		t.Fatalf("SetView %v", reused.Row(0))
	}
}

func TestViewOutsidePanics(t *testing.T) {
	x := &Tensor{Rows: 2, Cols: 3, Data: make([]float32, 6)}
	defer func() {
		if recover() == nil {
			t.Fatal("a view past the last column did not panic")
		}
	}()
	x.View(0, 2, 2, 2)
}
