// Package data reads and writes the datasets gitcap trains and evaluates
// on. Caption files (COCO caption annotations, COCO results files,
// Karpathy's split file dataset_coco.json, Hugging Face imagefolder
// metadata.jsonl and CSV files with file_name,text columns) all load into a
// CaptionSet with LoadCaptions.
package data

// Caption files. Errors name the file and the problem, with the line for
// line-based formats and the array element for JSON ones.

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gitcap/gitcap/data/fsutil"
)

// CaptionFormat names a caption file format.
type CaptionFormat string

// The caption file formats LoadCaptions understands.
const (
	// CaptionFormatCOCO is a COCO captions annotation file:
	// {"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}.
	CaptionFormatCOCO CaptionFormat = "coco"
	// CaptionFormatCOCOResults is a COCO results file:
	// [{"image_id", "caption"}], one caption per image.
	CaptionFormatCOCOResults CaptionFormat = "coco-results"
	// CaptionFormatKarpathy is Karpathy's split file (dataset_coco.json):
	// {"images": [{"filename", "filepath", "split", "cocoid", "sentences": [{"raw", "tokens"}]}]}.
	CaptionFormatKarpathy CaptionFormat = "karpathy"
	// CaptionFormatJSONL is a Hugging Face imagefolder metadata.jsonl: one
	// {"file_name", "text"} object per line; lines may share a file_name.
	CaptionFormatJSONL CaptionFormat = "jsonl"
	// CaptionFormatCSV is a CSV file with a header holding the columns
	// file_name and text (others are ignored); rows may share a file_name.
	CaptionFormatCSV CaptionFormat = "csv"
)

// CaptionImage is one image and its captions.
type CaptionImage struct {
	// ID identifies the image: the COCO image id (in decimal) for COCO and
	// Karpathy files, the file name for metadata.jsonl and CSV files.
	ID string
	// File is the image path relative to the dataset root, "" if the file
	// does not say.
	File string
	// Captions holds the captions in file order.
	Captions []string
	// Split is the Karpathy split (train, restval, val or test), "" for
	// the other formats.
	Split string
}

// CaptionSet is the images of a caption file in file order.
type CaptionSet struct {
	Format CaptionFormat
	Images []CaptionImage
}

// IDs returns the image ids in order.
func (s *CaptionSet) IDs() []string {
	ids := make([]string, len(s.Images))
	for i, im := range s.Images {
		ids[i] = im.ID
	}
	return ids
}

// CaptionsByID maps each image id to its captions.
func (s *CaptionSet) CaptionsByID() map[string][]string {
	m := make(map[string][]string, len(s.Images))
	for _, im := range s.Images {
		m[im.ID] = im.Captions
	}
	return m
}

// NumCaptions is the total number of captions.
func (s *CaptionSet) NumCaptions() int {
	n := 0
	for _, im := range s.Images {
		n += len(im.Captions)
	}
	return n
}

// Result is one generated caption, an element of a COCO results file.
type Result struct {
	ImageID string
	Caption string
}

// LoadCaptions reads a caption file. The format comes from the extension
// (.jsonl, .csv) or, for JSON files, from the content: an array is a COCO
// results file, an object with "annotations" a COCO annotation file, an
// object whose images have "sentences" a Karpathy split file.
//
// split selects Karpathy splits: "" keeps every image, otherwise it names
// one split or several joined by "+" (e.g. "train+restval"). The other
// formats have no splits and need split == "".
func LoadCaptions(path, split string) (*CaptionSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCaptions(path, b, split)
}

// ParseCaptions is LoadCaptions on a file already in memory; name is used
// to pick the format by extension and in errors.
func ParseCaptions(name string, b []byte, split string) (*CaptionSet, error) {
	b = trimBOM(b)
	var (
		set *CaptionSet
		err error
	)
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jsonl":
		set, err = ParseCaptionsJSONL(name, bytes.NewReader(b))
	case ".csv":
		set, err = ParseCaptionsCSV(name, bytes.NewReader(b))
	default:
		return parseCaptionsJSON(name, b, split)
	}
	if err != nil {
		return nil, err
	}
	if split != "" {
		return nil, fmt.Errorf("%s: %s files have no splits; got split %q", name, set.Format, split)
	}
	return set, nil
}

// parseCaptionsJSON tells the JSON formats apart by their content.
func parseCaptionsJSON(name string, b []byte, split string) (*CaptionSet, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%s: empty file", name)
	}
	switch trimmed[0] {
	case '[':
		res, err := ParseCOCOResults(name, b)
		if err != nil {
			return nil, err
		}
		if split != "" {
			return nil, fmt.Errorf("%s: COCO results files have no splits; got split %q", name, split)
		}
		set := &CaptionSet{Format: CaptionFormatCOCOResults, Images: make([]CaptionImage, len(res))}
		for i, r := range res {
			set.Images[i] = CaptionImage{ID: r.ImageID, Captions: []string{r.Caption}}
		}
		return set, nil
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			return nil, jsonError(name, b, err)
		}
		if _, ok := top["annotations"]; ok {
			if split != "" {
				return nil, fmt.Errorf("%s: COCO annotation files have no splits; got split %q", name, split)
			}
			return ParseCOCOAnnotations(name, b)
		}
		if isKarpathy(top["images"]) {
			return ParseKarpathy(name, b, split)
		}
		return nil, fmt.Errorf("%s: not a caption file: a JSON object with neither \"annotations\" (COCO) nor images with \"sentences\" (Karpathy)", name)
	}
	return nil, fmt.Errorf("%s: not a caption file: JSON files must hold an array (COCO results) or an object (COCO annotations, Karpathy split)", name)
}

func isKarpathy(images json.RawMessage) bool {
	var probe []map[string]json.RawMessage
	if json.Unmarshal(images, &probe) != nil {
		return false
	}
	for _, im := range probe {
		if _, ok := im["sentences"]; ok {
			return true
		}
	}
	return false
}

func trimBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }

// jsonError turns an encoding/json error into one naming the file and the
// line and column.
func jsonError(name string, b []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := lineCol(b, se.Offset)
		return fmt.Errorf("%s:%d:%d: malformed JSON: %v", name, line, col, se)
	case errors.As(err, &te):
		line, col := lineCol(b, te.Offset)
		field := te.Field
		if field == "" {
			field = "value"
		}
		return fmt.Errorf("%s:%d:%d: %s is a JSON %s, want %s", name, line, col, field, te.Value, jsonTypeName(te.Type.String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: malformed JSON: unexpected end of file", name)
	}
	return fmt.Errorf("%s: %w", name, err)
}

func jsonTypeName(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map[") || strings.Contains(goType, "."):
		return "an object"
	}
	return goType
}

// lineCol converts a byte offset into 1-based line and column numbers.
func lineCol(b []byte, off int64) (line, col int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	if off < 0 {
		off = 0
	}
	before := b[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// parseID turns a JSON image id, an integer or a string, into its string
// form. what names the field in errors.
func parseID(raw json.RawMessage, what string) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", fmt.Errorf("missing %q", what)
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%q: %v", what, err)
		}
		if s == "" {
			return "", fmt.Errorf("%q is empty", what)
		}
		return s, nil
	case 'n':
		return "", fmt.Errorf("%q is null", what)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return "", fmt.Errorf("%q is %s, want an integer or a string", what, raw)
	}
	return strconv.FormatInt(n, 10), nil
}

// parseCaption decodes a required caption string.
func parseCaption(raw json.RawMessage, what string) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", fmt.Errorf("missing %q", what)
	}
	if raw[0] != '"' {
		return "", fmt.Errorf("%q is %s, want a string", what, abbreviate(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%q: %v", what, err)
	}
	return s, nil
}

func abbreviate(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:37]) + "..."
	}
	return string(raw)
}

// jsonFileBytes returns a JSON file's bytes without a UTF-8 byte-order
// mark, or an error naming the file when they are not UTF-8 or are empty.
func jsonFileBytes(name string, b []byte) ([]byte, error) {
	b = trimBOM(b)
	if err := checkUTF8(name, b); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%s: empty file", name)
	}
	return b, nil
}

// unmarshalJSONFile decodes a JSON file's bytes (jsonFileBytes) into v, with
// errors naming the file and the line.
func unmarshalJSONFile(name string, b []byte, v any) error {
	b, err := jsonFileBytes(name, b)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return jsonError(name, b, err)
	}
	return nil
}

// ParseCOCOAnnotations parses a COCO captions annotation file. Images keep
// the file's order and captions the order of the annotations; an image may
// have no captions. Image ids may be integers or strings.
func ParseCOCOAnnotations(name string, b []byte) (*CaptionSet, error) {
	var top struct {
		Images      []map[string]json.RawMessage `json:"images"`
		Annotations []map[string]json.RawMessage `json:"annotations"`
	}
	if err := unmarshalJSONFile(name, b, &top); err != nil {
		return nil, err
	}
	if top.Images == nil {
		return nil, fmt.Errorf("%s: not a COCO annotation file: no \"images\" array", name)
	}
	if top.Annotations == nil {
		return nil, fmt.Errorf("%s: not a COCO annotation file: no \"annotations\" array", name)
	}
	if len(top.Images) == 0 {
		return nil, fmt.Errorf("%s: no images (\"images\" is empty)", name)
	}
	set := &CaptionSet{Format: CaptionFormatCOCO, Images: make([]CaptionImage, len(top.Images))}
	index := make(map[string]int, len(top.Images))
	for i, im := range top.Images {
		id, err := parseID(im["id"], "id")
		if err != nil {
			return nil, fmt.Errorf("%s: images[%d]: %v", name, i, err)
		}
		if j, dup := index[id]; dup {
			return nil, fmt.Errorf("%s: images[%d]: image id %s already used by images[%d]", name, i, id, j)
		}
		index[id] = i
		file := ""
		if raw, ok := im["file_name"]; ok {
			if file, err = parseCaption(raw, "file_name"); err != nil {
				return nil, fmt.Errorf("%s: images[%d]: %v", name, i, err)
			}
		}
		set.Images[i] = CaptionImage{ID: id, File: file}
	}
	for i, an := range top.Annotations {
		id, err := parseID(an["image_id"], "image_id")
		if err != nil {
			return nil, fmt.Errorf("%s: annotations[%d]: %v", name, i, err)
		}
		caption, err := parseCaption(an["caption"], "caption")
		if err != nil {
			return nil, fmt.Errorf("%s: annotations[%d]: %v", name, i, err)
		}
		j, ok := index[id]
		if !ok {
			return nil, fmt.Errorf("%s: annotations[%d]: image_id %s is not in \"images\"", name, i, id)
		}
		set.Images[j].Captions = append(set.Images[j].Captions, caption)
	}
	return set, nil
}

// LoadCOCOResults reads a COCO results file.
func LoadCOCOResults(path string) ([]Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCOCOResults(path, b)
}

// ParseCOCOResults parses a COCO results file, [{"image_id", "caption"}, ...]
// (other fields are ignored). It must hold at least one result, and at most
// one per image.
func ParseCOCOResults(name string, b []byte) ([]Result, error) {
	b, err := jsonFileBytes(name, b)
	if err != nil {
		return nil, err
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			return nil, fmt.Errorf("%s: not a COCO results file: want a JSON array of {\"image_id\", \"caption\"} objects, got a JSON %s", name, te.Value)
		}
		return nil, jsonError(name, b, err)
	}
	if len(elems) == 0 {
		return nil, fmt.Errorf("%s: no results (empty array)", name)
	}
	out := make([]Result, len(elems))
	seen := make(map[string]int, len(elems))
	for i, e := range elems {
		var it map[string]json.RawMessage
		if e = bytes.TrimSpace(e); len(e) == 0 || e[0] != '{' || json.Unmarshal(e, &it) != nil {
			return nil, fmt.Errorf("%s: results[%d] is %s, want an object", name, i, abbreviate(e))
		}
		id, err := parseID(it["image_id"], "image_id")
		if err != nil {
			return nil, fmt.Errorf("%s: results[%d]: %v", name, i, err)
		}
		caption, err := parseCaption(it["caption"], "caption")
		if err != nil {
			return nil, fmt.Errorf("%s: results[%d]: %v", name, i, err)
		}
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("%s: results[%d]: image_id %s already has a caption at results[%d]", name, i, id, j)
		}
		seen[id] = i
		out[i] = Result{ImageID: id, Caption: caption}
	}
	return out, nil
}

// ParseKarpathy parses Karpathy's split file (dataset_coco.json, or the
// Flickr8k/30k ones) and keeps the images of the requested splits (see
// LoadCaptions). The id is the cocoid when present, otherwise the file
// name; captions are the "raw" sentences (the tokens joined by spaces when
// "raw" is missing).
func ParseKarpathy(name string, b []byte, split string) (*CaptionSet, error) {
	var top struct {
		Images []struct {
			Filename  *string         `json:"filename"`
			Filepath  string          `json:"filepath"`
			Split     *string         `json:"split"`
			COCOID    json.RawMessage `json:"cocoid"`
			Sentences []struct {
				Raw    *string  `json:"raw"`
				Tokens []string `json:"tokens"`
			} `json:"sentences"`
		} `json:"images"`
	}
	if err := unmarshalJSONFile(name, b, &top); err != nil {
		return nil, err
	}
	if top.Images == nil {
		return nil, fmt.Errorf("%s: not a Karpathy split file: no \"images\" array", name)
	}
	if len(top.Images) == 0 {
		return nil, fmt.Errorf("%s: no images (\"images\" is empty)", name)
	}
	want := map[string]bool{}
	if split != "" {
		for _, s := range strings.Split(split, "+") {
			if s == "" {
				return nil, fmt.Errorf("%s: bad split %q", name, split)
			}
			want[s] = true
		}
	}
	set := &CaptionSet{Format: CaptionFormatKarpathy}
	index := map[string]int{}
	present := map[string]int{}
	for i, im := range top.Images {
		if im.Filename == nil || *im.Filename == "" {
			return nil, fmt.Errorf("%s: images[%d]: missing \"filename\"", name, i)
		}
		if im.Split == nil || *im.Split == "" {
			return nil, fmt.Errorf("%s: images[%d] (%s): missing \"split\"", name, i, *im.Filename)
		}
		present[*im.Split]++
		id := *im.Filename
		if len(im.COCOID) > 0 {
			var err error
			if id, err = parseID(im.COCOID, "cocoid"); err != nil {
				return nil, fmt.Errorf("%s: images[%d] (%s): %v", name, i, *im.Filename, err)
			}
		}
		if j, dup := index[id]; dup {
			return nil, fmt.Errorf("%s: images[%d] (%s): image id %s already used by images[%d]", name, i, *im.Filename, id, j)
		}
		index[id] = i
		if split != "" && !want[*im.Split] {
			continue
		}
		if len(im.Sentences) == 0 {
			return nil, fmt.Errorf("%s: images[%d] (%s): no \"sentences\"", name, i, *im.Filename)
		}
		caps := make([]string, len(im.Sentences))
		for k, s := range im.Sentences {
			switch {
			case s.Raw != nil:
				caps[k] = *s.Raw
			case s.Tokens != nil:
				caps[k] = strings.Join(s.Tokens, " ")
			default:
				return nil, fmt.Errorf("%s: images[%d] (%s): sentences[%d]: neither \"raw\" nor \"tokens\"", name, i, *im.Filename, k)
			}
		}
		file := *im.Filename
		if im.Filepath != "" {
			file = im.Filepath + "/" + file
		}
		set.Images = append(set.Images, CaptionImage{ID: id, File: file, Captions: caps, Split: *im.Split})
	}
	for s := range want {
		if present[s] == 0 {
			var have []string
			for p := range present {
				have = append(have, p)
			}
			sort.Strings(have)
			return nil, fmt.Errorf("%s: no images in split %q (the file has splits %s)", name, s, strings.Join(have, ", "))
		}
	}
	return set, nil
}

// addCaption appends a caption to the image called file, creating it at the
// end on first sight.
func addCaption(set *CaptionSet, index map[string]int, file, caption string) {
	i, ok := index[file]
	if !ok {
		i = len(set.Images)
		index[file] = i
		set.Images = append(set.Images, CaptionImage{ID: file, File: file})
	}
	set.Images[i].Captions = append(set.Images[i].Captions, caption)
}

// ParseCaptionsJSONL parses a Hugging Face imagefolder metadata.jsonl: one
// JSON object per line with "file_name" and "text" (a string, or an array
// of strings); other fields are ignored and blank lines skipped. Lines
// sharing a file_name add captions to one image.
func ParseCaptionsJSONL(name string, r io.Reader) (*CaptionSet, error) {
	set := &CaptionSet{Format: CaptionFormatJSONL}
	index := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if line == 1 {
			text = trimBOM(text)
		}
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		if err := checkUTF8(name, text); err != nil {
			return nil, fmt.Errorf("%s:%d: not UTF-8; caption files must be UTF-8", name, line)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(text, &obj); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, fmt.Errorf("%s:%d: want a JSON object, got a JSON %s", name, line, te.Value)
			}
			return nil, fmt.Errorf("%s:%d: malformed JSON: %v", name, line, err)
		}
		file, err := parseCaption(obj["file_name"], "file_name")
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		if file == "" {
			return nil, fmt.Errorf("%s:%d: \"file_name\" is empty", name, line)
		}
		raw := bytes.TrimSpace(obj["text"])
		if len(raw) > 0 && raw[0] == '[' {
			var caps []string
			if err := json.Unmarshal(raw, &caps); err != nil {
				return nil, fmt.Errorf("%s:%d: \"text\" must be a string or an array of strings", name, line)
			}
			for _, c := range caps {
				addCaption(set, index, file, c)
			}
			continue
		}
		caption, err := parseCaption(raw, "text")
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		addCaption(set, index, file, caption)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %v", name, line+1, err)
	}
	if len(set.Images) == 0 {
		return nil, fmt.Errorf("%s: no captions (empty file)", name)
	}
	return set, nil
}

// ParseCaptionsCSV parses a CSV file whose header names the columns
// file_name and text (in any order, among others). Fields may be quoted;
// rows sharing a file_name add captions to one image.
func ParseCaptionsCSV(name string, r io.Reader) (*CaptionSet, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file (want a header with file_name and text)", name)
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	fileCol, textCol := -1, -1
	for i, h := range header {
		switch strings.TrimSpace(h) {
		case "file_name":
			fileCol = i
		case "text":
			textCol = i
		}
	}
	if fileCol < 0 || textCol < 0 {
		missing := "the file_name column"
		if fileCol >= 0 {
			missing = "the text column"
		} else if textCol < 0 {
			missing = "the file_name and text columns"
		}
		return nil, fmt.Errorf("%s:1: header %q lacks %s", name, strings.Join(header, ","), missing)
	}
	set := &CaptionSet{Format: CaptionFormatCSV}
	index := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		for i, f := range rec {
			if !utf8.ValidString(f) {
				return nil, fmt.Errorf("%s:%d: field %d is not UTF-8; caption files must be UTF-8", name, line, i+1)
			}
		}
		if rec[fileCol] == "" {
			return nil, fmt.Errorf("%s:%d: empty file_name", name, line)
		}
		addCaption(set, index, rec[fileCol], rec[textCol])
	}
	if len(set.Images) == 0 {
		return nil, fmt.Errorf("%s: no captions (only a header)", name)
	}
	return set, nil
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return fmt.Errorf("%s:%d: wrong number of fields (not as many as in the header)", name, pe.Line)
		}
		return fmt.Errorf("%s:%d:%d: malformed CSV: %v", name, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// jsonID writes an image id as a JSON integer when it is one, otherwise as
// a string, so that ids read from COCO files round-trip.
func jsonID(id string) json.RawMessage {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil && strconv.FormatInt(n, 10) == id {
		return json.RawMessage(id)
	}
	b, _ := json.Marshal(id)
	return b
}

// marshalNoEscape encodes v without HTML escaping and without the trailing
// newline.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// WriteCOCOResults writes results as a COCO results file, atomically (see
// fsutil.WriteAtomic), one result per line. Integer ids are written as
// JSON integers, as the COCO tools expect. Empty or repeated image ids are
// an error.
func WriteCOCOResults(path string, results []Result) error {
	type item struct {
		ImageID json.RawMessage `json:"image_id"`
		Caption string          `json:"caption"`
	}
	seen := make(map[string]bool, len(results))
	lines := make([][]byte, len(results))
	for i, r := range results {
		if r.ImageID == "" {
			return fmt.Errorf("writing %s: result %d has an empty image id", path, i)
		}
		if seen[r.ImageID] {
			return fmt.Errorf("writing %s: image %s has more than one result", path, r.ImageID)
		}
		seen[r.ImageID] = true
		b, err := marshalNoEscape(item{jsonID(r.ImageID), r.Caption})
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		lines[i] = b
	}
	return fsutil.WriteAtomic(path, func(f *os.File) error {
		w := bufio.NewWriter(f)
		w.WriteString("[")
		for i, l := range lines {
			if i > 0 {
				w.WriteString(",")
			}
			w.WriteString("\n")
			w.Write(l)
		}
		w.WriteString("\n]\n")
		return w.Flush()
	})
}

// WriteCOCOAnnotations writes a caption set as a COCO captions annotation
// file, atomically, with annotation ids numbered from 1. It also writes the
// "info", "licenses" and "type" fields that the original coco-caption tools
// copy when loading results. Empty or repeated image ids are an error.
func WriteCOCOAnnotations(path string, set *CaptionSet) error {
	type image struct {
		ID       json.RawMessage `json:"id"`
		FileName string          `json:"file_name"`
	}
	type annotation struct {
		ImageID json.RawMessage `json:"image_id"`
		ID      int             `json:"id"`
		Caption string          `json:"caption"`
	}
	doc := struct {
		Info        map[string]string `json:"info"`
		Licenses    []any             `json:"licenses"`
		Type        string            `json:"type"`
		Images      []image           `json:"images"`
		Annotations []annotation      `json:"annotations"`
	}{
		Info:        map[string]string{"description": "written by gitcap"},
		Licenses:    []any{},
		Type:        "captions",
		Images:      []image{},
		Annotations: []annotation{},
	}
	seen := map[string]bool{}
	for i, im := range set.Images {
		if im.ID == "" {
			return fmt.Errorf("writing %s: image %d has an empty id", path, i)
		}
		if seen[im.ID] {
			return fmt.Errorf("writing %s: image id %s appears twice", path, im.ID)
		}
		seen[im.ID] = true
		id := jsonID(im.ID)
		doc.Images = append(doc.Images, image{id, im.File})
		for _, c := range im.Captions {
			doc.Annotations = append(doc.Annotations, annotation{id, len(doc.Annotations) + 1, c})
		}
	}
	b, err := marshalNoEscape(doc)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return fsutil.WriteAtomic(path, func(f *os.File) error {
		if _, err := f.Write(b); err != nil {
			return err
		}
		_, err := f.Write([]byte{'\n'})
		return err
	})
}
