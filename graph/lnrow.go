package graph

import "math"

// The float32 LayerNorm forward works row by row in three passes, each of
// which the AVX-512 kernels (lnrow_amd64.s) do 16 or 32 elements at a time:
// the row's sum, its sum of squared deviations from the mean (both in
// float64), and the normalised, scaled and shifted output. The sums are
// defined in a fixed, vector-friendly order so that the kernels and the Go
// code here give the same bits: lnLanes interleaved float64 partial sums
// (element j of each whole block of lnLanes goes to partial j), combined by
// lnReduce, then the elements past the last whole block added one by one.
// Against a single running sum only the order of the float64 additions
// differs (the row statistics agree to about 1e-16 relative); the
// per-element output arithmetic is the same as the generic forward's.

// lnLanes is the number of interleaved partial sums (4 registers of 8
// float64 lanes).
const lnLanes = 32

// lnReduce combines the partial sums s as the kernels do: the four
// registers of 8 lanes added pairwise, (s0+s1)+(s2+s3), then the 8 lanes
// halved three times.
func lnReduce(s *[lnLanes]float64) float64 {
	var t [8]float64
	for l := range t {
		t[l] = (s[l] + s[8+l]) + (s[16+l] + s[24+l])
	}
	u0, u1, u2, u3 := t[0]+t[4], t[1]+t[5], t[2]+t[6], t[3]+t[7]
	return (u0 + u2) + (u1 + u3)
}

// lnSumRef is the sum of x in the order above (sq false), or the sum of
// (x-mu)², each square rounded before it is added (sq true).
func lnSumRef(x []float32, mu float64, sq bool) float64 {
	var s [lnLanes]float64
	nb := len(x) / lnLanes * lnLanes
	for i := 0; i < nb; i += lnLanes {
		for l, v := range x[i : i+lnLanes] {
			if sq {
				d := float64(v) - mu
				s[l] += float64(d * d)
			} else {
				s[l] += float64(v)
			}
		}
	}
	return lnTail(lnReduce(&s), x[nb:], mu, sq)
}

// lnTail adds the elements past the last whole block of lanes to sum, in
// order (the reference and the AVX-512 kernels end the same way).
func lnTail(sum float64, x []float32, mu float64, sq bool) float64 {
	for _, v := range x {
		if sq {
			d := float64(v) - mu
			sum += float64(d * d)
		} else {
			sum += float64(v)
		}
	}
	return sum
}

// lnApplyRef writes y[j] = float32((x[j]-mu)·rstd)·g[j] + b[j], the product
// and the sum each rounded to float32 (no fused multiply-add).
func lnApplyRef(x, g, b, y []float32, mu, rstd float64) {
	for j, v := range x {
		y[j] = float32(float32((float64(v)-mu)*rstd)*g[j]) + b[j]
	}
}

// lnRow32 normalises one row x into y with gain g and shift b and returns
// its mean and 1/sqrt(var+eps) (biased variance), using the AVX-512
// kernels where the CPU has them (same bits as the Go code).
func lnRow32(x, g, b, y []float32, eps float64) (mu, rstd float64) {
	n := float64(len(x))
	mu = lnSum32(x, 0, false) / n
	rstd = 1 / math.Sqrt(lnSum32(x, mu, true)/n+eps)
	lnApply32(x, g, b, y, mu, rstd)
	return mu, rstd
}
