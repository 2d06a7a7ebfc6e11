package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // DecodeConfig: sizes from the header
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/gitcap/gitcap/gitmodel"
)

// Limits bound what one request may ask for.
type Limits struct {
	MaxBodyBytes int64 // request body (413 above)
	MaxPixels    int   // width·height of one decoded image, read from its header before decoding (413 above)
	MaxImages    int   // images (frames included) per request
	MaxLength    int   // largest max_length (prompt included) a request may ask for
	Frames       int   // frames per sample: 1, or the video checkpoint's num_image_with_embedding
}

// Request is a parsed caption request.
type Request struct {
	Samples [][][]byte // per sample, its frames' encoded bytes
	Prompt  string
	Options gitmodel.GenerateOptions
}

// bytes is the size of the request's encoded images.
func (r *Request) bytes() int64 {
	var n int64
	for _, frames := range r.Samples {
		for _, f := range frames {
			n += int64(len(f))
		}
	}
	return n
}

// apiError is an error with the HTTP status it answers with.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status, fmt.Sprintf(format, args...)}
}

// options are the generation options of a request, named exactly as HF
// generate() names them (and the CLI flags, with - for _). A nil field keeps
// the CLI's default.
type options struct {
	MaxLength          *int     `json:"max_length"`
	MaxNewTokens       *int     `json:"max_new_tokens"`
	MinLength          *int     `json:"min_length"`
	MinNewTokens       *int     `json:"min_new_tokens"`
	NumBeams           *int     `json:"num_beams"`
	NumReturnSequences *int     `json:"num_return_sequences"`
	DoSample           *bool    `json:"do_sample"`
	Temperature        *float64 `json:"temperature"`
	TopK               *int     `json:"top_k"`
	TopP               *float64 `json:"top_p"`
	Seed               *int64   `json:"seed"`
	RepetitionPenalty  *float64 `json:"repetition_penalty"`
	NoRepeatNgramSize  *int     `json:"no_repeat_ngram_size"`
	LengthPenalty      *float64 `json:"length_penalty"`
	EarlyStopping      *bool    `json:"early_stopping"`
}

// jsonRequest is the JSON body: {"images": [...], "prompt": ..., options}.
type jsonRequest struct {
	Images []jsonImage `json:"images"`
	Prompt string      `json:"prompt"`
	options
}

// jsonImage is one sample: an image's bytes in base64 ("data"), or for a
// video checkpoint its frames. "url" is recognised only to refuse it.
type jsonImage struct {
	Data   *string     `json:"data"`
	Frames []jsonImage `json:"frames"`
	URL    *string     `json:"url"`
}

// ParseRequest reads a POST /v1/captions body (multipart/form-data with a
// repeatable "image" field, or JSON), checks it against lim and returns the
// request. Errors are *apiError with the status to answer. It never fetches
// anything: images travel in the request.
func ParseRequest(r *http.Request, lim Limits) (*Request, error) {
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, errorf(http.StatusUnsupportedMediaType, "Content-Type must be multipart/form-data or application/json")
	}
	var req *Request
	switch ct {
	case "application/json":
		req, err = parseJSON(r.Body, lim)
	case "multipart/form-data":
		req, err = parseMultipart(r.Body, params["boundary"], lim)
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, "Content-Type %q is not supported: send multipart/form-data or application/json", ct)
	}
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "request body exceeds the limit of %d bytes", mb.Limit)
		}
		return nil, err
	}
	if err := checkImages(req, lim); err != nil {
		return nil, err
	}
	return req, nil
}

// bodyError is the answer to a failure reading or parsing the body: the
// body-size limit's error as it is (ParseRequest makes it a 413), a read
// that ran past the connection's deadline a 408, anything else a 400.
func bodyError(err error, what string) error {
	var mb *http.MaxBytesError
	var ae *apiError
	switch {
	case errors.As(err, &mb):
		return err
	case errors.As(err, &ae): // a body too slow (uploadReader)
		return ae
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errorf(http.StatusRequestTimeout, "the request body was not read within the request timeout")
	}
	return errorf(http.StatusBadRequest, "%s: %v", what, err)
}

func parseJSON(body io.Reader, lim Limits) (*Request, error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var j jsonRequest
	if err := dec.Decode(&j); err != nil {
		return nil, bodyError(err, "invalid JSON body")
	}
	if dec.More() {
		return nil, errorf(http.StatusBadRequest, "invalid JSON body: more than one JSON value")
	}
	req := &Request{Prompt: j.Prompt}
	decode := func(i int, im jsonImage) ([]byte, error) {
		switch {
		case im.URL != nil:
			return nil, errorf(http.StatusBadRequest, "images[%d]: URLs are not fetched; send the image bytes base64-encoded in \"data\"", i)
		case im.Data == nil:
			return nil, errorf(http.StatusBadRequest, "images[%d]: missing \"data\" (the image file, base64-encoded)", i)
		}
		b, err := base64.StdEncoding.DecodeString(*im.Data)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "images[%d]: \"data\" is not valid base64: %v", i, err)
		}
		return b, nil
	}
	for i, im := range j.Images {
		if len(im.Frames) > 0 {
			if im.Data != nil || im.URL != nil {
				return nil, errorf(http.StatusBadRequest, "images[%d]: give either \"data\" or \"frames\", not both", i)
			}
			var s [][]byte
			for _, f := range im.Frames {
				if len(f.Frames) > 0 {
					return nil, errorf(http.StatusBadRequest, "images[%d]: frames cannot nest", i)
				}
				b, err := decode(i, f)
				if err != nil {
					return nil, err
				}
				s = append(s, b)
			}
			req.Samples = append(req.Samples, s)
			continue
		}
		b, err := decode(i, im)
		if err != nil {
			return nil, err
		}
		req.Samples = append(req.Samples, [][]byte{b})
	}
	o, err := j.options.resolve(lim)
	if err != nil {
		return nil, err
	}
	req.Options = o
	return req, nil
}

// parseMultipart reads "image" file parts (for a video checkpoint each
// run of Frames consecutive parts is one sample), a "prompt" field and
// option fields named as in JSON.
func parseMultipart(body io.Reader, boundary string, lim Limits) (*Request, error) {
	if boundary == "" {
		return nil, errorf(http.StatusBadRequest, "multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(body, boundary)
	req := &Request{}
	var frames [][]byte
	fields := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bodyError(err, "invalid multipart body")
		}
		name := p.FormName()
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, bodyError(err, "invalid multipart body")
		}
		switch name {
		case "image":
			frames = append(frames, b)
			if lim.MaxImages > 0 && len(frames) > lim.MaxImages {
				return nil, errorf(http.StatusRequestEntityTooLarge, "more than %d images in one request", lim.MaxImages)
			}
		case "url":
			return nil, errorf(http.StatusBadRequest, "URLs are not fetched; upload the image file in the \"image\" field")
		default:
			if _, dup := fields[name]; dup {
				return nil, errorf(http.StatusBadRequest, "field %q given twice", name)
			}
			fields[name] = string(b)
		}
	}
	f := max(lim.Frames, 1)
	if len(frames)%f != 0 {
		return nil, errorf(http.StatusBadRequest, "this video checkpoint takes %d frames per sample: send the frames of each sample as consecutive \"image\" parts; got %d parts", f, len(frames))
	}
	for i := 0; i < len(frames); i += f {
		req.Samples = append(req.Samples, frames[i:i+f])
	}
	req.Prompt = fields["prompt"]
	delete(fields, "prompt")
	var o options
	if err := o.fromFields(fields); err != nil {
		return nil, err
	}
	opts, err := o.resolve(lim)
	if err != nil {
		return nil, err
	}
	req.Options = opts
	return req, nil
}

// fromFields parses form fields into the options.
func (o *options) fromFields(fields map[string]string) error {
	ints := map[string]**int{
		"max_length": &o.MaxLength, "max_new_tokens": &o.MaxNewTokens, "min_length": &o.MinLength,
		"min_new_tokens": &o.MinNewTokens, "num_beams": &o.NumBeams, "num_return_sequences": &o.NumReturnSequences,
		"top_k": &o.TopK, "no_repeat_ngram_size": &o.NoRepeatNgramSize,
	}
	floats := map[string]**float64{
		"temperature": &o.Temperature, "top_p": &o.TopP, "repetition_penalty": &o.RepetitionPenalty, "length_penalty": &o.LengthPenalty,
	}
	bools := map[string]**bool{"do_sample": &o.DoSample, "early_stopping": &o.EarlyStopping}
	for name, v := range fields {
		v = strings.TrimSpace(v)
		if v == "" {
			continue // an empty form field keeps the default
		}
		if p, ok := ints[name]; ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return errorf(http.StatusBadRequest, "%s: %q is not an integer", name, v)
			}
			*p = &n
		} else if p, ok := floats[name]; ok {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return errorf(http.StatusBadRequest, "%s: %q is not a number", name, v)
			}
			*p = &x
		} else if p, ok := bools[name]; ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errorf(http.StatusBadRequest, "%s: %q is not true or false", name, v)
			}
			*p = &b
		} else if name == "seed" {
			s, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errorf(http.StatusBadRequest, "seed: %q is not an integer", v)
			}
			o.Seed = &s
		} else {
			return errorf(http.StatusBadRequest, "unknown field %q", name)
		}
	}
	return nil
}

// resolve applies the CLI's defaults (HF's: max_length 20, top_k 50, ...)
// and the server's limits.
func (o options) resolve(lim Limits) (gitmodel.GenerateOptions, error) {
	g := gitmodel.GenerateOptions{MaxLength: 20, NumBeams: 1, LengthPenalty: 1, NumReturnSequences: 1,
		RepetitionPenalty: 1, Temperature: 1, TopK: 50, TopP: 1}
	set := func(dst *int, p *int) {
		if p != nil {
			*dst = *p
		}
	}
	setF := func(dst *float64, p *float64) {
		if p != nil {
			*dst = *p
		}
	}
	set(&g.MaxLength, o.MaxLength)
	set(&g.MaxNewTokens, o.MaxNewTokens)
	set(&g.MinLength, o.MinLength)
	set(&g.MinNewTokens, o.MinNewTokens)
	set(&g.NumBeams, o.NumBeams)
	set(&g.NumReturnSequences, o.NumReturnSequences)
	set(&g.TopK, o.TopK)
	set(&g.NoRepeatNgramSize, o.NoRepeatNgramSize)
	setF(&g.Temperature, o.Temperature)
	setF(&g.TopP, o.TopP)
	setF(&g.RepetitionPenalty, o.RepetitionPenalty)
	setF(&g.LengthPenalty, o.LengthPenalty)
	if o.DoSample != nil {
		g.DoSample = *o.DoSample
	}
	if o.EarlyStopping != nil {
		g.EarlyStopping = *o.EarlyStopping
	}
	if o.Seed != nil {
		g.Seed = *o.Seed
	}
	if err := g.Check(); err != nil {
		return g, errorf(http.StatusBadRequest, "%v", err)
	}
	// max_new_tokens overrides max_length (the prompt's length is checked
	// once it is tokenized).
	if lim.MaxLength > 0 && ((g.MaxNewTokens == 0 && g.MaxLength > lim.MaxLength) || g.MaxNewTokens >= lim.MaxLength) {
		return g, errorf(http.StatusBadRequest, "max_length (or the prompt plus max_new_tokens) may be at most %d on this server", lim.MaxLength)
	}
	if g.LengthPenalty == 0 {
		g.LengthPenalty = 1e-300 // L^1e-300 == 1: HF's length_penalty=0, as the CLI
	}
	return g, nil
}

// checkImages enforces the image count and, from each image's header
// before anything is decoded, its pixel count.
func checkImages(req *Request, lim Limits) error {
	if len(req.Samples) == 0 {
		return errorf(http.StatusBadRequest, "no images: send at least one (multipart field \"image\", or JSON \"images\")")
	}
	f := max(lim.Frames, 1)
	n := 0
	for i, s := range req.Samples {
		if len(s) != f {
			if f == 1 {
				return errorf(http.StatusBadRequest, "images[%d]: this checkpoint takes one image per sample, got %d frames", i, len(s))
			}
			return errorf(http.StatusBadRequest, "images[%d]: this video checkpoint takes %d frames per sample, got %d", i, f, len(s))
		}
		n += len(s)
	}
	if lim.MaxImages > 0 && n > lim.MaxImages {
		return errorf(http.StatusRequestEntityTooLarge, "%d images in one request; the limit is %d", n, lim.MaxImages)
	}
	for i, s := range req.Samples {
		for j, b := range s {
			name := fmt.Sprintf("images[%d]", i)
			if f > 1 {
				name = fmt.Sprintf("images[%d] frame %d", i, j)
			}
			if len(b) == 0 {
				return errorf(http.StatusBadRequest, "%s: empty image", name)
			}
			cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
			if err != nil {
				return errorf(http.StatusBadRequest, "%s: not a readable PNG, JPEG or GIF image: %v", name, err)
			}
			if cfg.Width <= 0 || cfg.Height <= 0 {
				return errorf(http.StatusBadRequest, "%s: %s image of size %dx%d", name, format, cfg.Width, cfg.Height)
			}
			if lim.MaxPixels > 0 && int64(cfg.Width)*int64(cfg.Height) > int64(lim.MaxPixels) {
				return errorf(http.StatusRequestEntityTooLarge, "%s: %dx%d %s image has more than the %d pixels this server decodes", name, cfg.Width, cfg.Height, format, lim.MaxPixels)
			}
		}
	}
	return nil
}
