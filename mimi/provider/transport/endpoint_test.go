package transport

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestEscapeParam(t *testing.T) {
	t.Parallel()
	// What encodeURIComponent gives for each, as a browser prints it.
	cases := map[string]string{
		"":                              "",
		"plain-_.!~*'()":                "plain-_.!~*'()",
		"mimi://gw.test/r/dm-1":         "mimi%3A%2F%2Fgw.test%2Fr%2Fdm-1",
		"mimi://gw.test/u/+15551234567": "mimi%3A%2F%2Fgw.test%2Fu%2F%2B15551234567",
		"a b?c=d&e#f":                   "a%20b%3Fc%3Dd%26e%23f",
		"100%":                          "100%25",
		"é€😀":                           "%C3%A9%E2%82%AC%F0%9F%98%80",
		"[]@$,;":                        "%5B%5D%40%24%2C%3B",
	}
	for in, want := range cases {
		if got := EscapeParam(in); got != want {
			t.Errorf("EscapeParam(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePath(t *testing.T) {
	t.Parallel()
	cases := []struct {
		path  string
		ep    Endpoint
		param string
		err   bool
	}{
		{"/v1/notify/mimi%3A%2F%2Fgw.test%2Fr%2Fdm-1", Notify, "mimi://gw.test/r/dm-1", false},
		// Any valid percent-encoding, lower-case hex and bare slashes
		// included.
		{"/v1/notify/mimi%3a%2f%2fgw.test%2fr%2fdm-1", Notify, "mimi://gw.test/r/dm-1", false},
		{"/v1/notify/mimi:%2F%2Fgw.test/r/dm-1", Notify, "mimi://gw.test/r/dm-1", false},
		{"/v1/update/a+b", Update, "a+b", false},
		{"/v1/notify/a%zz", Notify, "", true},
		{"/v1/notify/", "", "", true},
		{"/v1/notify", "", "", true},
		{"/v1//x", "", "", true},
		{"/v2/notify/x", "", "", true},
	}
	for _, tc := range cases {
		ep, param, err := parsePath(tc.path)
		if (err != nil) != tc.err || (err == nil && (ep != tc.ep || param != tc.param)) {
			t.Errorf("parsePath(%q) = %q, %q, %v", tc.path, ep, param, err)
		}
	}
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	if len(Endpoints) != 10 || len(templateParam) != 10 {
		t.Fatalf("%d endpoints, %d templates", len(Endpoints), len(templateParam))
	}
	for _, e := range Endpoints {
		want := http.MethodPost
		if e == ProxyDownload {
			want = http.MethodGet
		}
		if !e.Valid() || e.Method() != want {
			t.Errorf("%s: valid %v, method %s", e, e.Valid(), e.Method())
		}
	}
	if Endpoint("notifY").Valid() {
		t.Error("endpoint names are case-sensitive")
	}
}

func TestParseDirectory(t *testing.T) {
	t.Parallel()
	d, err := parseDirectory(directoryJSON("https://gw.test:8443/"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := expand(d[KeyMaterial], "mimi://gw.test/u/+1555")
	if err != nil || u != "https://gw.test:8443/v1/keyMaterial/mimi%3A%2F%2Fgw.test%2Fu%2F%2B1555" {
		t.Errorf("expand = %q, %v", u, err)
	}
	// A parsed URL keeps the escaping, so the server sees the same path.
	pu, err := url.Parse(u)
	if err != nil || pu.EscapedPath() != "/v1/keyMaterial/mimi%3A%2F%2Fgw.test%2Fu%2F%2B1555" {
		t.Errorf("parsed: %q, %v", pu.EscapedPath(), err)
	}

	// Unknown keys are ignored, missing ones stay missing.
	d, err = parseDirectory([]byte(`{"notify":"https://x.test/n/{roomId}","future":"whatever"}`))
	if err != nil || len(d) != 1 || d[Notify] != "https://x.test/n/{roomId}" {
		t.Errorf("partial directory: %v, %v", d, err)
	}
	for _, bad := range []string{
		`[]`,
		`{"notify": 3}`,
		`{"notify":"http://x.test/v1/notify/{roomId}"}`,
		`{"notify":"https://x.test/v1/notify/"}`,
		`{"notify":"https://x.test/{a}/{b}"}`,
		`{"notify":"https:///v1/notify/{roomId}"}`,
	} {
		if _, err := parseDirectory([]byte(bad)); err == nil {
			t.Errorf("parseDirectory(%s) accepted", bad)
		}
	}
}

// FuzzParam checks that every parameter survives escaping and parsing.
func FuzzParam(f *testing.F) {
	for _, s := range []string{"mimi://gw.test/r/dm-1", "a b", "%", "é/€", "\x00\xff", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, param string) {
		if param == "" {
			return
		}
		path := "/v1/notify/" + EscapeParam(param)
		if strings.ContainsAny(path[len("/v1/notify/"):], "/:?# ") {
			t.Fatalf("escaped %q to %q", param, path)
		}
		ep, got, err := parsePath(path)
		if err != nil || ep != Notify || got != param {
			t.Fatalf("parsePath(%q) = %q, %q, %v; want notify, %q", path, ep, got, err, param)
		}
	})
}
