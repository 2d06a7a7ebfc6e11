package serve

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzParseRequest feeds arbitrary bodies and content types to the request
// parser: it must return a request or an *apiError with a 4xx status, never
// panic, and never accept more than the limits allow.
func FuzzParseRequest(f *testing.F) {
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	w, _ := mw.CreateFormFile("image", "a.png")
	w.Write(pngHeader(4, 4))
	mw.WriteField("num_beams", "2")
	mw.Close()
	f.Add("application/json", []byte(`{"images":[{"data":"iVBORw0KGgo="}],"max_length":10}`))
	f.Add("application/json", []byte(`{"images":[{"url":"http://x"}]}`))
	f.Add("application/json", []byte(`{"images":[{"frames":[{"data":"AA=="}]}],"do_sample":true,"top_p":0.5}`))
	f.Add("application/json", []byte(`{"images":[],"prompt":"a photo of"}`))
	f.Add(mw.FormDataContentType(), mp.Bytes())
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nGIF89a\r\n--x--\r\n"))
	f.Add("text/plain", []byte("hello"))
	lim := Limits{MaxBodyBytes: 1 << 16, MaxPixels: 1 << 12, MaxImages: 3, MaxLength: 30, Frames: 1}
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/v1/captions", bytes.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		r.Body = http.MaxBytesReader(rec, r.Body, lim.MaxBodyBytes)
		req, err := ParseRequest(r, lim)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status < 400 || ae.status > 499 || ae.msg == "" {
				t.Fatalf("error %v is not a 4xx apiError", err)
			}
			return
		}
		n := 0
		for _, s := range req.Samples {
			n += len(s)
		}
		if len(req.Samples) == 0 || n > lim.MaxImages {
			t.Fatalf("accepted %d samples / %d images", len(req.Samples), n)
		}
		if req.Options.MaxLength > lim.MaxLength || req.Options.NumBeams < 1 {
			t.Fatalf("accepted options %+v", req.Options)
		}
	})
}
