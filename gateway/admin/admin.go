package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Check is one readiness condition: nil when ready.
type Check func() error

// Options says what the server shows and controls.
type Options struct {
	// Token guards /api/v1; an empty token disables the API.
	Token string
	// Checks must all pass for /readyz to answer 200, keyed by component.
	Checks map[string]Check
	// Registry is what /metrics serves.
	Registry *prometheus.Registry
	// Identity backs the numbers API.
	Identity *identity.Store
	// DefaultRegion reads national numbers given to the API.
	DefaultRegion string
	// Facts are shown on the status page (version, domain, listeners);
	// Notices are shown prominently (such as "SMSC simulator in use").
	Facts   map[string]string
	Notices []string
	// Profiling serves the Go runtime's profiles under /debug/pprof/.
	Profiling bool
	Log       *slog.Logger
}

// Handler returns the HTTP handler.
func Handler(o Options) http.Handler {
	s := &server{o: o, started: time.Now()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if o.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	}
	mux.HandleFunc("GET /{$}", s.status)
	if o.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/numbers", s.listNumbers)
	api.HandleFunc("POST /api/v1/numbers/virtual", s.assignVirtual)
	api.HandleFunc("DELETE /api/v1/numbers/virtual/{number}", s.releaseVirtual)
	api.HandleFunc("POST /api/v1/numbers/lent", s.lend)
	api.HandleFunc("DELETE /api/v1/numbers/lent/{number}/{contact}", s.releaseLent)
	mux.Handle("/api/v1/", s.authorized(api))
	return mux
}

type server struct {
	o       Options
	started time.Time
}

// readiness returns the failing checks by component.
func (s *server) readiness() map[string]string {
	failed := map[string]string{}
	for name, check := range s.o.Checks {
		if err := check(); err != nil {
			failed[name] = err.Error()
		}
	}
	return failed
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	failed := s.readiness()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(failed) == 0 {
		fmt.Fprintln(w, "ready")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	for _, name := range sortedKeys(failed) {
		fmt.Fprintf(w, "%s: %s\n", name, failed[name])
	}
}

func (s *server) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.o.Token == "" {
			apiError(w, http.StatusNotFound, errors.New("the admin API is disabled: no token configured"))
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.o.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mimigw"`)
			apiError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) listNumbers(w http.ResponseWriter, r *http.Request) {
	list, err := s.o.Identity.List(r.Context())
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, err)
		return
	}
	if list == nil {
		list = []identity.Binding{}
	}
	writeJSON(w, http.StatusOK, list)
}

type assignment struct {
	Number  string `json:"number"`
	User    string `json:"user"`
	Contact string `json:"contact,omitempty"`
}

func (s *server) decode(w http.ResponseWriter, r *http.Request) (assignment, bool) {
	var a assignment
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		apiError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return a, false
	}
	return a, true
}

func (s *server) number(w http.ResponseWriter, field, v string) (uri.Number, bool) {
	n, err := uri.ParseNumber(v, s.o.DefaultRegion)
	if err != nil {
		apiError(w, http.StatusBadRequest, fmt.Errorf("%s: %w", field, err))
		return "", false
	}
	return n, true
}

func (s *server) assignVirtual(w http.ResponseWriter, r *http.Request) {
	a, ok := s.decode(w, r)
	if !ok {
		return
	}
	n, ok := s.number(w, "number", a.Number)
	if !ok {
		return
	}
	if err := s.o.Identity.AssignVirtual(r.Context(), n, a.User); err != nil {
		apiError(w, statusOf(err), err)
		return
	}
	s.audit(r.Context(), "virtual number assigned", "number", n, "user", a.User)
	writeJSON(w, http.StatusCreated, identity.Binding{Kind: identity.BindingVirtual, Number: n, User: a.User})
}

func (s *server) releaseVirtual(w http.ResponseWriter, r *http.Request) {
	n, ok := s.number(w, "number", r.PathValue("number"))
	if !ok {
		return
	}
	if err := s.o.Identity.ReleaseVirtual(r.Context(), n); err != nil {
		apiError(w, statusOf(err), err)
		return
	}
	s.audit(r.Context(), "virtual number released", "number", n)
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) lend(w http.ResponseWriter, r *http.Request) {
	a, ok := s.decode(w, r)
	if !ok {
		return
	}
	contact, ok := s.number(w, "contact", a.Contact)
	if !ok {
		return
	}
	if _, err := uri.ParseMIMI(a.User); err != nil {
		apiError(w, http.StatusBadRequest, fmt.Errorf("user: %w", err))
		return
	}
	n, err := s.o.Identity.Lend(r.Context(), a.User, contact)
	if err != nil {
		apiError(w, statusOf(err), err)
		return
	}
	s.audit(r.Context(), "number lent", "number", n, "contact", contact, "user", a.User)
	writeJSON(w, http.StatusOK, identity.Binding{Kind: identity.BindingLent, Number: n, Contact: contact, User: a.User})
}

func (s *server) releaseLent(w http.ResponseWriter, r *http.Request) {
	n, ok := s.number(w, "number", r.PathValue("number"))
	if !ok {
		return
	}
	contact, ok := s.number(w, "contact", r.PathValue("contact"))
	if !ok {
		return
	}
	if err := s.o.Identity.ReleaseLent(r.Context(), n, contact); err != nil {
		apiError(w, statusOf(err), err)
		return
	}
	s.audit(r.Context(), "lent number released", "number", n, "contact", contact)
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) audit(ctx context.Context, msg string, args ...any) {
	if s.o.Log != nil {
		s.o.Log.InfoContext(ctx, msg, args...)
	}
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, identity.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, identity.ErrNumberInUse), errors.Is(err, identity.ErrPoolExhausted):
		return http.StatusConflict
	case errors.Is(err, uri.ErrBadURI), errors.Is(err, uri.ErrBadNumber):
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func apiError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>mimigw</title>
<style>body{font-family:sans-serif;margin:2em;max-width:60em}td,th{padding:.2em .8em;text-align:left}
.bad{color:#a00}.ok{color:#070}.notice{background:#fff3c4;border:1px solid #d9b100;padding:.6em;margin:.6em 0}</style></head>
<body><h1>mimigw</h1>
{{range .Notices}}<div class="notice">{{.}}</div>{{end}}
<h2>Readiness</h2><table>{{range .Components}}<tr><th>{{.Name}}</th>{{if .Err}}<td class="bad">not ready: {{.Err}}</td>{{else}}<td class="ok">ready</td>{{end}}</tr>{{end}}</table>
<h2>Gateway</h2><table>{{range .Facts}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}
<tr><th>up since</th><td>{{.Started}}</td></tr></table>
<p><a href="/metrics">metrics</a> · <a href="/readyz">readyz</a> · <a href="/healthz">healthz</a></p>
</body></html>
`))

type row struct{ Name, Value, Err string }

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	failed := s.readiness()
	var data struct {
		Notices    []string
		Components []row
		Facts      []row
		Started    string
	}
	data.Notices = s.o.Notices
	for _, name := range sortedKeys(s.o.Checks) {
		data.Components = append(data.Components, row{Name: name, Err: failed[name]})
	}
	for _, name := range sortedKeys(s.o.Facts) {
		data.Facts = append(data.Facts, row{Name: name, Value: s.o.Facts[name]})
	}
	data.Started = s.started.UTC().Format(time.RFC3339)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := statusPage.Execute(w, data); err != nil && s.o.Log != nil {
		s.o.Log.Warn("status page", "err", err)
	}
}
