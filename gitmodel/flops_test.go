package gitmodel

import "testing"

// TestFLOPCountsMatchTheBaselineEstimates checks the git-base counts
// against the figures in the PyTorch baseline notes (vision forward ≈ 35
// GFLOP, batch-8 training step ≈ 1.3 TFLOP).
func TestFLOPCountsMatchTheBaselineEstimates(t *testing.T) {
	c := DefaultConfig()
	if v := c.VisionFLOPs(); v < 34e9 || v > 36e9 {
		t.Errorf("vision FLOPs %.3g, want about 35e9", v)
	}
	if f := c.TrainFLOPs(8, 20); f < 1.25e12 || f > 1.4e12 {
		t.Errorf("training step FLOPs %.3g, want about 1.3e12", f)
	}
	if a, b := c.CaptionFLOPs(1, 1, 1, 20), c.VisionFLOPs(); a < b || a > 2*b {
		t.Errorf("caption FLOPs %.3g should be a little above one image encoding %.3g", a, b)
	}
}
