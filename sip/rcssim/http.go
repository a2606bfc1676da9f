package rcssim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Handler is the simulator's HTTP hook:
//
//	GET  /messages[?limit=N]  the last N messages and IMDNs received (JSON), newest last
//	POST /send                send as a phone: {"from","to","text","mode":"pager|large|chat"}
//
// It has no authentication: serve it on loopback only.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "RCS phone simulator for %v: nothing sent to these numbers reaches a phone.\n\n"+
			"GET  /messages   what its phones received (?limit=N)\n"+
			"POST /send       send as one of its phones: {\"from\",\"to\",\"text\",\"mode\":\"pager|large|chat\"}\n", s.cfg.Numbers)
	})
	mux.HandleFunc("GET /messages", func(w http.ResponseWriter, r *http.Request) {
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
	})
	mux.HandleFunc("POST /send", s.httpSend)
	return mux
}

// sendRequest is the body of POST /send.
type sendRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
	Text string `json:"text"`
	Mode string `json:"mode"`
}

func (s *Sim) httpSend(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	if req.From == "" || req.To == "" {
		httpError(w, http.StatusBadRequest, errors.New("from and to are required"))
		return
	}
	mode := req.Mode
	if mode == "" {
		mode = ModePager
	}
	if mode != ModePager && mode != ModeLarge && mode != ModeChat {
		httpError(w, http.StatusBadRequest, fmt.Errorf("mode %q: want pager, large or chat", req.Mode))
		return
	}
	id, err := s.Send(r.Context(), Outgoing{From: req.From, To: req.To, Text: req.Text, Mode: mode})
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, ErrNotOurs) {
			code = http.StatusBadRequest
		}
		httpError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message_id": id, "mode": mode})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
