package kernels

// MatMulTransposed computes out[t, c] = Σ_r W[r, c]·x[t, r] for n tokens:
// y = x·W for a matrix stored [in, out] (x is [n, Rows], out is [n, Cols]),
// as transformers keeps gpt-oss's bf16 experts (GptOssExperts'
// gate_up_proj [hidden, 2I], down_proj [I, hidden]). Each row of W is
// converted once and added, scaled by every token's x[t, r], into the
// outputs; columns are split across the worker pool. Only dense (F32,
// BF16) matrices have this form.
func MatMulTransposed(out, x []float32, n int, m *Matrix) {
	if n <= 0 {
		return
	}
	j := transposedJobs.get()
	j.out, j.x, j.n, j.m = out, x, n, m
	blocks := (m.Cols + transposedCols - 1) / transposedCols
	parallelFor(blocks, n*m.Rows*transposedCols, j.body)
	*j = transposedJob{body: j.body}
	transposedJobs.put(j)
}

// transposedCols is the output columns a unit of MatMulTransposed takes.
const transposedCols = 64

// transposedJob is one MatMulTransposed call, its work function bound once.
type transposedJob struct {
	out, x []float32
	n      int
	m      *Matrix
	body   func(lo, hi int)
}

var transposedJobs = freeList[transposedJob]{init: func(j *transposedJob) { j.body = j.run }}

// run computes column blocks [lo, hi).
func (j *transposedJob) run(lo, hi int) {
	m := j.m
	c0, c1 := lo*transposedCols, min(m.Cols, hi*transposedCols)
	w := c1 - c0
	buf := getFloats(w)
	defer putFloats(buf)
	row := (*buf)[:w]
	for t := 0; t < j.n; t++ {
		clear(j.out[t*m.Cols+c0 : t*m.Cols+c1])
	}
	for r := 0; r < m.Rows; r++ {
		if m.BF16 != nil {
			bf16Row(row, m.BF16[r*m.Cols+c0:r*m.Cols+c1])
		} else {
			row = m.F32[r*m.Cols+c0 : r*m.Cols+c1]
		}
		for t := 0; t < j.n; t++ {
			if xv := j.x[t*m.Rows+r]; xv != 0 {
				AddScaled(j.out[t*m.Cols+c0:t*m.Cols+c1], row, xv)
			}
		}
	}
}
