package kernels

// StreamRead reads every byte of b once, split across the cores, and
// returns a checksum (so the reads cannot be elided). It is the memory
// bandwidth anchor the decode kernels are measured against: on a buffer
// much larger than the caches, len(b) / its time is the machine's
// streaming-read bandwidth.
func StreamRead(b []byte) uint64 {
	const block = 1 << 20
	blocks := (len(b) + block - 1) / block
	sums := make([]uint64, blocks)
	parallelFor(blocks, block, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			sums[i] = streamSum(b[i*block : min((i+1)*block, len(b))])
		}
	})
	var s uint64
	for _, v := range sums {
		s += v
	}
	return s
}

// streamSumGo adds b as little-endian 64-bit words (a tail shorter than a
// word is added byte by byte).
func streamSumGo(b []byte) uint64 {
	var s0, s1, s2, s3 uint64
	i := 0
	for ; i+32 <= len(b); i += 32 {
		w := b[i : i+32 : i+32]
		s0 += uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 | uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		s1 += uint64(w[8]) | uint64(w[9])<<8 | uint64(w[10])<<16 | uint64(w[11])<<24 | uint64(w[12])<<32 | uint64(w[13])<<40 | uint64(w[14])<<48 | uint64(w[15])<<56
		s2 += uint64(w[16]) | uint64(w[17])<<8 | uint64(w[18])<<16 | uint64(w[19])<<24 | uint64(w[20])<<32 | uint64(w[21])<<40 | uint64(w[22])<<48 | uint64(w[23])<<56
		s3 += uint64(w[24]) | uint64(w[25])<<8 | uint64(w[26])<<16 | uint64(w[27])<<24 | uint64(w[28])<<32 | uint64(w[29])<<40 | uint64(w[30])<<48 | uint64(w[31])<<56
	}
	for ; i < len(b); i++ {
		s0 += uint64(b[i]) << (8 * (i % 8))
	}
	return s0 + s1 + s2 + s3
}
