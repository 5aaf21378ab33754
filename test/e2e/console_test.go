package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/deoss/deoss/internal/gateway/console"
	"github.com/deoss/deoss/internal/types"
)

// chromium finds Debian's Chromium; without it the browser tests are
// skipped (failed when DEOSS_BROWSER_TESTS=require, as .ci/run sets).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("DEOSS_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("DEOSS_BROWSER_TESTS") == "require" {
		t.Fatal("no Chromium (apt-get install chromium)")
	}
	t.Skip("no Chromium (apt-get install chromium)")
	return ""
}

// TestConsoleSignIn: a sign-in link works once and only before it
// expires; the session cookie is HttpOnly and SameSite=Strict, and it
// authenticates nothing without the console header.
func TestConsoleSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 2 processes")
	}
	n := Start(t, Options{Nodes: -1})
	gw := n.Gateways[0]
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(url string, hdr bool) *http.Response {
		req, _ := http.NewRequest("GET", url, nil)
		if hdr {
			req.Header.Set(console.Header, "1")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if st := get(console.Link(gw.URL, n.User, gw.Address, -time.Second, time.Now()), false).StatusCode; st != http.StatusUnauthorized {
		t.Fatalf("an expired link: %d", st)
	}
	if st := get(console.Link(gw.URL, n.User, n.User.Address(), time.Minute, time.Now()), false).StatusCode; st != http.StatusUnauthorized {
		t.Fatalf("a link for another gateway: %d", st)
	}
	link := console.Link(gw.URL, n.User, gw.Address, time.Minute, time.Now())
	resp := get(link, false)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("sign in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.MaxAge <= 0 {
		t.Fatalf("session cookie: %+v", cookie)
	}
	if st := get(link, false).StatusCode; st != http.StatusUnauthorized {
		t.Fatalf("the link used again: %d", st)
	}
	if st := get(gw.URL+"/console/me", true).StatusCode; st != http.StatusOK {
		t.Fatalf("signed in, with the header: %d", st)
	}
	if st := get(gw.URL+"/console/me", false).StatusCode; st != http.StatusUnauthorized {
		t.Fatalf("the cookie without the header: %d", st)
	}
	if st := get(gw.URL+"/files/"+n.User.Address().String(), false).StatusCode; st != http.StatusUnauthorized {
		t.Fatalf("a listing with the cookie and no header: %d", st)
	}
	if st := get(gw.URL+"/files/"+n.User.Address().String(), true).StatusCode; st != http.StatusOK {
		t.Fatalf("a listing with the cookie and the header: %d", st)
	}
}

// TestConsoleInBrowser drives the console in headless Chromium: sign in
// with the printed link, upload a 20 MiB file through the page and watch
// its progress reach 100%, find it in the list, download it in the page
// and compare its SHA-256, delete it, and see the 12 nodes; each page's
// screenshot is saved (DEOSS_SCREENSHOTS names a folder to keep them).
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 14 processes and a browser")
	}
	bin := chromium(t)
	n := Start(t, Options{Nodes: 12})
	gw := n.Gateways[0]
	dir := t.TempDir()
	shots := os.Getenv("DEOSS_SCREENSHOTS")
	if shots == "" {
		shots = dir
	}
	_, file, sum := pickable(t, dir, "console-20mib.bin", 2020, 20<<20)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	defer cancelT()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG (less is JPEG)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, "console-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	do("sign in", chromedp.Navigate(console.Link(gw.URL, n.User, gw.Address, 5*time.Minute, time.Now())),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)))
	if account := text("#account"); account != n.User.Address().String() {
		t.Fatalf("signed in as %q, want %s", account, n.User.Address())
	}
	shot("files-empty")

	do("upload", chromedp.Click(chromedp.CSS("#nav-upload")), chromedp.WaitVisible(chromedp.CSS("#drop")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}),
		chromedp.WaitVisible(chromedp.CSS("#uploads li.done")))
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#uploads li.done"), "data-fid"))
	if pct := text("#uploads li.done .pct"); pct != "100%" || err != nil || attr.Value == "" {
		t.Fatalf("upload: progress %q, fid %q (%v)", pct, attr.Value, err)
	}
	fid := attr.Value
	shot("upload")
	t.Logf("uploaded through the page: %s", fid)

	row := fmt.Sprintf(`tr[data-fid=%q]`, fid)
	do("list", chromedp.Click(chromedp.CSS("#nav-files")), chromedp.WaitVisible(chromedp.CSS(row)))
	shot("files")
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(async () => {
		const r = await fetch(document.querySelector(%q).href)
		const h = await crypto.subtle.digest('SHA-256', await r.arrayBuffer())
		return Array.from(new Uint8Array(h)).map(x => x.toString(16).padStart(2, '0')).join('')
	})()`, row+" a.download"), chromedp.EvalAwaitPromise))
	if err != nil || got != hex.EncodeToString(sum[:]) {
		t.Fatalf("the page downloaded bytes with SHA-256 %s, want %x (%v)", got, sum, err)
	}

	// The file's page: its 12 columns on their nodes, all healthy once
	// stored.
	parsed, err := types.ParseFID(fid)
	if err != nil {
		t.Fatal(err)
	}
	n.WaitStored(parsed, 3*time.Minute)
	do("file page", chromedp.Click(chromedp.CSS(row+" a.name")), chromedp.WaitVisible(chromedp.CSS("#columns li:nth-child(12)")))
	healthy, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#columns li.healthy').length`))
	if err != nil || healthy != 12 {
		t.Fatalf("the file's page shows %d healthy columns, want 12 (%v)", healthy, err)
	}
	shot("file")
	// Back to the list, drawn anew (a row of the load before would go
	// from under the click).
	gen, err := chromedp.Run(ctx, chromedp.Evaluate[int](`filesGen`))
	if err != nil {
		t.Fatal(err)
	}
	row = fmt.Sprintf(`tr[data-fid=%q][data-gen="%d"]`, fid, gen+1)
	do("back to the list", chromedp.Click(chromedp.CSS("#nav-files")), chromedp.WaitVisible(chromedp.CSS(row)))

	do("delete", chromedp.Click(chromedp.CSS(row+" button.delete")), chromedp.Click(chromedp.CSS(row+" button.delete")),
		chromedp.WaitNotPresent(chromedp.CSS(fmt.Sprintf(`tr[data-fid=%q]`, fid))))

	privateUpload(t, n, ctx, dir, do, shot)

	do("space", chromedp.Click(chromedp.CSS("#nav-space")), chromedp.WaitVisible(chromedp.CSS(`#territories li[data-territory="home"] .bar`)))
	if txt := text(`#territories li[data-territory="home"] p`); !strings.Contains(txt, "free of 4.0 GiB") {
		t.Fatalf("the space page says %q of the 4 GiB territory home", txt)
	}
	shot("space")

	do("network", chromedp.Click(chromedp.CSS("#nav-network")), chromedp.WaitVisible(chromedp.CSS("#nodes tbody tr:nth-child(12)")))
	nodes, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#nodes tbody tr').length`))
	if err != nil || nodes != 12 {
		t.Fatalf("the network page shows %d nodes, want 12 (%v)", nodes, err)
	}
	// The chain's latest blocks and the repair histogram, where the
	// stored file counts at 12 healthy columns.
	do("chain and repair", chromedp.WaitVisible(chromedp.CSS("#blocks tbody tr")), chromedp.WaitVisible(chromedp.CSS(`#health li[data-healthy="12"]`)),
		chromedp.WaitVisible(chromedp.CSS("#queue-empty")))
	if h := text("#chain-height"); !strings.HasPrefix(h, "height ") || h == "height 0" {
		t.Fatalf("chain height shown: %q", h)
	}
	shot("network")

	do("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signed-out")))
}

// privateUpload: a private upload through the page, reloaded in the
// middle, resumes from the offset the gateway confirmed when the file is
// picked again; its Share button gives a link that reads it without the
// session, and its Download button saves it through the browser.
func privateUpload(t *testing.T, n *Network, ctx context.Context, dir string, do func(string, ...chromedp.Action[chromedp.Void]), shot func(string)) {
	t.Helper()
	data, file, sum := pickable(t, dir, "private-24mib.bin", 2424, 24<<20)
	li := `#uploads li[data-name="private-24mib.bin"]`
	// The page's connection stalls after its first PATCH (the XHRs after
	// it are never sent), as a link that drops does; then the page is
	// reloaded.
	do("private upload, stalled", chromedp.Click(chromedp.CSS("#nav-upload")), chromedp.WaitVisible(chromedp.CSS("#drop")),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#private').checked = true;
			(() => { const send = XMLHttpRequest.prototype.send; let n = 0
				XMLHttpRequest.prototype.send = function (b) { if (n++ === 0) send.call(this, b) } })()`),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}),
		chromedp.WaitVisible(chromedp.CSS(li+`[data-offset="4194304"]`)))
	do("reload and pick again", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)), chromedp.WaitVisible(chromedp.CSS("#drop")),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#private').checked = true`),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}),
		chromedp.WaitVisible(chromedp.CSS(li+".done")))
	resumed, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(li), "data-resumed"))
	if err != nil || resumed.Value != "4194304" {
		t.Fatalf("after the reload the upload resumed at %q, want 4194304 (%v)", resumed.Value, err)
	}
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(li), "data-fid"))
	if err != nil || attr.Value == "" {
		t.Fatalf("resumed upload: fid %q (%v)", attr.Value, err)
	}
	fid := attr.Value

	row := fmt.Sprintf(`tr[data-fid=%q]`, fid)
	do("share", chromedp.Click(chromedp.CSS("#nav-files")), chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row+" button.share")), chromedp.WaitVisible(chromedp.CSS(row+" + tr input.share-url")))
	shot("files-shared")
	link, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).value`, row+" + tr input.share-url")))
	if err != nil {
		t.Fatal(err)
	}
	if st, _, _ := get(t, n.Gateways[0].URL+"/file/download/"+fid, nil); st != 401 {
		t.Fatalf("the private file without the link: %d", st)
	}
	st, _, body := get(t, link, nil)
	if got := sha256.Sum256(body); st != 200 || got != sum {
		t.Fatalf("the share link %s: %d, SHA-256 %x, want %x", link, st, got, sum)
	}

	// Download: the browser saves the file (through a 5-minute link the
	// page asks for, as the plain one needs a signature).
	saved := filepath.Join(dir, "downloads")
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	do("download", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: saved, EventsEnabled: new(true)})
		return err
	}), chromedp.Click(chromedp.CSS(row+" a.download")))
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the browser cancelled the download")
		}
		if ev.State != browser.DownloadProgressStateCompleted {
			continue
		}
		got, err := os.ReadFile(filepath.Join(saved, ev.GUID))
		if err != nil || sha256.Sum256(got) != sum {
			t.Fatalf("the browser saved %d bytes, not the file (%v)", len(got), err)
		}
		break
	}
	if want := n.Put(0, "native.bin", bytes.NewReader(data), int64(len(data)), nil); want.String() != fid {
		t.Fatalf("reloaded and resumed: FID %s, the native upload's is %s", fid, want)
	}
}

// pickable writes size random bytes (from seed) to dir/name for the page's
// file input, and returns them, the path and their SHA-256.
func pickable(t *testing.T, dir, name string, seed uint64, size int) ([]byte, string, [32]byte) {
	t.Helper()
	data := randomBytes(seed, size)
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data, file, sha256.Sum256(data)
}
