package graph

import "testing"

func BenchmarkReadBandwidth(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(ReadBandwidthGBs(256<<20, 0.5), "GB/s")
	}
}
