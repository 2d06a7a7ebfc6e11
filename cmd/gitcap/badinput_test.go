package main

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/data/tensorfile"
)

// badInputCases is the CLI bad-input table (issue 13 item 6): one line per
// case. cmd is the command line split on spaces; leading NAME=VALUE words
// set environment variables; $T is the case files' directory (see
// badInputFiles), $MODEL the git-tiny checkpoint, $VIDEO git-tiny-video,
// $IMG a good image, $IMAGES the fixture image directory. code is the
// exit status; every word of want must appear in stderr. stdout "full"
// writes standard output to /dev/full.
var badInputCases = []struct {
	name   string
	cmd    string
	code   int
	want   []string
	stdout string
}{
	{"unknown command", "nosuchcmd", 2, []string{"unknown command", "nosuchcmd"}, ""},
	// caption: flags
	{"caption without --model", "caption $IMG", 2, []string{"--model is required"}, ""},
	{"caption without images", "caption --model $MODEL", 2, []string{"no images"}, ""},
	{"caption misspelt flag", "caption --modle $MODEL $IMG", 2, []string{"unknown flag --modle", "did you mean --model"}, ""},
	{"caption snake_case flag", "caption --model $MODEL --batch_size 2 $IMG", 2, []string{"--batch_size", "did you mean --batch-size"}, ""},
	{"caption flag without value", "caption --model $MODEL $IMG --max-length", 2, []string{"--max-length needs a value"}, ""},
	{"caption non-integer flag", "caption --model $MODEL --max-length abc $IMG", 2, []string{"--max-length", "abc"}, ""},
	{"caption NaN length penalty", "caption --model $MODEL --num-beams 2 --length-penalty NaN $IMG", 2, []string{"--length-penalty", "finite"}, ""},
	{"caption Inf temperature", "caption --model $MODEL --do-sample --temperature Inf $IMG", 2, []string{"--temperature", "finite"}, ""},
	{"caption NaN repetition penalty", "caption --model $MODEL --repetition-penalty nan $IMG", 2, []string{"--repetition-penalty", "finite"}, ""},
	{"caption top-p above 1", "caption --model $MODEL --do-sample --top-p 1.5 $IMG", 2, []string{"--top-p", "(0, 1]", "1.5"}, ""},
	{"caption top-p 0", "caption --model $MODEL --do-sample --top-p 0 $IMG", 2, []string{"--top-p", "(0, 1]"}, ""},
	{"caption negative top-k", "caption --model $MODEL --do-sample --top-k -1 $IMG", 2, []string{"--top-k", "-1"}, ""},
	{"caption zero beams", "caption --model $MODEL --num-beams 0 $IMG", 2, []string{"--num-beams", "at least 1"}, ""},
	{"caption zero return sequences", "caption --model $MODEL --num-return-sequences 0 $IMG", 2, []string{"--num-return-sequences"}, ""},
	{"caption zero repetition penalty", "caption --model $MODEL --repetition-penalty 0 $IMG", 2, []string{"--repetition-penalty", "positive"}, ""},
	{"caption negative max-new-tokens", "caption --model $MODEL --max-new-tokens -3 $IMG", 2, []string{"--max-new-tokens", "negative"}, ""},
	{"caption zero batch size", "caption --model $MODEL --batch-size 0 $IMG", 2, []string{"--batch-size", "at least 1"}, ""},
	{"caption unknown dtype", "caption --model $MODEL --dtype fp16 $IMG", 2, []string{"--dtype", `"fp16"`, "fp32, bf16 or bf16-full"}, ""},
	{"eval unknown dtype", "eval --model $MODEL --annotations $T/ann.json --dtype int4", 2, []string{"--dtype", `"int4"`, "fp32, bf16 or bf16-full"}, ""},
	{"serve unknown dtype", "serve --model $MODEL --dtype f32x", 2, []string{"--dtype", `"f32x"`, "fp32, bf16 or bf16-full"}, ""},
	// caption: model
	{"caption bare model name", "caption --model nosuchdir $IMG", 1, []string{"nosuchdir", "no such checkpoint directory", "owner/name"}, ""},
	{"caption model is a file", "caption --model $T/bad.json $IMG", 1, []string{"bad.json", "is a file"}, ""},
	{"caption model without weights", "caption --model $T/noweights $IMG", 1, []string{"noweights", "model.safetensors"}, ""},
	{"caption model with broken config", "caption --model $T/badconfig $IMG", 1, []string{"config.json"}, ""},
	{"caption hub unreachable", "HF_ENDPOINT=http://127.0.0.1:9 HF_HUB_OFFLINE= HF_HOME=$T/hf caption --model owner/name $IMG", 1, []string{"owner/name", "unreachable", "HF_HUB_OFFLINE=1", "local checkpoint directory"}, ""},
	{"caption offline and not cached", "HF_HUB_OFFLINE=1 HF_HOME=$T/hf caption --model owner/name $IMG", 1, []string{"owner/name", "offline"}, ""},
	// caption: images
	{"caption missing image", "caption --model $MODEL $T/nope.png", 1, []string{"nope.png"}, ""},
	{"caption text file as image", "caption --model $MODEL $T/notimage.png", 1, []string{"notimage.png"}, ""},
	{"caption truncated png", "caption --model $MODEL $T/trunc.png", 1, []string{"trunc.png"}, ""},
	{"caption folder for an image model", "caption --model $MODEL $T/dir", 1, []string{"dir", "is a directory", "--images-from"}, ""},
	{"caption missing image list", "caption --model $MODEL --images-from $T/nolist.txt", 1, []string{"nolist.txt"}, ""},
	{"caption empty image list", "caption --model $MODEL --images-from $T/emptylist.txt", 1, []string{"emptylist.txt", "empty"}, ""},
	{"caption video model given one image", "caption --model $VIDEO $IMG", 1, []string{"frames"}, ""},
	{"caption wrong --frames", "caption --model $MODEL --frames 3 $IMG", 1, []string{"--frames 3", "1 frames"}, ""},
	{"caption stdout full", "caption --model $MODEL $IMG", 1, []string{"standard output"}, "full"},
	{"caption json stdout full", "caption --model $MODEL --json $IMG", 1, []string{"standard output"}, "full"},
	// eval
	{"eval without annotations", "eval --model $MODEL", 2, []string{"--annotations"}, ""},
	{"eval stray argument", "eval --model $MODEL --annotations $T/ann.json extra", 2, []string{"unexpected argument", "extra"}, ""},
	{"eval bad shard", "eval --model $MODEL --annotations $T/ann.json --shard 3/2", 2, []string{"--shard", "3/2"}, ""},
	{"eval NaN length penalty", "eval --model $MODEL --annotations $T/ann.json --length-penalty NaN", 2, []string{"--length-penalty", "finite"}, ""},
	{"eval missing annotations", "eval --model $MODEL --annotations $T/nope.json", 1, []string{"nope.json"}, ""},
	{"eval malformed annotations", "eval --model $MODEL --annotations $T/bad.json", 1, []string{"bad.json"}, ""},
	{"eval results file as annotations", "eval --model $MODEL --annotations $T/results.json", 1, []string{"results.json", "results file"}, ""},
	{"eval out is a directory", "eval --model $MODEL --annotations $T/ann.json --images $IMAGES --out $T/dir", 1, []string{"--out", "dir", "is a directory"}, ""},
	{"eval out in a missing directory", "eval --model $MODEL --annotations $T/ann.json --images $IMAGES --out $T/nodir/res.json", 1, []string{"--out", "nodir", "does not exist"}, ""},
	{"eval images not beside the annotations", "eval --model $MODEL --annotations $T/ann.json --out $T/res.json", 1, []string{"ann.json", "cats.png", "--images"}, ""},
	{"eval one image missing", "eval --model $MODEL --annotations $T/ann2.json --images $IMAGES --max-length 5 --out $T/res2.json", 1, []string{"missing.png", "2/2 images: 1 captioned, 1 failed", "1 of 2 images"}, ""},
	{"caption progress counts failures", "caption --model $MODEL $IMG $T/nope.png", 1, []string{"2/2 images: 1 captioned, 1 failed", "nope.png"}, ""},
	{"eval stdout full", "eval --model $MODEL --annotations $T/ann.json --images $IMAGES --max-length 5", 1, []string{"standard output"}, "full"},
	// score
	{"score without annotations", "score --results $T/results.json", 2, []string{"--annotations"}, ""},
	{"score without results", "score --annotations $T/ann.json", 2, []string{"--results"}, ""},
	{"score unknown image id", "score --annotations $T/ann.json --results $T/results-unknown.json", 1, []string{"results-unknown.json", "not in"}, ""},
	{"score malformed results", "score --annotations $T/ann.json --results $T/bad.json", 1, []string{"bad.json"}, ""},
	{"score missing idf corpus", "score --annotations $T/ann.json --results $T/results.json --idf-from $T/nope.json", 1, []string{"nope.json"}, ""},
	{"score stdout full", "score --annotations $T/ann.json --results $T/results.json", 1, []string{"standard output"}, "full"},
	// train
	{"train unknown snake_case flag", "train --config $T/good.yaml --batch_sise 4", 2, []string{"--batch_sise", "did you mean --batch-size"}, ""},
	{"train missing config", "train --config $T/nope.yaml", 2, []string{"nope.yaml"}, ""},
	{"train malformed yaml", "train --config $T/bad.yaml", 2, []string{"bad.yaml"}, ""},
	{"train unknown yaml field", "train --config $T/unknown.yaml", 2, []string{"unknown.yaml", "unknown field", "foo"}, ""},
	{"train no training data", "train --model $MODEL", 2, []string{"train.path", "required"}, ""},
	{"train epochs and steps", "train --config $T/good.yaml --epochs 1 --steps 2", 2, []string{"--epochs", "--steps", "not both"}, ""},
	{"train negative lr", "train --config $T/good.yaml --lr -1", 2, []string{"lr", "-1"}, ""},
	{"train bare model name", "train --config $T/good.yaml --model nosuchdir", 1, []string{"nosuchdir", "no such checkpoint directory"}, ""},
	{"train resume missing", "train --resume $T/nope", 1, []string{"--resume", "nope"}, ""},
	{"train resume not a run", "train --resume $T/dir", 1, []string{"config.yaml"}, ""},
	{"train stray argument", "train --config $T/good.yaml extra", 2, []string{"unexpected argument", "extra"}, ""},
	// tokenizer
	{"tokenizer without captions", "tokenizer --out $T/tok", 2, []string{"--captions"}, ""},
	{"tokenizer without out", "tokenizer --captions $T/ann.json", 2, []string{"--out"}, ""},
	{"tokenizer missing captions", "tokenizer --captions $T/nope.json --out $T/tok", 1, []string{"nope.json"}, ""},
	{"tokenizer malformed captions", "tokenizer --captions $T/bad.json --out $T/tok", 1, []string{"bad.json"}, ""},
	{"tokenizer out is a file", "tokenizer --captions $T/ann.json --out $T/bad.json", 1, []string{"bad.json", "is a file"}, ""},
	{"tokenizer unknown preset", "tokenizer --captions $T/ann.json --out $T/tok --preset nosuch", 1, []string{"--preset", "nosuch"}, ""},
	{"tokenizer zero min-count", "tokenizer --captions $T/ann.json --out $T/tok --min-count 0", 2, []string{"--min-count"}, ""},
	// synth, forward
	{"synth without out", "synth", 2, []string{"--out is required"}, ""},
	{"synth bad size", "synth --out $T/s --size 5", 2, []string{"--size", "5"}, ""},
	{"forward without inputs", "forward --model $MODEL", 2, []string{"--inputs"}, ""},
	{"forward malformed inputs", "forward --model $MODEL --inputs $T/bad.json --out $T/o.safetensors", 1, []string{"bad.json"}, ""},
	// checked at load, before any work (issue 13 items 1-3)
	{"caption NaN weight", "caption --model $T/nanmodel $IMG", 1, []string{"nanmodel/model.safetensors", `tensor "output.bias"`, "non-finite", "index 5"}, ""},
	{"caption duplicated safetensors key", "caption --model $T/dupkey $IMG", 1, []string{"dupkey/model.safetensors", `"output.bias" appears more than once`}, ""},
	{"caption config without hidden_size", "caption --model $T/nohidden $IMG", 1, []string{"nohidden/config.json", "hidden_size"}, ""},
	{"caption decompression bomb", "caption --model $MODEL $T/bomb.png", 1, []string{"bomb.png", "18000x18000", "exceeds the limit of 178956970 pixels", "--max-image-pixels"}, ""},
	{"caption bomb without a pixel limit", "caption --model $MODEL --max-image-pixels -1 $T/bomb.png", 1, []string{"bomb.png", "truncated"}, ""},
	{"caption image above a set pixel limit", "caption --model $MODEL --max-image-pixels 1000 $IMG", 1, []string{"cats.png", "exceeds the limit of 1000 pixels"}, ""},
	{"caption image above a set byte limit", "caption --model $MODEL --max-image-bytes 100 $IMG", 1, []string{"cats.png", "100 bytes"}, ""},
	{"eval annotations with no images", "eval --model $MODEL --annotations $T/noimages.json --images $IMAGES", 1, []string{"noimages.json", "no images"}, ""},
	{"eval caption CSV not UTF-8", "eval --model $MODEL --annotations $T/latin1.csv --images $IMAGES", 1, []string{"latin1.csv:2", "not UTF-8"}, ""},
	{"train max-text-len beyond the model", "train --config $T/good.yaml --max-text-len 100", 1, []string{"max_text_len 100", "max_position_embeddings 64"}, ""},
}

// badInputFiles writes the files the cases refer to under $T.
func badInputFiles(t *testing.T, dir string) {
	t.Helper()
	model := fixtures.Path(t, "git-tiny")
	cats, err := os.ReadFile(fixtures.Path(t, "images", "cats.png"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(model, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"bad.json":              "{not json",
		"notimage.png":          "this is not a picture\n",
		"trunc.png":             string(cats[:200]),
		"emptylist.txt":         "# nothing\n",
		"ann.json":              `{"images":[{"id":1,"file_name":"cats.png"}],"annotations":[{"image_id":1,"caption":"two cats on a couch"}]}`,
		"ann2.json":             `{"images":[{"id":1,"file_name":"cats.png"},{"id":2,"file_name":"missing.png"}],"annotations":[{"image_id":1,"caption":"two cats"},{"image_id":2,"caption":"a dog"}]}`,
		"results.json":          `[{"image_id":1,"caption":"two cats"}]`,
		"results-unknown.json":  `[{"image_id":7,"caption":"a dog"}]`,
		"bad.yaml":              "lr: [1\n",
		"unknown.yaml":          "model: m\ntrain: {path: t.json}\nfoo: 1\n",
		"good.yaml":             "model: " + model + "\ntrain: {path: " + filepath.Join(dir, "ann.json") + "}\nout_dir: " + filepath.Join(dir, "run") + "\nsteps: 1\n",
		"noweights/config.json": string(cfg),
		"badconfig/config.json": "{",
		"dir/.keep":             "",
		"noimages.json":         `{"images":[],"annotations":[]}`,
		"latin1.csv":            "file_name,text\ncats.png,a caf\xe9 cat\n",
		"bomb.png":              string(headerOnlyPNG(18000, 18000)),
	}
	for name, body := range loadCheckFiles(t, model) {
		files[name] = body
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBadInputTable runs every bad-input case through the command's real
// entry point and checks the exit status, the key words of the message
// (the file and the problem) and that nothing panicked.
func TestBadInputTable(t *testing.T) {
	if len(badInputCases) < 40 {
		t.Fatalf("only %d cases", len(badInputCases))
	}
	dir := t.TempDir()
	badInputFiles(t, dir)
	vars := strings.NewReplacer("$T", dir, "$MODEL", fixtures.Path(t, "git-tiny"), "$VIDEO", fixtures.Path(t, "git-tiny-video"),
		"$IMG", fixtures.Path(t, "images", "cats.png"), "$IMAGES", fixtures.Path(t, "images"))
	for _, c := range badInputCases {
		t.Run(c.name, func(t *testing.T) {
			args := strings.Fields(vars.Replace(c.cmd))
			for len(args) > 0 && strings.Contains(args[0], "=") && !strings.HasPrefix(args[0], "-") {
				k, v, _ := strings.Cut(args[0], "=")
				t.Setenv(k, v)
				args = args[1:]
			}
			var stdout io.Writer = &bytes.Buffer{}
			if c.stdout == "full" {
				f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
				if err != nil {
					t.Skip("no /dev/full")
				}
				defer f.Close()
				stdout = f
			}
			var stderr bytes.Buffer
			code := func() (code int) {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic: %v", r)
					}
				}()
				return realMain(args, stdout, &stderr)
			}()
			msg := stderr.String()
			if showBadInput {
				t.Logf("exit %d: %s", code, msg)
			}
			if code != c.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, c.code, msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, msg)
				}
			}
			for _, bad := range []string{"panic:", "goroutine ", "runtime error"} {
				if strings.Contains(msg, bad) {
					t.Errorf("stderr has %q:\n%s", bad, msg)
				}
			}
		})
	}
}

func init() {
	if os.Getenv("GITCAP_SHOW_BAD_INPUT") != "" {
		showBadInput = true
	}
}

var showBadInput bool

// loadCheckFiles returns the checkpoints that must fail at load: git-tiny
// with a NaN in output.bias, with output.bias listed twice in the
// safetensors header, and with a config.json that lacks hidden_size.
func loadCheckFiles(t *testing.T, model string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"config.json", "preprocessor_config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		b, err := os.ReadFile(filepath.Join(model, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{"nanmodel", "dupkey", "nohidden"} {
			out[dir+"/"+name] = string(b)
		}
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(out["nohidden/config.json"]), &cfg); err != nil {
		t.Fatal(err)
	}
	delete(cfg, "hidden_size")
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out["nohidden/config.json"] = string(b)
	weights, err := os.ReadFile(filepath.Join(model, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	out["nohidden/model.safetensors"] = string(weights)

	f, err := tensorfile.Open(filepath.Join(model, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	tensors := map[string]tensorfile.Tensor{}
	for _, name := range f.Names() {
		if tensors[name], err = f.Tensor(name); err != nil {
			t.Fatal(err)
		}
	}
	tensors["output.bias"].F32[5] = float32(math.NaN())
	nan := filepath.Join(t.TempDir(), "nan.safetensors")
	if err := tensorfile.Write(nan, tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if b, err = os.ReadFile(nan); err != nil {
		t.Fatal(err)
	}
	out["nanmodel/model.safetensors"] = string(b)

	// A header naming output.bias twice (the JSON object's second entry
	// would silently win in a map-based reader).
	n := binary.LittleEndian.Uint64(weights[:8])
	header := string(weights[8 : 8+n])
	i := strings.Index(header, `"output.bias":{`)
	if i < 0 {
		t.Fatal("git-tiny's header has no output.bias entry")
	}
	j := i + strings.Index(header[i:], "}") + 1
	dup := header[:j] + "," + header[i:j] + header[j:]
	buf := binary.LittleEndian.AppendUint64(nil, uint64(len(dup)))
	out["dupkey/model.safetensors"] = string(buf) + dup + string(weights[8+n:])
	return out
}

// headerOnlyPNG declares w x h 16-bit RGBA pixels in 69 bytes: a
// decompression bomb that must cost nothing to refuse.
func headerOnlyPNG(w, h uint32) []byte {
	chunk := func(typ string, data []byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		out = append(out, typ...)
		out = append(out, data...)
		return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, w), h)
	ihdr = append(ihdr, 16, 6, 0, 0, 0)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte{0})
	zw.Close()
	out := append([]byte("\x89PNG\r\n\x1a\n"), chunk("IHDR", ihdr)...)
	out = append(out, chunk("IDAT", z.Bytes())...)
	return append(out, chunk("IEND", nil)...)
}
