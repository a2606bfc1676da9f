package transport

import (
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Option adjusts a Server or Client.
type Option func(*options)

type options struct {
	log *slog.Logger
	reg *prometheus.Registry
}

// WithLogger sets the logger (default: none).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegistry registers the metrics on reg (default: not registered).
// A Server and a Client may share a registry, and so may several of
// either: they then share the metrics.
func WithRegistry(reg *prometheus.Registry) Option { return func(o *options) { o.reg = reg } }

func applyOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}
