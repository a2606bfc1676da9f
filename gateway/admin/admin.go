package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Check is one readiness condition: nil when ready.
type Check func() error

// Options says what the server shows and controls.
type Options struct {
	// Token guards /api/v1; an empty token disables the API.
	Token string
	// Checks are the components /readyz reports on (bus, smpp, sip),
	// keyed by name.
	Checks map[string]Check
	// Required names the components that must be ready for /readyz to
	// answer 200 when the request does not name its own
	// (/readyz?require=bus,smpp); empty: all of Checks.
	Required []string
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

	// Bus, when set, is shown on the status page: its connection, the
	// phone and timer streams and their consumers' lag.
	Bus *bus.Bus
	// SMSCs are the SMS edge's SMSCs as configured; the page shows their
	// binds, window, throttling and failures from Registry.
	SMSCs []SMSC
	// SIP, when set, describes the RCS edge for the page.
	SIP *SIP
	// Trace backs the page's search box (GET /?q=KEY); nil: no search.
	Trace func(ctx context.Context, key string) (*gateway.Trace, error)
	// Context ends the sampling of Registry behind the page's rates; nil:
	// sampling lasts as long as the process. SampleEvery is its period
	// (default 5 s).
	Context     context.Context
	SampleEvery time.Duration
}

// SMSC is one SMSC of the SMS edge, as configured. Binds and Window are
// per bind mode and per bind; 0 means the edge's default, not shown.
type SMSC struct {
	Name, Address string
	TLS           bool
	BindMode      string // transceiver or transmitter_receiver
	Binds, Window int
}

// SIP describes the RCS edge: where it listens and whom it talks to.
type SIP struct {
	// Listeners are transport and address ("udp 127.0.0.1:5060").
	Listeners []string
	// Trusted are the peers whose requests are taken: CIDRs and TLS
	// identities.
	Trusted       []string
	OutboundProxy string
	Digest        bool
}

// Handler returns the HTTP handler.
func Handler(o Options) http.Handler {
	s := &server{o: o, started: time.Now()}
	if o.Registry != nil {
		every := o.SampleEvery
		if every <= 0 {
			every = 5 * time.Second
		}
		var names []string
		for _, c := range o.SMSCs {
			names = append(names, c.Name)
		}
		s.rates = newSampler(o.Registry, every, names)
		ctx := o.Context
		if ctx == nil {
			ctx = context.Background()
		}
		go s.rates.run(ctx)
	}
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
	rates   *sampler // nil without a registry
}

// readiness runs every check at once and returns the failing ones by
// component.
func (s *server) readiness() map[string]string {
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := map[string]string{}
	for name, check := range s.o.Checks {
		wg.Go(func() {
			if err := check(); err != nil {
				mu.Lock()
				failed[name] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

// readyReport is the body of /readyz.
type readyReport struct {
	Ready    bool                 `json:"ready"`
	Required []string             `json:"required"`
	Edges    map[string]edgeReady `json:"edges"`
}

type edgeReady struct {
	Ready    bool   `json:"ready"`
	Required bool   `json:"required"`
	Error    string `json:"error,omitempty"`
}

// required is what a request needs ready: ?require=bus,smpp (repeatable),
// else Options.Required, else every component.
func (s *server) required(r *http.Request) []string {
	var names []string
	for _, v := range r.URL.Query()["require"] {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		names = slices.Clone(s.o.Required)
	}
	if len(names) == 0 {
		names = sortedKeys(s.o.Checks)
	}
	slices.Sort(names)
	return names
}

// readyz reports every component and answers 200 when the required ones
// are ready, else 503. A component required but not configured here is
// not ready.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	failed := s.readiness()
	rep := readyReport{Ready: true, Required: s.required(r), Edges: map[string]edgeReady{}}
	if rep.Required == nil {
		rep.Required = []string{}
	}
	for name := range s.o.Checks {
		rep.Edges[name] = edgeReady{Ready: failed[name] == "", Error: failed[name]}
	}
	for _, name := range rep.Required {
		e, ok := rep.Edges[name]
		if !ok {
			e = edgeReady{Error: "not configured on this instance"}
		}
		e.Required = true
		rep.Edges[name] = e
		rep.Ready = rep.Ready && e.Ready
	}
	code := http.StatusOK
	if !rep.Ready {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, code, rep)
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
