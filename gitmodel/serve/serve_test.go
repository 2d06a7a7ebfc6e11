package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
)

var (
	pipeMu sync.Mutex
	pipes  = map[string]*caption.Pipeline{}
)

// pipeline loads a fixture checkpoint once per test binary (read-only).
func pipeline(t testing.TB, name string) *caption.Pipeline {
	t.Helper()
	pipeMu.Lock()
	defer pipeMu.Unlock()
	if p, ok := pipes[name]; ok {
		return p
	}
	p, err := caption.LoadPipeline(fixtures.Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	pipes[name] = p
	return p
}

func newServer(t testing.TB, model string, o Options) (*Server, *httptest.Server) {
	t.Helper()
	s := newBareServer(t, model, o)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close) // before s.Close (cleanups run last first)
	return s, hs
}

// newBareServer is New with the tests' batch (8 rows, max_length 60),
// closed when the test ends.
func newBareServer(t testing.TB, model string, o Options) *Server {
	t.Helper()
	if o.Batch.MaxText == 0 {
		o.Batch.MaxText = 60
	}
	if o.Batch.Rows == 0 {
		o.Batch.Rows = 8
	}
	s, err := New(pipeline(t, model), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// serving runs s.Serve on a loopback port, the real http.Server with its
// connection timeouts: stop starts the drain, served reports Serve's
// result.
func serving(t *testing.T, s *Server, grace time.Duration) (url string, stop func(), served <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln, grace) }()
	return "http://" + ln.Addr().String(), cancel, errc
}

func fixtureImage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, "images", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// multipartBody builds a form with "image" parts and fields.
func multipartBody(t testing.TB, images [][]byte, fields map[string]string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i, im := range images {
		w, err := mw.CreateFormFile("image", fmt.Sprintf("img%d.png", i))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(im)
	}
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

type response struct {
	Results []Result `json:"results"`
	Error   *struct {
		Message string `json:"message"`
		Status  int    `json:"status"`
	} `json:"error"`
}

func post(t testing.TB, url, ctype string, body []byte, header map[string]string) (int, http.Header, response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/captions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r response
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("answer is not JSON (%d): %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, r
}

func jsonBody(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// cliCaptions is what `gitcap caption --model M [opts] IMAGES...` computes
// (Pipeline.Caption with a Generator, one image per batch).
func cliCaptions(t testing.TB, model string, images []string, prompt string, o gitmodel.GenerateOptions) []Result {
	t.Helper()
	p := pipeline(t, model)
	var samples []caption.Sample
	for _, im := range images {
		var frames []string
		for _, f := range strings.Split(im, ",") {
			frames = append(frames, fixtures.Path(t, "images", f))
		}
		samples = append(samples, caption.Sample{Name: im, Frames: frames})
	}
	g := p.Model.NewGenerator()
	defer g.Close()
	caps, err := p.Caption(context.Background(), g, samples, prompt, 1, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []Result
	for _, c := range caps {
		if c.Err != nil {
			t.Fatal(c.Err)
		}
		r := Result{Caption: c.Text, IDs: c.IDs}
		if c.Beam {
			sc := c.Score
			r.Score = &sc
		}
		out = append(out, r)
	}
	return out
}

func sameResults(t *testing.T, what string, got, want []Result) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d results, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Caption != w.Caption || !reflect.DeepEqual(g.IDs, w.IDs) || (g.Score == nil) != (w.Score == nil) ||
			(g.Score != nil && math.Abs(*g.Score-*w.Score) > 1e-5) {
			t.Errorf("%s[%d]: got %q %v (score %v), want %q %v (score %v)", what, i, g.Caption, g.IDs, fmtScore(g.Score), w.Caption, w.IDs, fmtScore(w.Score))
		}
	}
}

func fmtScore(p *float64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprintf("%.9f", *p)
}

var cliDefaults = gitmodel.GenerateOptions{MaxLength: 20, NumBeams: 1, LengthPenalty: 1, NumReturnSequences: 1, RepetitionPenalty: 1, Temperature: 1, TopK: 50, TopP: 1}

// TestCaptionsEqualTheCLIUnderConcurrency: 16 concurrent clients (greedy,
// beam, sampled and prompted requests, multipart and JSON) each get
// exactly what `gitcap caption` prints for their images, in input order.
func TestCaptionsEqualTheCLIUnderConcurrency(t *testing.T) {
	_, hs := newServer(t, "git-tiny", Options{})
	imgs := []string{"cats.png", "shape_red_square_on_white.png", "sun_q90.jpg", "stripes_50x150.png", "gray_L_40x30.png", "shape_white_cross_on_red.png"}
	type call struct {
		images []string
		prompt string
		fields map[string]string
		opts   gitmodel.GenerateOptions
		json   bool
	}
	beam := cliDefaults
	beam.NumBeams, beam.NumReturnSequences = 3, 2
	sample := cliDefaults
	sample.DoSample, sample.Temperature, sample.Seed, sample.NumReturnSequences = true, 2, 11, 2
	calls := []call{
		{imgs[:3], "", nil, cliDefaults, false},
		{imgs[3:], "", nil, cliDefaults, true},
		{imgs[1:4], "", map[string]string{"num_beams": "3", "num_return_sequences": "2"}, beam, false},
		{imgs[2:5], "", map[string]string{"num_beams": "3", "num_return_sequences": "2"}, beam, true},
		{imgs[:2], "", map[string]string{"do_sample": "true", "temperature": "2", "seed": "11", "num_return_sequences": "2"}, sample, true},
		{imgs[4:], "a photo of", nil, cliDefaults, false},
	}
	want := make([][]Result, len(calls))
	for i, c := range calls {
		want[i] = cliCaptions(t, "git-tiny", c.images, c.prompt, c.opts)
	}
	var wg sync.WaitGroup
	for client := range 16 {
		c := calls[client%len(calls)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var datas [][]byte
			for _, im := range c.images {
				datas = append(datas, fixtureImage(t, im))
			}
			var status int
			var r response
			if c.json {
				req := map[string]any{}
				var ims []map[string]string
				for _, d := range datas {
					ims = append(ims, map[string]string{"data": b64(d)})
				}
				req["images"] = ims
				if c.prompt != "" {
					req["prompt"] = c.prompt
				}
				for k, v := range c.fields {
					var x any
					json.Unmarshal([]byte(v), &x)
					req[k] = x
				}
				status, _, r = post(t, hs.URL, "application/json", jsonBody(t, req), nil)
			} else {
				fields := map[string]string{}
				for k, v := range c.fields {
					fields[k] = v
				}
				if c.prompt != "" {
					fields["prompt"] = c.prompt
				}
				ct, body := multipartBody(t, datas, fields)
				status, _, r = post(t, hs.URL, ct, body, nil)
			}
			if status != http.StatusOK {
				t.Errorf("client %d: status %d: %+v", client, status, r.Error)
				return
			}
			sameResults(t, fmt.Sprintf("client %d", client), r.Results, want[client%len(calls)])
		}()
	}
	wg.Wait()
}

// TestVideoSamplesTakeFrameLists: a video checkpoint takes a list of frames
// per sample (JSON "frames", or consecutive multipart parts) and answers as
// `gitcap caption a.png,b.png` does.
func TestVideoSamplesTakeFrameLists(t *testing.T) {
	_, hs := newServer(t, "git-tiny-video", Options{})
	want := cliCaptions(t, "git-tiny-video", []string{"cats.png,gradient_96x64.png", "stripes_50x150.png,sun_q90.jpg"}, "", cliDefaults)
	body := jsonBody(t, map[string]any{"images": []any{
		map[string]any{"frames": []any{map[string]string{"data": b64(fixtureImage(t, "cats.png"))}, map[string]string{"data": b64(fixtureImage(t, "gradient_96x64.png"))}}},
		map[string]any{"frames": []any{map[string]string{"data": b64(fixtureImage(t, "stripes_50x150.png"))}, map[string]string{"data": b64(fixtureImage(t, "sun_q90.jpg"))}}},
	}})
	status, _, r := post(t, hs.URL, "application/json", body, nil)
	if status != http.StatusOK {
		t.Fatalf("status %d: %+v", status, r.Error)
	}
	sameResults(t, "json frames", r.Results, want)
	ct, mp := multipartBody(t, [][]byte{fixtureImage(t, "cats.png"), fixtureImage(t, "gradient_96x64.png"), fixtureImage(t, "stripes_50x150.png"), fixtureImage(t, "sun_q90.jpg")}, nil)
	status, _, r = post(t, hs.URL, ct, mp, nil)
	if status != http.StatusOK {
		t.Fatalf("status %d: %+v", status, r.Error)
	}
	sameResults(t, "multipart frames", r.Results, want)
	ct, mp = multipartBody(t, [][]byte{fixtureImage(t, "cats.png")}, nil)
	if status, _, r = post(t, hs.URL, ct, mp, nil); status != http.StatusBadRequest || !strings.Contains(r.Error.Message, "2 frames per sample") {
		t.Errorf("one frame for a 2-frame checkpoint: %d %+v", status, r.Error)
	}
}

// pngHeader is a PNG signature and IHDR chunk claiming w×h (no pixel data).
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// TestBadRequestsGetClearJSONErrors: each bad request gets its status and
// a JSON error naming the problem, and the server keeps answering.
func TestBadRequestsGetClearJSONErrors(t *testing.T) {
	cats := fixtureImage(t, "cats.png")
	img := func(fields map[string]any) []byte {
		m := map[string]any{"images": []any{map[string]string{"data": b64(cats)}}}
		for k, v := range fields {
			m[k] = v
		}
		return jsonBody(t, m)
	}
	mpCT, mpBody := multipartBody(t, [][]byte{cats}, map[string]string{"max_length": "ten"})
	mpCT2, mpBody2 := multipartBody(t, [][]byte{cats}, map[string]string{"maxlength": "10"})
	mpCT3, mpBody3 := multipartBody(t, [][]byte{cats}, map[string]string{"url": "http://example.com/a.png"})
	small := fixtureImage(t, "gray_L_40x30.png")
	manyCT, manyBody := multipartBody(t, [][]byte{small, small, small, small, small}, nil)
	nanCT, nanBody := multipartBody(t, [][]byte{cats}, map[string]string{"num_beams": "2", "length_penalty": "nan"})
	infCT, infBody := multipartBody(t, [][]byte{cats}, map[string]string{"do_sample": "true", "temperature": "inf"})
	cases := []struct {
		name   string
		method string
		ctype  string
		body   []byte
		header map[string]string
		status int
		want   string
	}{
		{"GET", http.MethodGet, "", nil, nil, 405, "use POST"},
		{"plain text", "", "text/plain", []byte("hi"), nil, 415, "not supported"},
		{"no content type", "", "", []byte("{}"), nil, 415, "Content-Type"},
		{"broken JSON", "", "application/json", []byte(`{"images": [`), nil, 400, "invalid JSON"},
		{"two JSON values", "", "application/json", []byte(`{"images": []} {}`), nil, 400, "more than one JSON value"},
		{"unknown option", "", "application/json", img(map[string]any{"max-length": 5}), nil, 400, "unknown field"},
		{"no images", "", "application/json", []byte(`{"images": []}`), nil, 400, "no images"},
		{"URL", "", "application/json", []byte(`{"images": [{"url": "http://169.254.169.254/"}]}`), nil, 400, "URLs are not fetched"},
		{"multipart URL", "", mpCT3, mpBody3, nil, 400, "URLs are not fetched"},
		{"missing data", "", "application/json", []byte(`{"images": [{}]}`), nil, 400, `missing "data"`},
		{"bad base64", "", "application/json", []byte(`{"images": [{"data": "!!!"}]}`), nil, 400, "not valid base64"},
		{"not an image", "", "application/json", jsonBody(t, map[string]any{"images": []any{map[string]string{"data": b64([]byte("not an image at all"))}}}), nil, 400, "not a readable"},
		{"decompression bomb", "", "application/json", jsonBody(t, map[string]any{"images": []any{map[string]string{"data": b64(pngHeader(100000, 100000))}}}), nil, 413, "100000x100000"},
		{"body too large", "", "application/json", jsonBody(t, map[string]any{"images": []any{map[string]string{"data": strings.Repeat("A", 3<<20)}}}), nil, 413, "exceeds the limit"},
		{"too many images", "", manyCT, manyBody, nil, 413, "more than 4 images"},
		{"max_length over the cap", "", "application/json", img(map[string]any{"max_length": 61}), nil, 400, "at most 60"},
		{"max_new_tokens over the cap", "", "application/json", img(map[string]any{"max_new_tokens": 60}), nil, 400, "at most 60"},
		{"prompt plus max_new_tokens over the cap", "", "application/json", img(map[string]any{"max_new_tokens": 57, "prompt": "a photo of"}), nil, 400, "limit of 60"},
		{"num_beams 0", "", "application/json", img(map[string]any{"num_beams": 0}), nil, 400, "num_beams must be at least 1"},
		{"more sequences than beams", "", "application/json", img(map[string]any{"num_beams": 2, "num_return_sequences": 3}), nil, 400, "cannot exceed num_beams"},
		{"greedy with two sequences", "", "application/json", img(map[string]any{"num_return_sequences": 2}), nil, 400, "greedy search returns one sequence"},
		{"beams over the rows", "", "application/json", img(map[string]any{"num_beams": 9}), nil, 400, "exceed the batch's 8 rows"},
		{"zero temperature sampling", "", "application/json", img(map[string]any{"do_sample": true, "temperature": 0}), nil, 400, "temperature must be positive"},
		{"top_p above 1", "", "application/json", img(map[string]any{"top_p": 2}), nil, 400, "top_p"},
		{"top_p 0 (refused, as by the CLI)", "", "application/json", img(map[string]any{"top_p": 0}), nil, 400, "top_p must be in (0, 1]"},
		{"multipart NaN length_penalty", "", nanCT, nanBody, nil, 400, "must be a finite number"},
		{"multipart infinite temperature", "", infCT, infBody, nil, 400, "must be a finite number"},
		{"negative repetition penalty", "", "application/json", img(map[string]any{"repetition_penalty": -1}), nil, 400, "repetition_penalty"},
		{"wrong option type", "", "application/json", img(map[string]any{"num_beams": "three"}), nil, 400, "invalid JSON"},
		{"multipart bad integer", "", mpCT, mpBody, nil, 400, `max_length: "ten" is not an integer`},
		{"multipart unknown field", "", mpCT2, mpBody2, nil, 400, `unknown field "maxlength"`},
		{"multipart without boundary", "", "multipart/form-data", mpBody, nil, 400, "boundary"},
		{"beam sampling", "", "application/json", img(map[string]any{"do_sample": true, "num_beams": 2}), nil, 400, "beam sampling"},
	}
	_, hs := newServer(t, "git-tiny", Options{MaxBodyBytes: 2 << 20, MaxImages: 4, MaxPixels: 1 << 20})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, hs.URL+"/v1/captions", bytes.NewReader(c.body))
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var r response
			raw, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(raw, &r); err != nil || r.Error == nil {
				t.Fatalf("status %d, answer is not a JSON error: %q", resp.StatusCode, raw)
			}
			if resp.StatusCode != c.status || r.Error.Status != c.status || !strings.Contains(r.Error.Message, c.want) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, r.Error.Message, c.status, c.want)
			}
		})
	}
	// Still up and right.
	status, _, r := post(t, hs.URL, "application/json", img(nil), nil)
	if status != 200 {
		t.Fatalf("after the bad requests: %d %+v", status, r.Error)
	}
	sameResults(t, "after bad requests", r.Results, cliCaptions(t, "git-tiny", []string{"cats.png"}, "", cliDefaults))
}

// TestBearerAuth: with an API key, /v1/ needs it (compared in constant
// time); the probes and the page stay open.
func TestBearerAuth(t *testing.T) {
	_, hs := newServer(t, "git-tiny", Options{APIKey: "s3cret"})
	body := jsonBody(t, map[string]any{"images": []any{map[string]string{"data": b64(fixtureImage(t, "cats.png"))}}})
	for _, c := range []struct {
		header map[string]string
		status int
	}{
		{nil, 401},
		{map[string]string{"Authorization": "Bearer wrong"}, 401},
		{map[string]string{"Authorization": "s3cret"}, 401},
		{map[string]string{"Authorization": "Bearer s3cret"}, 200},
	} {
		status, h, r := post(t, hs.URL, "application/json", body, c.header)
		if status != c.status {
			t.Errorf("%v: %d %+v, want %d", c.header, status, r.Error, c.status)
		}
		if status == 401 && h.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/"} {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d without a key", path, resp.StatusCode)
		}
	}
}

// longBody asks for 8 beams that may not stop for 58 tokens.
func longBody(t testing.TB) []byte {
	return jsonBody(t, map[string]any{"images": []any{map[string]string{"data": b64(fixtureImage(t, "cats.png"))}},
		"num_beams": 8, "max_length": 60, "min_new_tokens": 58})
}

func waitBusy(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.b.BusyRows() == 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Microsecond)
	}
	if s.b.BusyRows() == 0 {
		t.Fatal("the long request never reached the batch")
	}
}

func waitIdle(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.b.BusyRows() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := s.b.BusyRows(); n != 0 {
		t.Fatalf("%d rows still busy", n)
	}
}

// TestFullQueueGets429 and a timed-out request gets 504.
func TestFullQueueGets429AndTimeoutGets504(t *testing.T) {
	s, hs := newServer(t, "git-tiny", Options{QueueImages: 1})
	done := make(chan int, 1)
	go func() {
		status, _, _ := post(t, hs.URL, "application/json", longBody(t), nil)
		done <- status
	}()
	waitBusy(t, s)
	body := jsonBody(t, map[string]any{"images": []any{map[string]string{"data": b64(fixtureImage(t, "cats.png"))}}})
	status, h, r := post(t, hs.URL, "application/json", body, nil)
	if status != 429 || h.Get("Retry-After") == "" || !strings.Contains(r.Error.Message, "queue is full") {
		t.Errorf("full queue: %d (Retry-After %q) %+v", status, h.Get("Retry-After"), r.Error)
	}
	if st := <-done; st != 200 {
		t.Errorf("the long request: %d", st)
	}
	_, hs2 := newServer(t, "git-tiny", Options{RequestTimeout: time.Nanosecond})
	if status, _, r = post(t, hs2.URL, "application/json", body, nil); status != 504 || !strings.Contains(r.Error.Message, "longer than") {
		t.Errorf("timeout: %d %+v", status, r.Error)
	}
}

// TestFullQueueRefusesBeforeReadingTheBody: with no room for one more
// image the server answers 429 without waiting for the upload (here a
// body that never arrives).
func TestFullQueueRefusesBeforeReadingTheBody(t *testing.T) {
	s, hs := newServer(t, "git-tiny", Options{QueueImages: 1})
	done := make(chan int, 1)
	go func() {
		status, _, _ := post(t, hs.URL, "application/json", longBody(t), nil)
		done <- status
	}()
	waitBusy(t, s)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/captions", pr)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = 1 << 20 // never sent
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("no answer without the body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 {
		t.Errorf("full queue, body not sent: %d, want 429", resp.StatusCode)
	}
	if st := <-done; st != 200 {
		t.Errorf("the long request: %d", st)
	}
}

// TestBodyReadsAreBounded: with one read slot, a second upload waits
// while the first body is still arriving, and both succeed once it has.
func TestBodyReadsAreBounded(t *testing.T) {
	s, hs := newServer(t, "git-tiny", Options{MaxBodyReads: 1})
	body := jsonBody(t, map[string]any{"images": []any{map[string]string{"data": b64(fixtureImage(t, "cats.png"))}}})
	pr, pw := io.Pipe()
	slow := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/captions", pr)
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = int64(len(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- -1
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.reads) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if len(s.reads) == 0 {
		t.Fatal("the slow upload never took the read slot")
	}
	fast := make(chan int, 1)
	go func() {
		status, _, _ := post(t, hs.URL, "application/json", body, nil)
		fast <- status
	}()
	select {
	case st := <-fast:
		t.Fatalf("the second upload finished (%d) while the first held the only read slot", st)
	case <-time.After(300 * time.Millisecond):
	}
	pw.Write(body)
	pw.Close()
	if st := <-slow; st != 200 {
		t.Errorf("slow upload: %d", st)
	}
	if st := <-fast; st != 200 {
		t.Errorf("waiting upload: %d", st)
	}
}

// TestDisconnectedClientLeavesTheBatch: when the client goes away its
// sequences leave the batch (rows freed) and the request counts as 499.
func TestDisconnectedClientLeavesTheBatch(t *testing.T) {
	s, hs := newServer(t, "git-tiny", Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/v1/captions", bytes.NewReader(longBody(t)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitBusy(t, s)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the request finished before the client went away; make it longer")
	}
	waitIdle(t, s)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(scrape(t, hs.URL), `gitcap_requests_total{code="499"} 1`) {
		if time.Now().After(deadline) {
			t.Fatalf("no 499 counted:\n%s", scrape(t, hs.URL))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func scrape(t testing.TB, url string) string {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestMetricsAreExposed: requests by status, latency, queue depth, batch
// sizes, tokens and images per second.
func TestMetricsAreExposed(t *testing.T) {
	_, hs := newServer(t, "git-tiny", Options{})
	ct, body := multipartBody(t, [][]byte{fixtureImage(t, "cats.png"), fixtureImage(t, "sun_q90.jpg")}, nil)
	if status, _, r := post(t, hs.URL, ct, body, nil); status != 200 {
		t.Fatalf("%d %+v", status, r.Error)
	}
	post(t, hs.URL, "application/json", []byte("{"), nil)
	// A finished sequence's rows go back at the batcher's next turn, which
	// can come just after its answer: wait for that, within 5 s.
	m := scrape(t, hs.URL)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(m, "gitcap_busy_rows 0") && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		m = scrape(t, hs.URL)
	}
	for _, want := range []string{
		`gitcap_requests_total{code="200"} 1`, `gitcap_requests_total{code="400"} 1`,
		`gitcap_request_duration_seconds_count 2`, "gitcap_queue_depth 0", "gitcap_busy_rows 0",
		"gitcap_batch_rows_bucket", "gitcap_encode_batch_images_bucket", "gitcap_decode_step_seconds_bucket", "gitcap_encode_seconds_bucket", "gitcap_images_total 2",
		"gitcap_generated_tokens_total", "gitcap_images_per_second",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(m, "go_goroutines") {
		t.Error("the server's registry should not carry the global default collectors")
	}
}

// TestDrainFinishesInFlightRequests: when Serve's context ends (SIGTERM in
// `gitcap serve`), /readyz fails, new requests are refused, the request in
// flight still gets its caption and Serve returns nil.
func TestDrainFinishesInFlightRequests(t *testing.T) {
	s := newBareServer(t, "git-tiny", Options{})
	url, stop, served := serving(t, s, 20*time.Second)
	done := make(chan int, 1)
	go func() {
		status, _, _ := post(t, url, "application/json", longBody(t), nil)
		done <- status
	}()
	waitBusy(t, s)
	stop()
	deadline := time.Now().Add(5 * time.Second)
	for !s.draining.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 503 {
		t.Errorf("/readyz while draining: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/v1/captions", bytes.NewReader(longBody(t)))
	req.Header.Set("Content-Type", "application/json")
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("a new request while draining: %d", rec.Code)
	}
	if st := <-done; st != 200 {
		t.Errorf("in-flight request: %d", st)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after drain: %v", err)
	}
}

// TestPageIsEmbeddedWithoutCDN: / serves the page, which loads nothing
// from elsewhere.
func TestPageIsEmbeddedWithoutCDN(t *testing.T) {
	_, hs := newServer(t, "git-tiny", Options{})
	resp, err := http.Get(hs.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `id="image"`) {
		t.Fatalf("/: %d", resp.StatusCode)
	}
	for _, bad := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("the page references %q", bad)
		}
	}
	resp2, _ := http.Get(hs.URL + "/nope")
	resp2.Body.Close()
	if resp2.StatusCode != 404 {
		t.Errorf("/nope: %d", resp2.StatusCode)
	}
}

// serveOnLoopback runs s.Serve on a loopback port until the test ends and
// returns its URL.
func serveOnLoopback(t *testing.T, s *Server) string {
	t.Helper()
	url, stop, served := serving(t, s, 10*time.Second)
	t.Cleanup(func() {
		stop()
		<-served
	})
	return url
}

// TestTimeoutBehindTheHTTPServerGets504: a request that runs past the
// request timeout gets the 504 JSON error through Serve, the real
// http.Server, as through the bare handler, and the timeout runs from the
// request, not from the connection: the client here connects and waits a
// whole timeout before it sends (a server-wide ReadTimeout of that length
// had expired before the body was read, and the answer was a 408).
func TestTimeoutBehindTheHTTPServerGets504(t *testing.T) {
	const timeout = time.Second // four images of 8 beams and 58 tokens take longer, the body's reading less
	url := serveOnLoopback(t, newBareServer(t, "git-tiny", Options{RequestTimeout: timeout}))
	img := map[string]string{"data": b64(fixtureImage(t, "cats.png"))}
	body := jsonBody(t, map[string]any{"images": []any{img, img, img, img}, "num_beams": 8, "max_length": 60, "min_new_tokens": 58})
	status, raw, r := rawPost(t, url, body, len(body), timeout)
	if status != 504 || r.Error == nil || !strings.Contains(r.Error.Message, "longer than") {
		t.Fatalf("a request past the timeout: %d %q", status, raw)
	}
}

// rawPost posts body to url's /v1/captions over a connection of its own:
// it connects, waits wait, sends the headers and the first n bytes of the
// body (n < len(body): a body that stops arriving), and reads the answer,
// which must be JSON.
func rawPost(t *testing.T, url string, body []byte, n int, wait time.Duration) (int, []byte, response) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(wait)
	fmt.Fprintf(conn, "POST /v1/captions HTTP/1.1\r\nHost: gitcap\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	conn.Write(body[:n])
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r response
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("status %d, answer is not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, raw, r
}

// TestExtremeOptionsStillAnswerJSON: options that are valid but push the
// numbers to their ends get a JSON answer, never an empty 200 or a 500: a
// temperature near zero samples the most likely token (greedy's caption),
// and a beam score that is -Inf (length_penalty -1e308 divides by
// L^-1e308 = 0) is left out of the result.
func TestExtremeOptionsStillAnswerJSON(t *testing.T) {
	_, hs := newServer(t, "git-tiny", Options{})
	cats := map[string]string{"data": b64(fixtureImage(t, "cats.png"))}
	status, _, r := post(t, hs.URL, "application/json", jsonBody(t, map[string]any{"images": []any{cats}, "do_sample": true, "temperature": 1e-320, "seed": 3}), nil)
	if status != 200 {
		t.Fatalf("temperature 1e-320: %d %+v", status, r.Error)
	}
	sameResults(t, "temperature 1e-320", r.Results, cliCaptions(t, "git-tiny", []string{"cats.png"}, "", cliDefaults))
	status, _, r = post(t, hs.URL, "application/json", jsonBody(t, map[string]any{"images": []any{cats}, "num_beams": 2, "length_penalty": -1e308}), nil)
	if status != 200 || len(r.Results) != 1 || r.Results[0].Score != nil || len(r.Results[0].IDs) == 0 {
		t.Fatalf("length_penalty -1e308: %d %+v %+v", status, r.Error, r.Results)
	}
}

// TestQueueHoldsTheLargestRequest: the queue's default holds a request of
// the most images allowed, the default image limit fits a queue that is
// set, and a queue smaller than a set image limit is refused at start,
// not with a 429 on every retry.
func TestQueueHoldsTheLargestRequest(t *testing.T) {
	if o := (Options{Batch: gitmodel.BatcherOptions{Rows: 1}, MaxImages: 16}).withDefaults(); o.QueueImages < 16 {
		t.Errorf("one row, 16 images a request: the default queue holds %d", o.QueueImages)
	}
	if o := (Options{QueueImages: 4}).withDefaults(); o.MaxImages != 4 {
		t.Errorf("queue 4, default image limit: %d images a request", o.MaxImages)
	}
	if _, err := New(pipeline(t, "git-tiny"), Options{Batch: gitmodel.BatcherOptions{Rows: 1, MaxText: 60}, MaxImages: 16, QueueImages: 8}); err == nil || !strings.Contains(err.Error(), "must hold a request") {
		t.Errorf("queue 8 for 16-image requests: %v", err)
	}
}

func TestGeneratedCountsTokensUpToEOS(t *testing.T) {
	for _, c := range []struct {
		ids  []int
		want int
	}{{nil, 0}, {[]int{5, 6}, 2}, {[]int{5, 102, 0, 0}, 2}, {[]int{102}, 1}} {
		if got := generated(c.ids, 102); got != c.want {
			t.Errorf("generated(%v) = %d, want %d", c.ids, got, c.want)
		}
	}
}

// TestBodyThatStallsGets408: a body that stops arriving gets 408 with a
// JSON error once the request timeout has passed, not a 400 about
// invalid JSON.
func TestBodyThatStallsGets408(t *testing.T) {
	url := serveOnLoopback(t, newBareServer(t, "git-tiny", Options{RequestTimeout: 200 * time.Millisecond}))
	body := jsonBody(t, map[string]any{"images": []any{map[string]string{"data": b64(fixtureImage(t, "cats.png"))}}})
	status, raw, r := rawPost(t, url, body, len(body)/2, 0)
	if status != 408 || r.Error == nil || !strings.Contains(r.Error.Message, "was not read within") {
		t.Fatalf("a stalled body: %d %q", status, raw)
	}
}

// TestDrainDelayKeepsAnsweringBeforeClosing: during the drain delay the
// listener stays open and a new request gets 503 with Retry-After (a
// client the load balancer still sends here can retry elsewhere), not a
// refused connection; then Serve closes and returns.
func TestDrainDelayKeepsAnsweringBeforeClosing(t *testing.T) {
	s := newBareServer(t, "git-tiny", Options{DrainDelay: 2 * time.Second})
	start := time.Now()
	url, stop, served := serving(t, s, 10*time.Second)
	stop()
	for !s.draining.Load() {
		time.Sleep(time.Millisecond)
	}
	body := jsonBody(t, map[string]any{"images": []any{map[string]string{"data": b64(fixtureImage(t, "cats.png"))}}})
	status, h, r := post(t, url, "application/json", body, nil)
	if status != 503 || h.Get("Retry-After") == "" || r.Error == nil {
		t.Errorf("a request during the drain delay: %d (Retry-After %q) %+v", status, h.Get("Retry-After"), r.Error)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after the drain: %v", err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("Serve returned after %s, before the 2 s drain delay", d)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second); err == nil {
		t.Error("the listener is still open after Serve returned")
	}
}

// TestSlowUploadGets408AndFreesItsSlot: a body trickling in below the
// minimum upload rate is cut with a 408 that names the rate once the grace
// is over, long before the request timeout, and the read slot it held goes
// to the next request (here the only slot: the second client waits for it).
func TestSlowUploadGets408AndFreesItsSlot(t *testing.T) {
	s := newBareServer(t, "git-tiny", Options{RequestTimeout: 30 * time.Second, MinUploadRate: 1000, UploadGrace: 300 * time.Millisecond, MaxBodyReads: 1})
	url := serveOnLoopback(t, s)
	body := jsonBody(t, map[string]any{"images": []any{map[string]string{"data": b64(fixtureImage(t, "cats.png"))}}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /v1/captions HTTP/1.1\r\nHost: gitcap\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	go func() { // 20 bytes a second, for at most 5 s
		for i := 0; i < 100 && i < len(body); i++ {
			if _, err := conn.Write(body[i : i+1]); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(100 * time.Millisecond) // the trickle holds the slot
	second := make(chan int, 1)
	go func() {
		status, _, _ := post(t, url, "application/json", body, nil)
		second <- status
	}()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 408 || !strings.Contains(string(raw), "slower than 1000 bytes/s") {
		t.Fatalf("a body at 20 bytes/s against a minimum of 1000: %d %q", resp.StatusCode, raw)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the slow body was cut after %s; the grace is 300 ms", d)
	}
	select {
	case status := <-second:
		if status != 200 {
			t.Errorf("the request waiting for the slot: %d, want 200", status)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the request waiting for the read slot did not finish within 20 s of the slow one's 408")
	}
}

// TestQueuedUploadsAreBoundedInBytes: the uploads of admitted requests
// still waiting to decode their images count against QueueBytes; a request
// whose images do not fit gets 429 (before its body is read when its
// announced length does not fit), and the bytes are given back once the
// images are decoded, so the next request gets in. A queue's bytes smaller
// than the largest body allowed is refused at start.
func TestQueuedUploadsAreBoundedInBytes(t *testing.T) {
	png := fixtureImage(t, "cats.png")
	body := jsonBody(t, map[string]any{"images": []any{map[string]string{"data": b64(png)}}})
	s := newBareServer(t, "git-tiny", Options{MaxBodyBytes: int64(len(body)), QueueBytes: int64(len(body)) + int64(len(png))/2})
	url := serveOnLoopback(t, s)
	for i := 0; i < cap(s.decodes); i++ { // every decode slot taken: admitted requests wait, holding their uploads
		s.decodes <- struct{}{}
	}
	first := make(chan int, 1)
	go func() {
		status, _, _ := post(t, url, "application/json", body, nil)
		first <- status
	}()
	deadline := time.Now().Add(10 * time.Second)
	for { // wait until the first request is admitted
		s.mu.Lock()
		held := s.held
		s.mu.Unlock()
		if held == int64(len(png)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first request's %d bytes were never admitted (held %d)", len(png), held)
		}
		time.Sleep(5 * time.Millisecond)
	}
	status, h, r := post(t, url, "application/json", body, nil)
	if status != 429 || h.Get("Retry-After") == "" || r.Error == nil {
		t.Errorf("a second upload while the first waits to decode, %d bytes of room left: %d %+v", len(body)-len(png)/2, status, r.Error)
	}
	// Without a Content-Length (chunked) the body is read, and its images'
	// bytes are what does not fit.
	resp, err := http.Post(url+"/v1/captions", "application/json", io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.ContentLength == 0 {
		t.Errorf("a chunked second upload while the first waits to decode: %d", resp.StatusCode)
	}
	for i := 0; i < cap(s.decodes); i++ {
		<-s.decodes
	}
	if status := <-first; status != 200 {
		t.Fatalf("the first request, once decoding was free: %d", status)
	}
	if status, _, r := post(t, url, "application/json", body, nil); status != 200 {
		t.Errorf("a request after the first was decoded: %d %+v", status, r.Error)
	}
	if _, err := New(pipeline(t, "git-tiny"), Options{Batch: gitmodel.BatcherOptions{Rows: 1, MaxText: 60}, MaxBodyBytes: 1 << 20, QueueBytes: 1 << 19}); err == nil || !strings.Contains(err.Error(), "must hold a request body") {
		t.Errorf("queue bytes below the largest body: %v", err)
	}
}
