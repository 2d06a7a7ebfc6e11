package serve

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gitcap/gitcap/data/fixtures"
)

// SkipBrowserEnv, set to 1, skips the headless-Chromium test explicitly
// (for machines without Debian's chromium; .ci/run installs it and does
// not set this).
const SkipBrowserEnv = "GITCAP_SKIP_BROWSER"

// chromium finds the browser binary or fails the test with how to get it.
func chromium(t *testing.T) string {
	t.Helper()
	if os.Getenv(SkipBrowserEnv) == "1" {
		t.Skipf("%s=1: skipping the headless-browser test", SkipBrowserEnv)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no chromium on PATH: the web page test needs a headless Chromium (apt-get install -y chromium), or set %s=1 to skip it explicitly", SkipBrowserEnv)
	return ""
}

// TestWebPageCaptionsAnUploadedImage loads the page in a real headless
// Chromium, uploads a fixture image through the file input and waits for
// the fixture model's caption (HF's greedy text for that image) to appear.
func TestWebPageCaptionsAnUploadedImage(t *testing.T) {
	exe := chromium(t)
	ref := struct {
		PerImage []struct {
			Image  string `json:"image"`
			Greedy struct {
				Text string `json:"text"`
			} `json:"greedy"`
		} `json:"per_image"`
	}{}
	b, err := os.ReadFile(fixtures.Path(t, "git-tiny", "reference", "generate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	want := ""
	for _, c := range ref.PerImage {
		if c.Image == "shape_red_square_on_white.png" {
			want = c.Greedy.Text
		}
	}
	if want == "" {
		t.Fatal("generate.json has no greedy caption for shape_red_square_on_white.png")
	}
	_, hs := newServer(t, "git-tiny", Options{})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	// The timeout bounds the whole browser, which is what a test wants.
	tctx, cancelT := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelT()
	actx, cancelA := chromedp.NewExecAllocator(tctx, opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()

	err = chromedp.Do(ctx,
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitReady(chromedp.ID("image")),
		chromedp.SetUploadFiles(chromedp.ID("image"), []string{fixtures.Path(t, "images", "shape_red_square_on_white.png")}),
		chromedp.WaitVisible(chromedp.CSS("#results li.caption")),
	)
	if err != nil {
		errText, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error")))
		t.Fatalf("driving the page: %v (page error: %q)", err, errText)
	}
	caption, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#results li.caption")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(caption) != want {
		t.Errorf("the page shows %q, the fixture model's caption is %q", caption, want)
	}
}
