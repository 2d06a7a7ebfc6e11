package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// readTree returns every file under dir by slash path relative to dir.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// strictCOCO mirrors the COCO captions format with no extra fields allowed
// in images and annotations.
type strictCOCO struct {
	Info   map[string]any `json:"info"`
	Images []struct {
		ID       int    `json:"id"`
		FileName string `json:"file_name"`
		Width    int    `json:"width"`
		Height   int    `json:"height"`
	} `json:"images"`
	Annotations []struct {
		ID      int    `json:"id"`
		ImageID int    `json:"image_id"`
		Caption string `json:"caption"`
	} `json:"annotations"`
}

func TestWriteCOCO(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Seed: 11, Train: 40, Val: 6, Test: 0, ImageSize: 48}
	sum, err := Write(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	exs, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Images() != 46 || len(sum.Splits) != 3 {
		t.Fatalf("summary %+v", sum)
	}
	want := map[string]int{Train: 40, Val: 6, Test: 0}
	k := 0 // index into exs
	for _, sp := range sum.Splits {
		if sp.Images != want[sp.Split] {
			t.Errorf("split %s: %d images, want %d", sp.Split, sp.Images, want[sp.Split])
		}
		if sp.Annotations != filepath.Join(dir, "annotations", "captions_"+sp.Split+".json") {
			t.Errorf("split %s: annotations at %s", sp.Split, sp.Annotations)
		}
		buf, err := os.ReadFile(sp.Annotations)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(buf))
		dec.DisallowUnknownFields()
		var f strictCOCO
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s: %v", sp.Annotations, err)
		}
		if f.Images == nil || f.Annotations == nil {
			t.Errorf("%s: images or annotations is null, want a list", sp.Annotations)
		}
		if len(f.Images) != sp.Images || len(f.Annotations) != sp.Captions {
			t.Errorf("%s: %d images and %d annotations, summary says %d and %d", sp.Annotations, len(f.Images), len(f.Annotations), sp.Images, sp.Captions)
		}
		caps := map[int][]string{}
		for i, a := range f.Annotations {
			if a.ID != i+1 {
				t.Errorf("%s: annotation %d has id %d", sp.Annotations, i, a.ID)
			}
			caps[a.ImageID] = append(caps[a.ImageID], a.Caption)
		}
		for i, im := range f.Images {
			ex := exs[k]
			k++
			if im.ID != i+1 || im.FileName != ex.FileName || im.Width != 48 || im.Height != 48 || ex.ID != im.ID || ex.Split != sp.Split {
				t.Errorf("%s: image %d is %+v, example %s/%d %s", sp.Annotations, i, im, ex.Split, ex.ID, ex.FileName)
			}
			if !slices.Equal(caps[im.ID], ex.Captions) {
				t.Errorf("%s: image %d captions %q, Generate gives %q", sp.Annotations, im.ID, caps[im.ID], ex.Captions)
			}
			delete(caps, im.ID)
			// file_name is relative to DIR/images/<split>/, and the PNG
			// holds exactly the generated pixels.
			r, err := os.Open(filepath.Join(dir, "images", sp.Split, im.FileName))
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			if img.Bounds() != image.Rect(0, 0, 48, 48) {
				t.Fatalf("%s: bounds %v", im.FileName, img.Bounds())
			}
			for y := range 48 {
				for x := range 48 {
					r1, g1, b1, a1 := img.At(x, y).RGBA()
					r2, g2, b2, a2 := ex.Image.At(x, y).RGBA()
					if [4]uint32{r1, g1, b1, a1} != [4]uint32{r2, g2, b2, a2} {
						t.Fatalf("%s/%s: pixel (%d,%d) differs from Generate", sp.Split, im.FileName, x, y)
					}
				}
			}
		}
		if len(caps) != 0 {
			t.Errorf("%s: annotations for unknown images %v", sp.Annotations, caps)
		}
	}
	files := readTree(t, dir)
	if len(files) != 46+3 {
		t.Errorf("%d files written, want 49", len(files))
	}
}

func TestWriteDeterministic(t *testing.T) {
	opts := Options{Seed: 5, Train: 30, Val: 5, Test: 5}
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if _, err := Write(context.Background(), d, opts); err != nil {
			t.Fatal(err)
		}
	}
	opts.Seed = 6
	if _, err := Write(context.Background(), c, opts); err != nil {
		t.Fatal(err)
	}
	fa, fb, fc := readTree(t, a), readTree(t, b), readTree(t, c)
	if len(fa) != 43 || len(fb) != len(fa) || len(fc) != len(fa) {
		t.Fatalf("%d, %d and %d files", len(fa), len(fb), len(fc))
	}
	differ := 0
	for name, data := range fa {
		if !bytes.Equal(data, fb[name]) {
			t.Errorf("%s differs between two writes with the same seed", name)
		}
		if !bytes.Equal(data, fc[name]) {
			differ++
		}
	}
	if differ < 35 {
		t.Errorf("seeds 5 and 6 differ in only %d of %d files", differ, len(fa))
	}
	for _, s := range Splits() {
		name := "annotations/captions_" + s + ".json"
		if bytes.Equal(fa[name], fc[name]) {
			t.Errorf("%s is the same for seeds 5 and 6", name)
		}
	}
}

func TestWriteCancelled(t *testing.T) {
	// Already cancelled: nothing but empty directories.
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Write(ctx, dir, Options{Train: 10}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context: %v", err)
	}
	if _, err := os.Stat(AnnotationsPath(dir, Train)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("captions file after cancelled Write: %v", err)
	}

	// Cancelled while writing, over a complete earlier data set: it stops
	// early and leaves no captions file.
	if _, err := Write(context.Background(), dir, Options{Train: 5, Val: 1, Test: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			if _, err := os.Stat(filepath.Join(dir, "images", Train, fileName(50))); err == nil {
				cancel()
				return
			}
			if ctx.Err() != nil {
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	const n = 20000
	_, err := Write(ctx, dir, Options{Train: n, Val: 1, Test: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write cancelled midway: %v", err)
	}
	for _, s := range Splits() {
		if _, err := os.Stat(AnnotationsPath(dir, s)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("captions file after cancelled Write: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "images", Train, fileName(n))); err == nil {
		t.Errorf("the last image was written: Write did not stop early")
	}
}

func TestWriteErrors(t *testing.T) {
	if _, err := Write(context.Background(), t.TempDir(), Options{}); err == nil {
		t.Error("Write with no images succeeded")
	}
	// dir is a file.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(context.Background(), f, Options{Train: 1}); err == nil {
		t.Error("Write into a file succeeded")
	}
}

func TestWriteSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	start := time.Now()
	tr, v, te := SplitTotal(2000)
	if _, err := Write(context.Background(), t.TempDir(), Options{Seed: 1, Train: tr, Val: v, Test: te}); err != nil {
		t.Fatal(err)
	}
	t.Logf("2000 64x64 images in %v", time.Since(start))
}

func BenchmarkWrite2000(b *testing.B) {
	tr, v, te := SplitTotal(2000)
	for b.Loop() {
		if _, err := Write(context.Background(), b.TempDir(), Options{Seed: 1, Train: tr, Val: v, Test: te}); err != nil {
			b.Fatal(err)
		}
	}
}
