package data

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// LoadCOCOPairs reads a COCO captions file ({"images": [{"id", "file_name"}],
// "annotations": [{"image_id", "caption"}]}) into one pair per caption, in
// annotation order. Image file names are relative to imagesDir (the file's
// directory when empty).
func LoadCOCOPairs(path, imagesDir string) ([]TrainPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Images []struct {
			ID       int64  `json:"id"`
			FileName string `json:"file_name"`
		} `json:"images"`
		Annotations []struct {
			ImageID int64  `json:"image_id"`
			Caption string `json:"caption"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if imagesDir == "" {
		imagesDir = filepath.Dir(path)
	}
	files := make(map[int64]string, len(f.Images))
	for _, im := range f.Images {
		files[im.ID] = im.FileName
	}
	out := make([]TrainPair, 0, len(f.Annotations))
	for i, a := range f.Annotations {
		name, ok := files[a.ImageID]
		if !ok {
			return nil, fmt.Errorf("%s: annotation %d names image %d, which is not in \"images\"", path, i, a.ImageID)
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(imagesDir, name)
		}
		out = append(out, TrainPair{Image: name, Caption: a.Caption})
	}
	return out, nil
}
