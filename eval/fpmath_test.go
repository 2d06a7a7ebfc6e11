package eval

import (
	"math"
	"testing"
)

// The expected values below are glibc's (Debian glibc 2.36, the library of
// the toolkit's reference run), printed by Python's math module.

func TestLogIntMatchesGlibc(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want float64
	}{
		{1, 0},
		{2, 0x1.62e42fefa39efp-1},
		{3, 0x1.193ea7aad030bp+0},
		{10, 0x1.26bb1bbb55516p+1},
		{150, 0x1.40ae3fa814e9ap+2},
		{5000, 0x1.108cd8bc5b177p+3},
		{9170, 0x1.23f54a1c504c2p+3}, // glibc misrounds; from the table
		{40504, 0x1.537e34c099324p+3},
		{113287, 0x1.7467df4288cc7p+3},
		{136837, 0x1.7a7310000e6dcp+3}, // glibc misrounds; from the table
	} {
		if got := logInt(tc.n); got != tc.want {
			t.Errorf("logInt(%d) = %x, want %x", tc.n, got, tc.want)
		}
	}
}

// TestLogRNIsCorrectlyRounded checks logRN against the exactly rounded
// values where glibc misrounds (the table lists glibc's values, one ulp
// away), and against math.Log (within an ulp) elsewhere.
func TestLogRNIsCorrectlyRounded(t *testing.T) {
	for n, glibc := range glibcLogMisrounded {
		got := logRN(float64(n))
		if ulps(got, glibc) != 1 {
			t.Errorf("logRN(%d) = %x, glibc %x: want one ulp apart", n, got, glibc)
		}
	}
	for n := 1; n < 20000; n++ {
		x := float64(n)
		if ulps(logRN(x), math.Log(x)) > 1 {
			t.Fatalf("logRN(%d) = %x, math.Log %x", n, logRN(x), math.Log(x))
		}
	}
}

func TestPowERNMatchesGlibc(t *testing.T) {
	for _, tc := range []struct{ x, want float64 }{
		{0, 1},
		{-0x1.c71c71c71c71cp-7, 0x1.f8f023a2fec21p-1},
		{-0x1.c71c71c71c71cp-5, 0x1.e454ccac9798bp-1},
		{-0x1.638e38e38e38ep-2, 0x1.69cdcd9658e3cp-1},
		{-0x1.2c71c71c71c72p+1, 0x1.87b7fbced4753p-4},
		{-0x1.638e38e38e38ep+4, 0x1.eb2e4573b9f77p-33},
	} {
		if got := powERN(tc.x); got != tc.want {
			t.Errorf("e**%x = %x, want %x", tc.x, got, tc.want)
		}
	}
}

func TestPowRNAndExpRNMatchGlibc(t *testing.T) {
	for _, tc := range []struct{ x, y, want float64 }{
		{0x1.0000000000000p-1, 0x1.5555555555555p-2, 0x1.965fea53d6e3dp-1},
		{0x1.f9add3739635fp-4, 0x1.0000000000000p-2, 0x1.2f7e3677ed83dp-1},
		{0x1.ccccccccccccdp-1, 0x1.5555555555555p-2, 0x1.ee549fe7085e7p-1},
		{0.25, 1, 0.25},
		{0, 0.5, 0},
	} {
		if got := powRN(tc.x, tc.y); got != tc.want {
			t.Errorf("%x**%x = %x, want %x", tc.x, tc.y, got, tc.want)
		}
	}
	for _, tc := range []struct{ x, want float64 }{
		{-0x1.0000000000000p-1, 0x1.368b2fc6f960ap-1},
		{-0x1.a000000000000p+1, 0x1.3da368521902dp-5},
		{0x1.8000000000000p-1, 0x1.0ef9db467dcf8p+1},
		{0, 1},
	} {
		if got := expRN(tc.x); got != tc.want {
			t.Errorf("exp(%x) = %x, want %x", tc.x, got, tc.want)
		}
	}
}
