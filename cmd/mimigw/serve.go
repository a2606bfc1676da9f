package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/admin"
	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/mls"
	"github.com/mimigw/mimigw/mimi/provider"
	"github.com/mimigw/mimigw/sip"
	"github.com/mimigw/mimigw/sip/rcssim"
	"github.com/mimigw/mimigw/smpp"
	"github.com/mimigw/mimigw/smpp/smsc"
)

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	dev := fs.Bool("dev", false, "run everything embedded on loopback, with an SMSC simulator")
	file := fs.String("config", os.Getenv("MIMIGW_CONFIG"), "YAML configuration `file` (keys overridable by MIMIGW_... variables)")
	fs.Usage = commandUsage(fs, serveUsage)
	if err := parseArgs(fs, args, stdout, stderr); err != nil {
		return err
	}
	if !*dev && *file == "" {
		return usageError{"serve needs --dev or --config FILE"}
	}
	cfg, err := loadConfig(*file, *dev, os.Environ())
	if err != nil {
		return err
	}
	log, level := newLevelLogger(cfg.Log, stderr)
	defer reloadLogLevelOnHUP(*file, *dev, level, log)()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runGateway(ctx, cfg, *dev, log)
}

// runGateway runs the gateway until ctx ends. Shutdown goes in order: the
// gateway stops taking work and finishes what it holds while the edges are
// still up to carry it, then the edges drain and close, then the bus.
func runGateway(ctx context.Context, cfg *Config, dev bool, log *slog.Logger) error {
	start := time.Now()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())

	if dev {
		if err := cfg.makeDevSecrets(); err != nil {
			return err
		}
	}
	openCtx, cancelOpen := context.WithTimeout(ctx, 30*time.Second)
	defer cancelOpen()
	b, err := bus.Open(openCtx, cfg.Bus, log, reg)
	if err != nil {
		return busError(err)
	}
	defer b.Close()
	ids, err := identity.New(b.Identity(), cfg.Gateway.Identity(cfg.Domain))
	if err != nil {
		return err
	}
	if cfg.reload != nil {
		defer onHUP(func() error {
			c, err := cfg.reload()
			if err != nil {
				return err
			}
			return ids.Reload(c.Gateway.Identity(c.Domain))
		}, "gateway.pools, trusted_providers and alphanumeric_senders", log)()
	}
	g, err := gateway.New(openCtx, cfg.Gateway.Config, b, ids, log.With("component", "gateway"), reg)
	if err != nil {
		return err
	}
	if cfg.reload != nil {
		defer onHUP(func() error {
			c, err := cfg.reload()
			if err != nil {
				return err
			}
			return g.ReloadLimits(c.Gateway.Limits)
		}, "gateway.limits", log)()
	}

	eg, egCtx := errgroup.WithContext(context.Background())
	edgeCtx, stopEdges := context.WithCancel(egCtx)
	defer stopEdges()
	gwCtx, stopGateway := context.WithCancel(egCtx)
	defer stopGateway()
	go func() {
		select {
		case <-ctx.Done():
			log.Info("shutting down: finishing messages in flight")
			stopGateway()
		case <-egCtx.Done():
		}
	}()

	checks := map[string]admin.Check{"bus": b.Ready}
	facts := map[string]string{"version": versionString(), "domain": cfg.Domain, "nats": bus.RedactURL(b.ClientURL())}
	var notices []string

	// The simulator outlives the edges, so that the SMS edge can unbind
	// from it cleanly.
	simGroup, _ := errgroup.WithContext(context.Background())
	simCtx, stopSim := context.WithCancel(context.Background())
	defer func() {
		stopSim()
		if err := simGroup.Wait(); err != nil {
			log.Warn("simulator", "err", err)
		}
	}()
	if s := cfg.Simulator; s != nil {
		sim, err := smsc.New(s.Config, log)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", s.Listen)
		if err != nil {
			return fmt.Errorf("smsc_simulator.listen: %w", err)
		}
		simGroup.Go(func() error { return sim.Serve(simCtx, ln) })
		notice := "SMSC SIMULATOR in use on " + s.Listen + ": SMS go nowhere but this process"
		if s.HTTP != "" {
			if err := serveHTTP(simGroup, simCtx, s.HTTP, sim.Handler(), log); err != nil {
				return fmt.Errorf("smsc_simulator.http: %w", err)
			}
			notice += " (MO injection and log on http://" + s.HTTP + ")"
		}
		notices = append(notices, notice)
		log.Warn(notice)
	}
	rcsSim := false
	if r := cfg.RCSSimulator; r != nil && cfg.SIP != nil && proxyAt(cfg.SIP.OutboundProxy, r.Listen) {
		rc := r.Config
		if rc.Gateway == "" {
			rc.Gateway = "sip:" + cfg.SIP.Listen.TCP + ";transport=tcp"
			if cfg.SIP.Listen.TCP == "" {
				rc.Gateway = "sip:" + cfg.SIP.Listen.UDP + ";transport=udp"
			}
		}
		sim, err := rcssim.New(rc, log.With("component", "rcs_simulator"))
		if err != nil {
			return fmt.Errorf("rcs_simulator: %w", err)
		}
		if err := sim.Listen(); err != nil {
			return fmt.Errorf("rcs_simulator: %w", err)
		}
		simGroup.Go(func() error { return sim.Serve(simCtx) })
		notice := "RCS PHONE SIMULATOR in use on " + r.Listen + " as the IMS core, playing " + strings.Join(rc.Numbers, ", ") +
			": RCS messages to them go nowhere but this process"
		if r.HTTP != "" {
			if err := serveHTTP(simGroup, simCtx, r.HTTP, sim.Handler(), log); err != nil {
				return fmt.Errorf("rcs_simulator.http: %w", err)
			}
			notice += " (send hook and log on http://" + r.HTTP + ")"
		}
		notices = append(notices, notice)
		log.Warn(notice)
		rcsSim = true
	}
	if cfg.SMPP != nil {
		e, err := smpp.NewEdge(*cfg.SMPP, g, log.With("component", "smpp"), reg)
		if err != nil {
			return err
		}
		g.UseSMS(e)
		if cfg.reload != nil {
			defer onHUP(func() error {
				c, err := cfg.reload()
				switch {
				case err != nil:
					return err
				case c.SMPP == nil:
					return errors.New("smpp: section removed; that needs a restart")
				}
				return e.ReloadProtection(c.SMPP.Protection)
			}, "smpp.protection (segment cap, allowed destinations, sender and destination rates)", log)()
		}
		checks["smpp"] = e.Ready
		eg.Go(func() error { return e.Run(edgeCtx) })
		var smscs []string
		for _, s := range cfg.SMPP.SMSCs {
			smscs = append(smscs, s.Name+" "+s.Address)
		}
		facts["smpp"] = strings.Join(smscs, ", ")
	}
	if cfg.SIP != nil {
		e, err := sip.NewEdge(*cfg.SIP, g, log.With("component", "sip"), reg)
		if err != nil {
			return err
		}
		g.UseRCS(e)
		checks["sip"] = e.Ready
		eg.Go(func() error { return e.Run(edgeCtx) })
		facts["sip"] = strings.TrimSpace(fmt.Sprintf("udp %s tcp %s tls %s", cfg.SIP.Listen.UDP, cfg.SIP.Listen.TCP, cfg.SIP.Listen.TLS))
	}
	if cfg.MLS != nil {
		p, err := mls.Open(openCtx, *cfg.MLS, b.JetStream(), mls.WithLogger(log.With("component", "mls")), mls.WithRegistry(reg), mls.WithBucketOpener(b.KeyValue))
		if err != nil {
			return err
		}
		eg.Go(func() error { return p.Run(edgeCtx) })
		facts["mls"] = fmt.Sprintf("cipher suite %d, state on the bus (end-to-end encryption ends at the gateway)", cfg.MLS.WithDefaults().CipherSuite)
		if cfg.Provider != nil {
			mp, err := provider.New(openCtx, *cfg.Provider, b, p, provider.WithLogger(log.With("component", "provider")), provider.WithRegistry(reg))
			if err != nil {
				return err
			}
			if err := mp.Listen(); err != nil {
				return err
			}
			eg.Go(func() error { return mp.Run(edgeCtx) })
			if cfg.reload != nil {
				defer onHUP(func() error { return reloadProvider(cfg.reload, dev, mp) }, "provider peers, certificates and served numbers", log)()
			}
			var peers []string
			for _, peer := range cfg.Provider.Peers {
				peers = append(peers, peer.Domain)
			}
			facts["provider"] = fmt.Sprintf("MIMI provider protocol on https://%s, peers: %s", mp.Addr(), strings.Join(peers, ", "))
		}
	}
	eg.Go(func() error {
		err := g.Run(gwCtx)
		stopEdges()
		return err
	})

	token, tokenSource, err := cfg.adminToken(dev)
	if err != nil {
		return err
	}
	handler := admin.Handler(admin.Options{
		Token: token, Checks: checks, Registry: reg, Identity: ids, DefaultRegion: cfg.DefaultRegion,
		Facts: facts, Notices: notices, Profiling: cfg.HTTP.Profiling, Log: log.With("component", "admin"),
		Context: edgeCtx, Bus: b, SMSCs: statusSMSCs(cfg.SMPP), SIP: statusSIP(cfg.SIP), Trace: statusTrace(b, cfg.DefaultRegion),
	})
	if err := serveHTTP(eg, edgeCtx, cfg.HTTP.Listen, handler, log); err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	if token == "" {
		log.Warn("admin API disabled: no http.admin_token_file configured")
	} else {
		log.Info("admin API enabled", "token_from", tokenSource)
	}
	log.Info("mimigw running", "domain", cfg.Domain, "http", cfg.HTTP.Listen, "nats", bus.RedactURL(b.ClientURL()), "started_in", time.Since(start).Round(time.Millisecond))
	if dev {
		log.Info("try it: go run ./cmd/mimigw send --to +15551230002 \"hello €\"")
		if rcsSim {
			log.Info("try it over RCS: go run ./cmd/mimigw send --to +15551230100 \"hello €\"")
		}
	}
	err = eg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("mimigw stopped", "err", err)
	return err
}

// proxyAt reports whether an outbound proxy URI
// ("sip:127.0.0.1:5070;transport=tcp") is at addr: the built-in RCS phone
// simulator runs only where the gateway sends.
func proxyAt(proxy, addr string) bool {
	rest, ok := strings.CutPrefix(strings.ToLower(proxy), "sip:")
	if !ok {
		return false
	}
	hostport, _, _ := strings.Cut(rest, ";")
	return hostport == strings.ToLower(addr)
}

// serveHTTP serves handler on addr until ctx ends.
func serveHTTP(eg *errgroup.Group, ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	eg.Go(func() error {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	eg.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return nil
}
