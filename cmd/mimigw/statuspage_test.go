package main

import (
	"bytes"
	"context"
	"flag"
	"html"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The status page in a real browser, after real traffic: the dev gateway
// sends a text to a phone by SMS through its simulator; headless Chromium
// then loads the page and the trace of that message, and what it shows is
// checked in the DOM it built. Screenshots go to the test's temporary
// directory, and to -screenshots DIR when given, to look at
// (go test ./cmd/mimigw -run StatusPage -args -screenshots DIR).
func TestStatusPageInChromium(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	cfg := startDev(t, func(cfg *Config) {
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp" // nobody there: OPTIONS fails, SMS it is
	})
	base := "http://" + cfg.HTTP.Listen
	var out, errOut bytes.Buffer
	if err := run([]string{"send", "--nats", "nats://" + cfg.Bus.Embedded.Listen, "--to", "+15551230002", "hello page"}, &out, &errOut); err != nil {
		t.Fatalf("send: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	id := sentID(t, out.String())
	traceURL := base + "/?q=" + url.QueryEscape(id)
	// The delivered report is published just before the record says so.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(get(t, traceURL), "status report") {
		if time.Now().After(deadline) {
			t.Fatal("the trace never showed the status report")
		}
		time.Sleep(50 * time.Millisecond)
	}
	shots := t.TempDir()

	dom := browse(t, browser, base+"/", filepath.Join(shots, "status.png"))
	if !strings.Contains(dom, `http-equiv="refresh" content="5"`) {
		t.Error("the status page does not refresh itself")
	}
	smsc := cfg.SMPP.SMSCs[0].Name
	for id, want := range map[string][]string{
		"rate-out-sms":                      {"to phones by SMS (network accepted) 1 "},
		"rate-in-sms":                       {"from phones by SMS (accepted) 0"},
		"rate-reports-delivered":            {"status reports: delivered 1"},
		"rate-sip-503":                      {"SIP answers 503 0"},
		"rate-out-failed":                   {"to phones: given up (error report sent) 0"},
		"ready-smpp":                        {"smpp ready"},
		"ready-bus":                         {"bus ready"},
		"ready-sip":                         {"sip ready"},
		"smsc-" + smsc:                      {smsc + " " + cfg.SMPP.SMSCs[0].Address, "transceiver 1", " up ", "1 submit_sm accepted", "none since start"},
		"consumer-" + cfg.Bus.Consumer:      {cfg.Bus.Consumer + " " + cfg.Bus.ToPhoneStream + " durable 0 0 "},
		"stream-" + cfg.Bus.FromPhoneStream: {cfg.Bus.FromPhoneStream + " messages and reports from phones"},
	} {
		got := rowText(dom, id)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("row %s shows %q, want %q in it", id, got, w)
			}
		}
	}
	// The rate is a dash while the span is under a second (a fast run).
	if got := rowText(dom, "rate-out-sms"); !regexp.MustCompile(` 1 (–|\d+\.\d\d/s)`).MatchString(got) {
		t.Errorf("row rate-out-sms shows %q, want 1 and a rate (or a dash)", got)
	}
	for _, want := range []string{"SMSC SIMULATOR in use", "udp " + cfg.SIP.Listen.UDP, "CONNECTED"} {
		if !strings.Contains(dom, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	token, _, _ := cfg.adminToken(true)
	if token == "" || strings.Contains(dom, token) {
		t.Error("the status page shows the admin token (or there is none)")
	}

	dom = browse(t, browser, traceURL, filepath.Join(shots, "trace.png"))
	if strings.Contains(dom, `http-equiv="refresh"`) {
		t.Error("the trace view refreshes itself")
	}
	var steps []string
	for _, m := range regexp.MustCompile(`(?s)<tr class="step">(.*?)</tr>`).FindAllStringSubmatch(dom, -1) {
		steps = append(steps, text(m[1]))
	}
	rest := strings.Join(steps, "\n")
	for _, want := range []string{
		"accepted taken from mimi.to.tel.15551230002 for delivery",
		"OPTIONS query failed",
		"channel sms",
		"submit_sm_resp ESME_ROK from SMSC " + smsc + ": message id ",
		"receipt DELIVRD (delivered): segment 1 of 1",
		"status report delivered, to mimi://" + devDomain + "/u/mimigw-send on mimi.from.tel.15551230002",
		"state delivered",
	} {
		i := strings.Index(rest, want)
		if i < 0 {
			t.Errorf("trace steps lack %q (in order):\n%s", want, strings.Join(steps, "\n"))
			break
		}
		rest = rest[i+len(want):]
	}
	if !strings.Contains(dom, id) || strings.Contains(dom, "hello page") {
		t.Error("the trace does not name the message, or shows its text")
	}
}

var screenshots = flag.String("screenshots", "", "also keep the status page test's screenshots in `dir`")

// chromium finds Debian's chromium; without it the test is skipped,
// unless MIMIGW_INTEROP=1 asks for every peer.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("MIMIGW_INTEROP") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); MIMIGW_INTEROP=1 makes this a failure")
	return ""
}

// browse loads url in headless Chromium, saves a screenshot to shot and
// returns the DOM the browser built.
func browse(t *testing.T, browser, url, shot string) string {
	t.Helper()
	profile := t.TempDir()
	chrome := func(args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		args = append([]string{"--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
			"--no-first-run", "--user-data-dir=" + profile}, args...)
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, browser, append(args, url)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.Bytes()
	}
	dom := string(chrome("--dump-dom"))
	if !strings.Contains(dom, "</html>") {
		t.Fatalf("chromium dumped no page: %.300q", dom)
	}
	chrome("--screenshot="+shot, "--window-size=1200,900", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 900 {
		t.Errorf("screenshot is %v", b)
	}
	if dir := *screenshots; dir != "" {
		if data, err := os.ReadFile(shot); err == nil {
			_ = os.WriteFile(filepath.Join(dir, filepath.Base(shot)), data, 0o644)
		}
	}
	return dom
}

// rowText is the text of the table row with the given id, spaces
// collapsed.
func rowText(dom, id string) string {
	m := regexp.MustCompile(`(?s)<tr id="` + regexp.QuoteMeta(id) + `">(.*?)</tr>`).FindStringSubmatch(dom)
	if m == nil {
		return ""
	}
	return text(m[1])
}

var tags = regexp.MustCompile(`<[^>]*>`)

// text is HTML without its tags, entities decoded, spaces collapsed.
func text(h string) string {
	return strings.Join(strings.Fields(html.UnescapeString(tags.ReplaceAllString(h, " "))), " ")
}

// get fetches url's body.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
