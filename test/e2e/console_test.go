package e2e

import (
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
	size := 20 << 20
	data := randomBytes(2020, size)
	file := filepath.Join(dir, "console-20mib.bin")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)

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
	do("chain and repair", chromedp.WaitVisible(chromedp.CSS("#blocks tbody tr")), chromedp.WaitVisible(chromedp.CSS(`#health li[data-healthy="12"]`)))
	if h := text("#chain-height"); !strings.HasPrefix(h, "height ") || h == "height 0" {
		t.Fatalf("chain height shown: %q", h)
	}
	shot("network")

	do("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#signed-out")))
}
