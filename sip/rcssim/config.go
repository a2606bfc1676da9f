package rcssim

import (
	"github.com/mimigw/mimigw/sip/msrp"

	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/mimigw/mimigw/mimi/uri"
)

// Config is what the simulator plays and where.
type Config struct {
	// Numbers are the phones it plays: E.164 numbers ("+15551230100") or
	// ranges of numbers of the same length ("+15551230100-+15551230199").
	Numbers []string `yaml:"numbers"`
	// Listen is the SIP address, UDP and TCP on the same port: the
	// gateway's sip.outbound_proxy points here.
	Listen string `yaml:"listen"`
	// MSRP is the TCP address of its MSRP listener, written into its
	// a=path.
	MSRP string `yaml:"msrp"`
	// Gateway is where what the phones send goes, as a SIP URI
	// ("sip:127.0.0.1:5060;transport=tcp"): the gateway, standing in for
	// the IMS core that would route it there.
	Gateway string `yaml:"gateway"`
	// Domain is the host of the sip: URIs it writes for numbers.
	Domain string `yaml:"domain"`
	// Displayed also sends a displayed IMDN when a message asks for one
	// (delivered ones are always sent when asked for).
	Displayed bool `yaml:"displayed"`
	// Setup is how it answers an offer of a=setup:actpass: "active" (it
	// connects, as phones behind NAT do) or "passive" (it waits for the
	// gateway to connect). With "passive" the sessions it opens offer
	// a=setup:passive too, so that the gateway must connect; with
	// "active" they offer actpass.
	Setup string `yaml:"setup"`
	// MSRPRelay, when set, is an MSRP relay (RFC 4976) the phones reach
	// their peers through, as "msrp://host:port;tcp": the simulator AUTHs
	// to it at start, puts the Use-Path it gets before its own URI in
	// every a=path, connects (a=setup active) and carries every session
	// on that connection.
	MSRPRelay string `yaml:"msrp_relay"`
	// MaxLog bounds the log of what it received (oldest dropped).
	MaxLog int `yaml:"max_log"`
}

// Defaults fills what was left empty.
func (c *Config) Defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:5070"
	}
	if c.MSRP == "" {
		c.MSRP = "127.0.0.1:2856"
	}
	if c.Gateway == "" {
		c.Gateway = "sip:127.0.0.1:5060;transport=tcp"
	}
	if c.Domain == "" {
		c.Domain = "rcssim.localhost"
	}
	if c.Setup == "" {
		c.Setup = "active"
	}
	if c.MaxLog == 0 {
		c.MaxLog = 10000
	}
}

// Validate checks a filled configuration, naming the key at fault.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Numbers) == 0 {
		errs = append(errs, errors.New("numbers: none: the simulator plays at least one"))
	}
	if _, err := parseNumbers(c.Numbers); err != nil {
		errs = append(errs, fmt.Errorf("numbers: %w", err))
	}
	for key, a := range map[string]string{"listen": c.Listen, "msrp": c.MSRP} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port: %v", key, a, err))
		}
	}
	if _, err := parseTarget(c.Gateway); err != nil {
		errs = append(errs, fmt.Errorf("gateway: %w", err))
	}
	if c.Setup != "active" && c.Setup != "passive" {
		errs = append(errs, fmt.Errorf("setup: %q is not active or passive", c.Setup))
	}
	if c.MSRPRelay != "" {
		if u, err := msrp.ParseURI(c.MSRPRelay); err != nil || u.Port == 0 {
			errs = append(errs, fmt.Errorf("msrp_relay: %q is not an MSRP URI with a port (%v)", c.MSRPRelay, err))
		}
	}
	if c.MaxLog < 0 {
		errs = append(errs, fmt.Errorf("max_log: %d is negative", c.MaxLog))
	}
	return errors.Join(errs...)
}

// maxRange bounds the numbers one range may hold.
const maxRange = 1_000_000

// numberRange is an inclusive range of E.164 numbers of one length.
type numberRange struct {
	digits int
	lo, hi uint64
}

// numbers is the set of numbers the simulator plays.
type numbers []numberRange

func (ns numbers) has(n uri.Number) bool {
	d := n.Digits()
	v, err := strconv.ParseUint(d, 10, 64)
	if err != nil {
		return false
	}
	for _, r := range ns {
		if len(d) == r.digits && v >= r.lo && v <= r.hi {
			return true
		}
	}
	return false
}

func parseNumbers(list []string) (numbers, error) {
	var out numbers
	for _, s := range list {
		for _, item := range strings.Split(s, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			first, last, isRange := strings.Cut(item, "-")
			if !isRange {
				last = first
			}
			lo, err := uri.ParseNumber(strings.TrimSpace(first), "")
			if err != nil {
				return nil, fmt.Errorf("%q: %w", item, err)
			}
			hi, err := uri.ParseNumber(strings.TrimSpace(last), "")
			if err != nil {
				return nil, fmt.Errorf("%q: %w", item, err)
			}
			a, _ := strconv.ParseUint(lo.Digits(), 10, 64)
			b, _ := strconv.ParseUint(hi.Digits(), 10, 64)
			switch {
			case len(lo.Digits()) != len(hi.Digits()):
				return nil, fmt.Errorf("%q: both ends need as many digits", item)
			case b < a:
				return nil, fmt.Errorf("%q: the range ends before it starts", item)
			case b-a >= maxRange:
				return nil, fmt.Errorf("%q: more than %d numbers", item, maxRange)
			}
			out = append(out, numberRange{digits: len(lo.Digits()), lo: a, hi: b})
		}
	}
	return out, nil
}

// target is a SIP URI reduced to where requests go.
type target struct {
	host      string
	port      int
	transport string // "udp" or "tcp"
}

func (t target) addr() string { return net.JoinHostPort(t.host, strconv.Itoa(t.port)) }

// parseTarget reads "sip:host:port;transport=udp|tcp".
func parseTarget(s string) (target, error) {
	rest, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "sip:")
	if !ok {
		return target{}, fmt.Errorf("%q: want sip:host:port;transport=udp|tcp", s)
	}
	hostport, params, _ := strings.Cut(rest, ";")
	t := target{transport: "udp"}
	for _, kv := range strings.Split(params, ";") {
		if v, ok := strings.CutPrefix(kv, "transport="); ok {
			t.transport = v
		}
	}
	if t.transport != "udp" && t.transport != "tcp" {
		return target{}, fmt.Errorf("%q: transport %q: want udp or tcp", s, t.transport)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return target{}, fmt.Errorf("%q: %v", s, err)
	}
	t.host = host
	if t.port, err = strconv.Atoi(port); err != nil || t.port <= 0 || t.port > 65535 {
		return target{}, fmt.Errorf("%q: bad port %q", s, port)
	}
	return t, nil
}
