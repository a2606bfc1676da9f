package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/mimigw/mimigw/mimi/bus"
)

// toolFlags are what every tool that talks to the bus takes: the same
// configuration as the gateway it works with, or --dev for the defaults
// of `serve --dev`, and a NATS URL.
type toolFlags struct {
	config *string
	dev    *bool
	nats   *string
}

func addToolFlags(fs *flag.FlagSet) toolFlags {
	return toolFlags{
		config: fs.String("config", os.Getenv("MIMIGW_CONFIG"), "the gateway's configuration `file` (for its domain, number plan and bus)"),
		dev:    fs.Bool("dev", false, "use the settings of `serve --dev` (the default without --config)"),
		nats:   fs.String("nats", "", "NATS server `URL` (default: the gateway's, or nats://127.0.0.1:4222)"),
	}
}

// load returns the configuration and the bus settings to reach the
// gateway's NATS server.
func (t toolFlags) load() (*Config, error) {
	dev := *t.dev || *t.config == ""
	cfg, err := loadConfig(*t.config, dev, os.Environ())
	if err != nil {
		return nil, err
	}
	switch {
	case *t.nats != "":
		cfg.Bus.URL = *t.nats
	case cfg.Bus.URL == "":
		cfg.Bus.URL = "nats://" + cfg.Bus.Embedded.Listen
	}
	cfg.Bus.Name = "mimigw-tool"
	return cfg, nil
}

// openBus connects a tool to the gateway's bus, changing nothing on it. A
// NATS server that is not a mimigw bus (no JetStream, or not the gateway's
// streams) is refused at once, naming its URL.
func openBus(ctx context.Context, cfg *Config) (*bus.Bus, error) {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := bus.Attach(octx, cfg.Bus, slog.New(slog.DiscardHandler))
	if err != nil {
		err = redactErr(busError(err))
		if errors.Is(err, bus.ErrUnavailable) {
			return nil, fmt.Errorf("%w (is the gateway running? `mimigw serve --dev`)", err)
		}
		return nil, err
	}
	return b, nil
}
