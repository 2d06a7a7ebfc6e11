package data

import (
	"fmt"
	"path/filepath"
)

// LoadPairs reads a caption file of any supported format (see
// LoadCaptions; split selects Karpathy splits, e.g. "train+restval") into
// training pairs, one per caption, in file order. want, if not "" or
// "auto", must match the detected format. Image file names are relative to
// imagesDir (the caption file's directory when empty); for metadata.jsonl
// and CSV files the image is the file_name column.
func LoadPairs(path string, want CaptionFormat, split, imagesDir string) ([]TrainPair, error) {
	set, err := LoadCaptions(path, split)
	if err != nil {
		return nil, err
	}
	if want != "" && want != "auto" && want != set.Format {
		return nil, fmt.Errorf("%s: a %s file, but the config says %s", path, set.Format, want)
	}
	if set.Format == CaptionFormatCOCOResults {
		return nil, fmt.Errorf("%s: a COCO results file has generated captions, not training captions", path)
	}
	if imagesDir == "" {
		imagesDir = filepath.Dir(path)
	}
	var out []TrainPair
	for _, im := range set.Images {
		name := im.File
		if name == "" {
			name = im.ID
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(imagesDir, name)
		}
		for _, c := range im.Captions {
			out = append(out, TrainPair{Image: name, Caption: c})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no captions", path)
	}
	return out, nil
}

// LoadCOCOPairs reads a COCO captions file into training pairs (LoadPairs
// for COCO files).
func LoadCOCOPairs(path, imagesDir string) ([]TrainPair, error) {
	return LoadPairs(path, CaptionFormatCOCO, "", imagesDir)
}
