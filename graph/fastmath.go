package graph

import "math"

// exp32 is e^x in float32 arithmetic, accurate to about 2 ulp: a range
// reduction x = n·ln2 + r with |r| ≤ ln2/2 and a degree-6 polynomial for
// e^r, scaled by 2^n through the exponent bits. It is 5-10x faster than
// math.Exp in float64, which matters for softmax and activations over
// millions of elements.
func exp32(x float32) float32 {
	const (
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
		log2e = 1.44269504088896341
	)
	switch {
	case x > 88.72283:
		return float32(math.Inf(1))
	case x < -103.97208:
		return 0
	case x != x:
		return x
	}
	const shift = 12582912 // 1.5·2²³: adding it rounds to an integer
	// The explicit conversions round every product on its own (no fused
	// multiply-add at any GOAMD64 level), as fastmath_amd64.s does.
	n := (float32(x*log2e) + shift) - shift
	r := x - float32(n*ln2hi) - float32(n*ln2lo)
	// e^r ≈ 1 + r + r²/2 + … (Cephes expf coefficients).
	p := float32(1.9875691500e-4)
	p = float32(p*r) + 1.3981999507e-3
	p = float32(p*r) + 8.3334519073e-3
	p = float32(p*r) + 4.1665795894e-2
	p = float32(p*r) + 1.6666665459e-1
	p = float32(p*r) + 5.0000001201e-1
	y := float32(float32(p*r)*r) + r + 1
	ni := int32(n)
	if ni < -126 { // subnormal result: scale in two steps
		return y * math.Float32frombits(uint32(ni+126+127)<<23) * math.Float32frombits(1<<23)
	}
	return y * math.Float32frombits(uint32(ni+127)<<23)
}

// erf32 is erf(x) in float32 arithmetic, accurate to a few ulp (N. Juffa's
// minimax approximation: an odd polynomial near 0, 1 - e^p(|x|) beyond).
func erf32(x float32) float32 {
	t := x
	if t < 0 {
		t = -t
	}
	s := x * x
	if t > 0.927734375 {
		r := float32(-1.72853470e-5*t) + 3.83197126e-4
		u := float32(-3.88396438e-3*t) + 2.42546219e-2
		r = float32(r*s) + u
		r = float32(r*t) - 1.06777877e-1
		r = float32(r*t) - 6.34846687e-1
		r = float32(r*t) - 1.28717512e-1
		r = float32(r*t) - t
		r = 1 - exp32(r)
		if x < 0 {
			return -r
		}
		return r
	}
	r := float32(-5.96761703e-4)
	r = float32(r*s) + 4.99119423e-3
	r = float32(r*s) - 2.67681349e-2
	r = float32(r*s) + 1.12819925e-1
	r = float32(r*s) - 3.76125336e-1
	r = float32(r*s) + 1.28379166e-1
	return float32(r*x) + x
}
