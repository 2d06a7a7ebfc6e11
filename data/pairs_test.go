package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLoadPairsReadsEveryCaptionFormat builds the same two-image set in
// each training format and checks the pairs (one per caption).
func TestLoadPairsReadsEveryCaptionFormat(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"captions.json": `{"images":[{"id":1,"file_name":"a.png"},{"id":2,"file_name":"b.png"}],
			"annotations":[{"image_id":1,"caption":"a dog"},{"image_id":2,"caption":"a cat"},{"image_id":1,"caption":"one dog"}]}`,
		"metadata.jsonl": "{\"file_name\":\"a.png\",\"text\":\"a dog\"}\n{\"file_name\":\"a.png\",\"text\":\"one dog\"}\n{\"file_name\":\"b.png\",\"text\":\"a cat\"}\n",
		"captions.csv":   "file_name,text\na.png,a dog\na.png,one dog\nb.png,\"a cat\"\n",
		"dataset_coco.json": `{"images":[
			{"filepath":"","filename":"a.png","split":"train","cocoid":1,"sentences":[{"raw":"a dog","tokens":["a","dog"]},{"raw":"one dog","tokens":["one","dog"]}]},
			{"filepath":"","filename":"b.png","split":"restval","cocoid":2,"sentences":[{"raw":"a cat","tokens":["a","cat"]}]},
			{"filepath":"","filename":"c.png","split":"test","cocoid":3,"sentences":[{"raw":"a cow","tokens":["a","cow"]}]}]}`,
	}
	want := []TrainPair{{filepath.Join(dir, "a.png"), "a dog"}, {filepath.Join(dir, "a.png"), "one dog"}, {filepath.Join(dir, "b.png"), "a cat"}}
	for name, content := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			split := ""
			if strings.HasPrefix(name, "dataset_coco") {
				split = "train+restval"
			}
			got, err := LoadPairs(path, "auto", split, "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if _, err := LoadPairs(path, "csv", split, ""); name != "captions.csv" && err == nil {
				t.Error("a format mismatch should be an error")
			}
		})
	}
}
