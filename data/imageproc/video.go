package imageproc

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// isImageFile reports whether SampleFrames treats a file name as a frame.
func isImageFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg", ".gif":
		return true
	}
	return false
}

// SampleFrames lists the image files (.png, .jpg, .jpeg, .gif, any case)
// directly inside dir, sorted by name, and picks n evenly spaced ones as
// HF's GIT video example does with the whole clip as the segment:
// indices = clip(linspace(0, len, n), 0, len-1) truncated to integers. It
// returns their paths in order. It is an error if dir cannot be read, holds
// no image or fewer than n images, or if n < 1.
func SampleFrames(dir string, n int) ([]string, error) {
	if n < 1 {
		return nil, fmt.Errorf("imageproc: SampleFrames(%s): need at least 1 frame, asked for %d", dir, n)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("imageproc: SampleFrames: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && isImageFile(e.Name()) {
			names = append(names, e.Name())
		} else if e.Type()&os.ModeSymlink != 0 && isImageFile(e.Name()) {
			if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && fi.Mode().IsRegular() {
				names = append(names, e.Name())
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("imageproc: SampleFrames: %s holds no image files (.png, .jpg, .jpeg, .gif)", dir)
	}
	if len(names) < n {
		return nil, fmt.Errorf("imageproc: SampleFrames: %s holds %d image files, fewer than the %d frames asked for", dir, len(names), n)
	}
	sort.Strings(names)
	out := make([]string, n)
	for k, idx := range FrameIndices(len(names), n) {
		out[k] = filepath.Join(dir, names[idx])
	}
	return out, nil
}

// FrameIndices returns n indices evenly spaced over [0, total):
// numpy's linspace(0, total, n) clipped to [0, total-1] and truncated.
// It assumes 1 <= n.
func FrameIndices(total, n int) []int {
	idx := make([]int, n)
	if total <= 0 {
		return idx
	}
	for k := range idx {
		var v float64
		if n == 1 {
			v = 0
		} else {
			// numpy: start + k*step with step = (stop-start)/(num-1); the
			// last sample is exactly stop.
			step := float64(total) / float64(n-1)
			v = float64(k) * step
			if k == n-1 {
				v = float64(total)
			}
		}
		i := int(v)
		idx[k] = min(max(i, 0), total-1)
	}
	return idx
}
