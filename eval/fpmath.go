package eval

import "math"

// This file holds the floating-point helpers that make the Go scores agree
// with the toolkit to the last bit wherever that is practical.
//
// The toolkit calls glibc's log and pow, which are correctly rounded in all
// but a vanishing fraction of cases. Go's math.Log and math.Pow are accurate
// to about one ulp but not correctly rounded, so we evaluate both in
// double-double arithmetic (about 100 bits) and round once.
//
// Products that are later added are wrapped in float64(...) elsewhere in the
// package: the Go spec forbids fusing an explicitly converted product into a
// fused multiply-add, and the toolkit never fuses.

// dd is an unevaluated sum hi+lo with |lo| <= ulp(hi)/2.
type dd struct{ hi, lo float64 }

func twoSum(a, b float64) dd {
	s := a + b
	bb := s - a
	return dd{s, (a - (s - bb)) + (b - bb)}
}

func quickTwoSum(a, b float64) dd {
	s := a + b
	return dd{s, b - (s - a)}
}

func twoProd(a, b float64) dd {
	p := a * b
	return dd{p, math.FMA(a, b, -p)}
}

func ddAdd(a, b dd) dd {
	s := twoSum(a.hi, b.hi)
	t := twoSum(a.lo, b.lo)
	s.lo += t.hi
	s = quickTwoSum(s.hi, s.lo)
	s.lo += t.lo
	return quickTwoSum(s.hi, s.lo)
}

func ddMul(a, b dd) dd {
	p := twoProd(a.hi, b.hi)
	p.lo += a.hi*b.lo + a.lo*b.hi
	return quickTwoSum(p.hi, p.lo)
}

func ddMulF(a dd, b float64) dd {
	p := twoProd(a.hi, b)
	p.lo += a.lo * b
	return quickTwoSum(p.hi, p.lo)
}

func ddScale(a dd, e int) dd { return dd{math.Ldexp(a.hi, e), math.Ldexp(a.lo, e)} }

// ln2DD is ln 2 to about 107 bits.
var ln2DD = dd{0.6931471805599453, 2.3190468138462996e-17}

// ddExp returns exp(x) to about 100 bits for |x| < 700.
func ddExp(x dd) dd {
	k := math.Round(x.hi / ln2DD.hi)
	r := ddAdd(x, ddMulF(dd{-ln2DD.hi, -ln2DD.lo}, k))
	const squarings = 10
	r = ddScale(r, -squarings)
	// Taylor series of expm1(r), |r| < 3.5e-4: 9 terms reach 1e-33.
	term := r
	sum := r
	for i := 2; i <= 9; i++ {
		term = ddDivF(ddMul(term, r), float64(i))
		sum = ddAdd(sum, term)
	}
	// exp(2r)-1 = (exp(r)-1)*(exp(r)-1+2): keeps the small part exact.
	for i := 0; i < squarings; i++ {
		sum = ddMul(sum, ddAdd(sum, dd{2, 0}))
	}
	res := ddAdd(sum, dd{1, 0})
	return ddScale(res, int(k))
}

// ddDivF returns t/d in double-double.
func ddDivF(t dd, d float64) dd {
	q1 := t.hi / d
	p := twoProd(q1, d)
	rem := ddAdd(t, dd{-p.hi, -p.lo})
	return quickTwoSum(q1, rem.hi/d)
}

// ddLog returns ln(x) to about 100 bits for finite x > 0.
func ddLog(x float64) dd {
	y := dd{math.Log(x), 0}
	// One Newton step on exp(y) = x: y += x*exp(-y) - 1.
	e := ddExp(dd{-y.hi, -y.lo})
	t := ddAdd(ddMulF(e, x), dd{-1, 0})
	return ddAdd(y, t)
}

// logRN returns ln(x) rounded to nearest, as glibc's log gives it.
func logRN(x float64) float64 {
	if x == 1 {
		return 0
	}
	if !(x > 0) || math.IsInf(x, 0) {
		return math.Log(x)
	}
	r := ddLog(x)
	return r.hi + r.lo
}

// glibcLogMisrounded lists the integers n <= 2,000,000 for which glibc's log
// (checked against Debian glibc 2.36, the library behind the toolkit's
// reference run) is not correctly rounded, with the value glibc returns.
// Everywhere else in that range logRN(n) equals glibc's log(n) bit for bit.
var glibcLogMisrounded = map[int]float64{
	9170:    0x1.23f54a1c504c2p+03,
	136837:  0x1.7a7310000e6dcp+03,
	141614:  0x1.7b8c2af4020b4p+03,
	147674:  0x1.7ce36e0406e44p+03,
	277862:  0x1.911dbc61c360ap+03,
	278555:  0x1.913224425ebdp+03,
	330034:  0x1.969f579dcbce5p+03,
	351497:  0x1.98a37bb861bc9p+03,
	372772:  0x1.9a84e4870d692p+03,
	394915:  0x1.9c5d99b43b024p+03,
	416542:  0x1.9e125f05bcaf8p+03,
	504274:  0x1.a43020df84723p+03,
	507328:  0x1.a4619767dec97p+03,
	557003:  0x1.a75ed46e9dc16p+03,
	622817:  0x1.aaf1bacabcc2bp+03,
	658711:  0x1.acbcbebf411e8p+03,
	664679:  0x1.ad06a1a308867p+03,
	672295:  0x1.ad63f6855b26ep+03,
	699095:  0x1.aea42ef418599p+03,
	721368:  0x1.afa51b71e01d4p+03,
	822630:  0x1.b3d92f484eeaap+03,
	832164:  0x1.b43794ca3a015p+03,
	843741:  0x1.b4a8c31f8398p+03,
	900741:  0x1.b6c04a86b888ap+03,
	1006553: 0x1.ba4e2b6718129p+03,
	1070557: 0x1.bc472f7a848a9p+03,
	1071347: 0x1.bc4d3a77822dp+03,
	1083589: 0x1.bcaa4e310dea1p+03,
	1096588: 0x1.bd0bfe702747fp+03,
	1106346: 0x1.bd54916d4960cp+03,
	1147879: 0x1.be82782f86e32p+03,
	1154500: 0x1.beb195de1e4a6p+03,
	1203295: 0x1.c004b42751f1dp+03,
	1225733: 0x1.c09c0de2f2cfbp+03,
	1229685: 0x1.c0b66ca1f976dp+03,
	1243783: 0x1.c113cf1f6d447p+03,
	1303354: 0x1.c2930f0625b92p+03,
	1313338: 0x1.c2d1927cbf88ap+03,
	1358636: 0x1.c3e75b6009be7p+03,
	1383131: 0x1.c479bc5dba7p+03,
	1392511: 0x1.c4b11aa4e455dp+03,
	1393959: 0x1.c4b99e3b114a7p+03,
	1441959: 0x1.c5cef4b1bb039p+03,
	1512573: 0x1.c7569ca05ee18p+03,
	1513253: 0x1.c75a4b388c3p+03,
	1574769: 0x1.c8a0b85877653p+03,
	1670159: 0x1.ca827e59d64e4p+03,
	1713756: 0x1.cb5597112a5e4p+03,
	1735226: 0x1.cbbb950d75debp+03,
	1782331: 0x1.cc96ffff6cd0ap+03,
	1878149: 0x1.ce43f8a5c5817p+03,
	1908407: 0x1.cec6e5a2afc01p+03,
	1959253: 0x1.cf9e4d05844fdp+03,
	1965771: 0x1.cfb9823397c19p+03,
}

// logInt returns ln(n) for a positive integer n exactly as glibc's log does.
func logInt(n int) float64 {
	if v, ok := glibcLogMisrounded[n]; ok {
		return v
	}
	return logRN(float64(n))
}

// lnEDouble is ln(2.718281828459045), the natural log of the float64 closest
// to e (Python's math.e and numpy's np.e), which is slightly below 1.
var lnEDouble = ddLog(math.E)

// powERN returns math.E**x rounded to nearest, as Python's
// 2.718281828459045 ** x (C pow) gives it.
func powERN(x float64) float64 {
	if x == 0 {
		return 1
	}
	if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 700 {
		return math.Pow(math.E, x)
	}
	r := ddExp(ddMulF(lnEDouble, x))
	return r.hi + r.lo
}

// expRN returns exp(x) rounded to nearest, as glibc's exp gives it.
func expRN(x float64) float64 {
	if x == 0 {
		return 1
	}
	if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 700 {
		return math.Exp(x)
	}
	r := ddExp(dd{x, 0})
	return r.hi + r.lo
}

// powRN returns x**y rounded to nearest, as glibc's pow gives it, for the
// finite x > 0 and moderate results the scorers need; it falls back to
// math.Pow elsewhere.
func powRN(x, y float64) float64 {
	switch {
	case y == 0 || x == 1:
		return 1
	case y == 1:
		return x
	case !(x > 0) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0):
		return math.Pow(x, y)
	}
	l := ddMulF(ddLog(x), y)
	if math.Abs(l.hi) > 700 {
		return math.Pow(x, y)
	}
	r := ddExp(l)
	return r.hi + r.lo
}
