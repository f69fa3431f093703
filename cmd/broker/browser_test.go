package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserStepTimeout bounds one step of a browser test: a page to load, an
// element to show, a condition to hold.
const browserStepTimeout = 20 * time.Second

// chromiumPath returns the Chromium that browser tests drive: $CHROMIUM, or
// the first of Debian's chromium, chromium-browser, google-chrome and
// google-chrome-stable on PATH. Without one, the test fails under CI=true and
// is skipped elsewhere; scripts/test.sh installs Debian's chromium.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if name == "" {
			continue
		}
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const missing = "Chromium is missing: install Debian's chromium (scripts/tools.sh need_chromium does), or name one in $CHROMIUM"
	if os.Getenv("CI") == "true" {
		tb.Fatal(missing)
	}
	tb.Skip(missing)
	return ""
}

// browser is one tab of a headless Chromium, driven with chromedp, that keeps
// a screenshot of each page it is asked to in its folder.
type browser struct {
	tb    testing.TB
	ctx   context.Context
	shots string
}

// newBrowser starts a headless Chromium for the test, stopped when it ends.
// Screenshots go to $SCREENSHOT_DIR when it is set, else to a new temporary
// folder that outlives the test, as an artifact of the run; the test logs
// where.
func newBrowser(tb testing.TB) *browser {
	tb.Helper()
	if testing.Short() {
		tb.Skip("drives a browser")
	}
	path := chromiumPath(tb)
	shots := os.Getenv("SCREENSHOT_DIR")
	var err error
	if shots != "" {
		err = os.MkdirAll(shots, 0o755)
	} else {
		shots, err = os.MkdirTemp("", "broker-console-screenshots-")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("screenshots in %s", shots)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	tb.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser, under the test's context, not a
	// step's: a step's deadline would stop the whole browser.
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start Chromium (%s): %v", path, err)
	}
	return &browser{tb: tb, ctx: ctx, shots: shots}
}

// in returns b reporting to tb, a subtest.
func (b *browser) in(tb testing.TB) *browser {
	c := *b
	c.tb = tb
	return &c
}

// do runs steps in the tab, within browserStepTimeout, and fails the test
// (after a screenshot named failure) when one fails.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.screenshot("failure")
		b.tb.Fatalf("browser: %v", err)
	}
}

// waitFor waits until the JavaScript expression cond is true, within
// browserStepTimeout, and fails the test otherwise, saying what it waited for.
// A page that navigates meanwhile (a sign-in's redirects) ends a poll; it is
// polled again in the new page.
func (b *browser) waitFor(what, cond string) {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(time.Until(deadline))))
		switch {
		case err == nil:
			return
		case errors.Is(err, chromedp.ErrPollingTimeout) || ctx.Err() != nil:
			b.screenshot("failure")
			b.tb.Fatalf("browser: %s did not happen within %v (%s): %v", what, browserStepTimeout, cond, err)
		}
		// The page navigated under the poll: poll the new one, after a beat
		// for its document to come.
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// eval returns the value of the JavaScript expression js in the tab.
func eval[T any](b *browser, js string) T {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.tb.Fatalf("browser: evaluate %s: %v", js, err)
	}
	return v
}

// text returns the text of the first element that the CSS selector sel
// matches, once it is visible.
func (b *browser) text(sel string) string {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.screenshot("failure")
		b.tb.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// screenshot saves the whole page as name.png in the screenshot folder.
func (b *browser) screenshot(name string) {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.tb.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.shots, strings.ReplaceAll(b.tb.Name(), "/", "_")+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.tb.Errorf("screenshot %s: %v", name, err)
		return
	}
	b.tb.Logf("screenshot %s", path)
}
