package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
)

func newServer(t *testing.T, checks map[string]Check) *httptest.Server {
	t.Helper()
	b := bustest.New(t)
	ids, err := identity.New(b.Identity(), identity.Config{Domain: "gw.example.net", Pools: []string{"+15559990000-+15559990009"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "mimigw_test_total", Help: "test"}))
	srv := httptest.NewServer(Handler(Options{
		Token: "s3cret", Checks: checks, Registry: reg, Identity: ids, DefaultRegion: "US",
		Facts: map[string]string{"domain": "gw.example.net"}, Notices: []string{"SMSC SIMULATOR in use"},
	}))
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthReadyMetricsStatus(t *testing.T) {
	t.Parallel()
	ready := errors.New("SMSC not bound")
	srv := newServer(t, map[string]Check{"bus": func() error { return nil }, "smpp": func() error { return ready }})
	if code, body := call(t, srv, "GET", "/healthz", "", ""); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("healthz %d %q", code, body)
	}
	if code, body := call(t, srv, "GET", "/readyz", "", ""); code != 503 || !strings.Contains(body, `"error": "SMSC not bound"`) {
		t.Errorf("readyz %d %q", code, body)
	}
	if code, body := call(t, srv, "GET", "/metrics", "", ""); code != 200 || !strings.Contains(body, "mimigw_test_total") {
		t.Errorf("metrics %d", code)
	}
	if code, body := call(t, srv, "GET", "/", "", ""); code != 200 || !strings.Contains(body, "SMSC SIMULATOR in use") || !strings.Contains(body, "not ready: SMSC not bound") || strings.Contains(body, "s3cret") {
		t.Errorf("status page %d %q", code, body)
	}
}

func TestNumbersAPI(t *testing.T) {
	t.Parallel()
	srv := newServer(t, nil)
	if code, _ := call(t, srv, "GET", "/api/v1/numbers", "", ""); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, _ := call(t, srv, "GET", "/api/v1/numbers", "wrong", ""); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	code, body := call(t, srv, "POST", "/api/v1/numbers/virtual", "s3cret", `{"number":"(555) 777-0001","user":"mimi://desk.example/u/bob"}`)
	if code != 201 || !strings.Contains(body, `"+15557770001"`) {
		t.Fatalf("assign %d %s", code, body)
	}
	if code, body := call(t, srv, "POST", "/api/v1/numbers/virtual", "s3cret", `{"number":"+15557770001","user":"mimi://desk.example/u/carol"}`); code != 409 {
		t.Errorf("assign taken number %d %s", code, body)
	}
	if code, _ := call(t, srv, "POST", "/api/v1/numbers/virtual", "s3cret", `{"number":"abc","user":"mimi://desk.example/u/bob"}`); code != 400 {
		t.Errorf("bad number %d", code)
	}
	code, body = call(t, srv, "POST", "/api/v1/numbers/lent", "s3cret", `{"user":"mimi://desk.example/u/alice","contact":"+15551230002"}`)
	if code != 200 {
		t.Fatalf("lend %d %s", code, body)
	}
	var lent identity.Binding
	if err := json.Unmarshal([]byte(body), &lent); err != nil || lent.Number == "" {
		t.Fatalf("lend body %s: %v", body, err)
	}
	code, body = call(t, srv, "GET", "/api/v1/numbers", "s3cret", "")
	var list []identity.Binding
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list) != 2 {
		t.Fatalf("list %d %s %v", code, body, err)
	}
	if code, _ := call(t, srv, "DELETE", "/api/v1/numbers/lent/"+string(lent.Number)+"/+15551230002", "s3cret", ""); code != 204 {
		t.Errorf("release lent %d", code)
	}
	if code, _ := call(t, srv, "DELETE", "/api/v1/numbers/virtual/+15557770001", "s3cret", ""); code != 204 {
		t.Errorf("release virtual %d", code)
	}
	if code, _ := call(t, srv, "DELETE", "/api/v1/numbers/virtual/+15557770001", "s3cret", ""); code != 404 {
		t.Errorf("release again %d", code)
	}
}

func TestProfilingOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		srv := httptest.NewServer(Handler(Options{Profiling: on}))
		code, body := call(t, srv, "GET", "/debug/pprof/goroutine?debug=1", "", "")
		srv.Close()
		if served := code == 200 && strings.Contains(body, "goroutine profile"); served != on {
			t.Errorf("profiling %v: %d %.80q", on, code, body)
		}
	}
}
