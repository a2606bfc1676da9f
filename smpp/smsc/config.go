package smsc

import (
	"fmt"
	"time"

	"github.com/mimigw/mimigw/smpp/coding"
)

// Config is the simulator's configuration (`sim smsc` and the dev SMSC).
type Config struct {
	// Name appears in logs and as the system_id of bind responses.
	// Default "mimigw-sim".
	Name string `yaml:"name"`
	// Accounts may bind. Empty accepts any system_id and password.
	Accounts []Account `yaml:"accounts"`
	// IDFormat is how submit_sm_resp writes message ids: "hex" (default,
	// ten upper-case digits with leading zeros) or "decimal".
	IDFormat string `yaml:"id_format"`
	// ReceiptIDFormat is how receipts write the same ids: "same"
	// (default), "hex" or "decimal". A form that differs from IDFormat
	// exercises the gateway's id normalisation.
	ReceiptIDFormat string `yaml:"receipt_id_format"`
	// ReceiptDelay is the time from submit_sm to its receipt. Default 1s.
	ReceiptDelay time.Duration `yaml:"receipt_delay"`
	// Outcome is the receipt state for every destination not in Outcomes:
	// DELIVRD (default), UNDELIV, EXPIRED, REJECTD, DELETED, or "none" for
	// no receipt.
	Outcome string `yaml:"outcome"`
	// Outcomes sets the outcome per destination ("+15551230002").
	Outcomes map[string]string `yaml:"outcomes"`
	// ReceiptTLVs adds receipted_message_id and message_state to receipts.
	ReceiptTLVs bool `yaml:"receipt_tlvs"`
	// EarlyReceipts sends each receipt before the submit_sm_resp it
	// belongs to, as fast SMSCs sometimes do.
	EarlyReceipts bool `yaml:"early_receipts"`
	// HoldReceipts keeps every receipt until ReleaseReceipts, which sends
	// all of them at once (as many unanswered as Window allows), as an
	// SMSC does after an outage on the handset side.
	HoldReceipts bool `yaml:"hold_receipts"`
	// NoResend gives up a receipt the ESME answers with an error, even a
	// temporary one, as SMSCs that never deliver a receipt twice do. A
	// receipt left unanswered (the connection dropped, no answer in time)
	// is still delivered again once the ESME is bound.
	NoResend bool `yaml:"no_resend"`
	// FirstID is the first message id issued, and the one issued first
	// again after Restart (default: a number from the clock), so that a
	// restarted simulator reuses the ids it issued before.
	FirstID uint64 `yaml:"first_id"`
	// EnquireLink sends an enquire_link on sessions idle this long (0:
	// never).
	EnquireLink time.Duration `yaml:"enquire_link"`
	// Window bounds the deliver_sm (receipts and MO) awaiting their
	// response per session. Default 10.
	Window int `yaml:"window"`
	// ResponseTimeout bounds the wait for a deliver_sm_resp. Default 10s.
	ResponseTimeout time.Duration `yaml:"response_timeout"`
	// LogSize bounds the log of received submit_sm. Default 10000.
	LogSize int `yaml:"log_size"`
	// Coding is how MO texts are written and submit_sm texts read.
	Coding coding.Options `yaml:"coding"`
	// Faults injected from the start; SetFaults changes them at run time.
	Faults Faults `yaml:"faults"`
}

// Account is a system_id and password that may bind.
type Account struct {
	SystemID string `yaml:"system_id"`
	Password string `yaml:"password"`
}

// Faults are errors the simulator injects into submit_sm handling. Counts
// run over all sessions.
type Faults struct {
	// ThrottleEvery answers every Nth submit_sm with ESME_RTHROTTLED.
	ThrottleEvery int `yaml:"throttle_every" json:"throttle_every"`
	// FailEvery answers every Nth submit_sm with FailStatus (default
	// ESME_RSYSERR).
	FailEvery  int    `yaml:"fail_every" json:"fail_every"`
	FailStatus uint32 `yaml:"fail_status" json:"fail_status"`
	// DropEvery takes every Nth submit_sm (logs it with a message id) and
	// closes the connection before answering it, as an SMSC that fails at
	// the wrong moment; answers still queued are lost with it.
	DropEvery int `yaml:"drop_every" json:"drop_every"`
	// Rate answers submit_sm beyond this many per second per session with
	// ESME_RTHROTTLED (0: no limit).
	Rate float64 `yaml:"rate" json:"rate"`
}

// Receipt outcomes.
var outcomes = map[string]bool{"DELIVRD": true, "UNDELIV": true, "EXPIRED": true, "REJECTD": true, "DELETED": true, "none": true}

// Validate names the first offending key.
func (c Config) Validate() error {
	for i, a := range c.Accounts {
		if a.SystemID == "" || len(a.SystemID) > 15 {
			return fmt.Errorf("smsc.accounts[%d].system_id: must be 1 to 15 characters", i)
		}
		if len(a.Password) > 8 {
			return fmt.Errorf("smsc.accounts[%d].password: longer than 8 characters", i)
		}
	}
	switch c.IDFormat {
	case "", "hex", "decimal":
	default:
		return fmt.Errorf("smsc.id_format: %q is neither hex nor decimal", c.IDFormat)
	}
	switch c.ReceiptIDFormat {
	case "", "same", "hex", "decimal":
	default:
		return fmt.Errorf("smsc.receipt_id_format: %q is not one of same, hex, decimal", c.ReceiptIDFormat)
	}
	if c.Outcome != "" && !outcomes[c.Outcome] {
		return fmt.Errorf("smsc.outcome: %q is not one of DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED, none", c.Outcome)
	}
	for dest, o := range c.Outcomes {
		if !outcomes[o] {
			return fmt.Errorf("smsc.outcomes[%s]: %q is not one of DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED, none", dest, o)
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"receipt_delay", c.ReceiptDelay}, {"enquire_link", c.EnquireLink}, {"response_timeout", c.ResponseTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("smsc.%s: %s is negative", d.key, d.v)
		}
	}
	if c.Window < 0 || c.LogSize < 0 {
		return fmt.Errorf("smsc.window, smsc.log_size: negative")
	}
	if err := c.Coding.Validate(); err != nil {
		return fmt.Errorf("smsc.coding: %w", err)
	}
	return c.Faults.validate()
}

func (f Faults) validate() error {
	if f.ThrottleEvery < 0 || f.FailEvery < 0 || f.DropEvery < 0 || f.Rate < 0 {
		return fmt.Errorf("smsc.faults: counts and rate must not be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "mimigw-sim"
	}
	if c.IDFormat == "" {
		c.IDFormat = "hex"
	}
	if c.ReceiptIDFormat == "" || c.ReceiptIDFormat == "same" {
		c.ReceiptIDFormat = c.IDFormat
	}
	if c.ReceiptDelay == 0 {
		c.ReceiptDelay = time.Second
	}
	if c.Outcome == "" {
		c.Outcome = "DELIVRD"
	}
	if c.Window == 0 {
		c.Window = 10
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = 10 * time.Second
	}
	if c.LogSize == 0 {
		c.LogSize = 10000
	}
	return c
}
