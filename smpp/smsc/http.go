package smsc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Handler is the simulator's HTTP hook:
//
//	GET  /messages[?limit=N]  the last N received submit_sm (JSON), newest last
//	POST /mo                  inject an MO message: {"from","to","text","order":[2,1],"system_id"}
//	GET  /faults, POST /faults  read or replace the injected faults (JSON)
//	GET  /sessions            {"bound":N,"receivers":M}
//
// It has no authentication: serve it on loopback only.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	// The address the gateway advertises answers with what is there.
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "SMSC simulator %s: nothing submitted here reaches a phone.\n\n"+
			"GET  /messages            what was submitted (?limit=N)\n"+
			"POST /mo                  inject an MO message: {\"from\",\"to\",\"text\"}\n"+
			"GET  /faults, POST /faults  injected faults\n"+
			"GET  /sessions            binds\n", s.cfg.Name)
	})
	mux.HandleFunc("GET /messages", s.httpMessages)
	mux.HandleFunc("POST /mo", s.httpMO)
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.currentFaults())
	})
	mux.HandleFunc("POST /faults", s.httpFaults)
	mux.HandleFunc("GET /sessions", func(w http.ResponseWriter, r *http.Request) {
		all, rx := s.Bound()
		writeJSON(w, http.StatusOK, map[string]int{"bound": all, "receivers": rx})
	})
	return mux
}

func (s *Server) httpMessages(w http.ResponseWriter, r *http.Request) {
	list := s.Received()
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("limit: %q is not a count", v))
			return
		}
		if n < len(list) {
			list = list[len(list)-n:]
		}
	}
	writeJSON(w, http.StatusOK, list)
}

// moRequest is the body of POST /mo.
type moRequest struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Text     string `json:"text"`
	Order    []int  `json:"order"`
	SystemID string `json:"system_id"`
}

func (s *Server) httpMO(w http.ResponseWriter, r *http.Request) {
	var req moRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if req.From == "" || req.To == "" {
		httpError(w, http.StatusBadRequest, errors.New("from and to are required"))
		return
	}
	ctx := r.Context()
	statuses, err := s.InjectMO(ctx, MO{From: req.From, To: req.To, Text: req.Text, Order: req.Order, SystemID: req.SystemID})
	if errors.Is(err, ErrNoReceiver) {
		httpError(w, http.StatusServiceUnavailable, err)
		return
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	out := make([]uint32, len(statuses))
	for i, st := range statuses {
		out[i] = uint32(st)
	}
	writeJSON(w, http.StatusOK, map[string]any{"statuses": out, "at": time.Now().UTC()})
}

func (s *Server) httpFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if err := s.SetFaults(f); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	s.log.Info("faults changed", "faults", fmt.Sprintf("%+v", f))
	writeJSON(w, http.StatusOK, f)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
