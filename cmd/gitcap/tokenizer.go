package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitcap/gitcap/configs"
	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/data/tokenizer"
	"github.com/gitcap/gitcap/gitmodel"
)

// runTokenizer implements "gitcap tokenizer": it builds a BERT WordPiece
// vocabulary from caption files and writes the tokenizer files (vocab.txt,
// tokenizer.json, tokenizer_config.json, special_tokens_map.json) that
// gitcap and transformers' BertTokenizer.from_pretrained read. With
// --preset it also writes the model preset (config.json, its vocab_size and
// special token ids set to the new tokenizer's) and a CLIP
// preprocessor_config.json, so that DIR/config.json is ready to be a
// training model_config.
func runTokenizer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tokenizer", stderr)
	var files stringList
	fs.Var(&files, "captions", "caption `file`: COCO captions JSON, Karpathy dataset_coco.json, metadata.jsonl or CSV (repeat for several)")
	out := fs.String("out", "", "output `directory` for the tokenizer files (required)")
	minCount := fs.Int("min-count", 1, "keep words seen at least this many times (rarer words are split into characters)")
	preset := fs.String("preset", "", "also write this model preset as DIR/config.json (a config.json `file`, or the name of a built-in preset: demo, tiny, git-base, git-large)")
	fs.Usage = func() {
		fs.header("gitcap tokenizer --captions FILE [--captions FILE ...] --out DIR [--min-count N] [--preset FILE|NAME]",
			"Builds a BERT-uncased WordPiece vocabulary from your captions: [PAD]=0 [UNK]=1 [CLS]=2\n"+
				"[SEP]=3 [MASK]=4, then every word seen --min-count times (most frequent first), then\n"+
				"every character alone and as a ##continuation. Writes vocab.txt, tokenizer.json,\n"+
				"tokenizer_config.json and special_tokens_map.json (BertTokenizer.from_pretrained reads them).")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q (caption files are given with --captions)", fs.Arg(0))}
	case len(files) == 0:
		return usageError{errors.New("at least one --captions file is required")}
	case *out == "":
		return usageError{errors.New("--out is required")}
	case *minCount < 1:
		return usageError{fmt.Errorf("--min-count must be at least 1, got %d", *minCount)}
	}
	if st, err := os.Stat(*out); err == nil && !st.IsDir() {
		return fmt.Errorf("--out %s: is a file, want a directory", *out)
	}
	var presetJSON []byte
	if *preset != "" {
		b, err := readPreset(*preset)
		if err != nil {
			return err
		}
		presetJSON = b
	}
	var caps []string
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		set, err := data.LoadCaptions(f, "")
		if err != nil {
			return err
		}
		if set.Format == data.CaptionFormatCOCOResults {
			return fmt.Errorf("%s is a COCO results file (generated captions); give reference captions", f)
		}
		n := 0
		for _, im := range set.Images {
			caps = append(caps, im.Captions...)
			n += len(im.Captions)
		}
		if n == 0 {
			return fmt.Errorf("%s: no captions", f)
		}
	}
	vocab := tokenizer.BuildVocab(caps, *minCount)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := tokenizer.WriteFiles(*out, vocab); err != nil {
		return err
	}
	tok, err := tokenizer.Load(*out)
	if err != nil {
		return fmt.Errorf("reading back the written tokenizer: %w", err)
	}
	fmt.Fprintf(stdout, "vocabulary: %d tokens from %d captions in %d file(s); [PAD]=%d [CLS]=%d [SEP]=%d\n",
		len(vocab), len(caps), len(files), tok.PAD(), tok.CLS(), tok.SEP())
	fmt.Fprintf(stdout, "wrote %s\n", strings.Join([]string{
		filepath.Join(*out, "vocab.txt"), filepath.Join(*out, "tokenizer.json"),
		filepath.Join(*out, "tokenizer_config.json"), filepath.Join(*out, "special_tokens_map.json")}, ", "))
	if presetJSON == nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(presetJSON, &m); err != nil {
		return fmt.Errorf("--preset %s: %w", *preset, err)
	}
	m["vocab_size"] = len(vocab)
	m["bos_token_id"], m["eos_token_id"], m["pad_token_id"] = tok.CLS(), tok.SEP(), tok.PAD()
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	mc, err := gitmodel.ParseConfig(*preset, b)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(*out, "config.json")
	if err := mc.Save(cfgPath); err != nil {
		return err
	}
	pre := filepath.Join(*out, "preprocessor_config.json")
	if err := writeDemoPreprocessor(pre, mc.Vision.ImageSize); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (preset %s: vocab_size %d, bos/eos/pad %d/%d/%d) and %s (CLIP, %dpx)\n",
		cfgPath, *preset, len(vocab), tok.CLS(), tok.SEP(), tok.PAD(), pre, mc.Vision.ImageSize)
	return nil
}

// readPreset reads a preset file, or a built-in preset by name.
func readPreset(name string) ([]byte, error) {
	if b, err := os.ReadFile(name); err == nil {
		return b, nil
	} else if !errors.Is(err, os.ErrNotExist) || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("--preset %w", err)
	}
	b, err := configs.Read(strings.TrimSuffix(name, ".json") + ".json")
	if err != nil {
		return nil, fmt.Errorf("--preset %s: no such file and no built-in preset of that name (demo, tiny, git-base, git-large)", name)
	}
	return b, nil
}
