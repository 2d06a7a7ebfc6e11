package train

import (
	"strings"
	"testing"

	"github.com/cheggaaa/pb/v3"
)

// TestBarShowsElapsedAndTimeLeft: while running, the bar shows the elapsed
// time and the time left; once finished, "done in" the elapsed time, never
// an "ETA".
func TestBarShowsElapsedAndTimeLeft(t *testing.T) {
	bar := pb.ProgressBarTemplate(barTemplate).New(10)
	bar.SetCurrent(3)
	running := bar.String()
	if !strings.Contains(running, "elapsed") || !strings.Contains(running, "left") {
		t.Errorf("running bar %q lacks elapsed/left", running)
	}
	bar.SetCurrent(10)
	bar.Finish()
	done := bar.String()
	if !strings.Contains(done, "done in") || strings.Contains(done, "ETA") || strings.Contains(done, "left") {
		t.Errorf("finished bar %q", done)
	}
}
