package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/walfs/walfs/s3backend"
)

// Mode is the mount's lease setting.
type Mode string

// Lease modes.
const (
	// ModeAuto takes a lease where the store can hold one and warns where
	// it cannot. The default.
	ModeAuto Mode = "auto"
	// ModeRequired refuses to start where the store cannot hold a lease.
	ModeRequired Mode = "required"
	// ModeOff takes no lease.
	ModeOff Mode = "off"
)

// ParseMode parses a lease setting; "" is ModeAuto.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModeRequired, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("lease %q: want auto, required or off", s)
}

// Open applies mode to store at mount:
//   - off: no lease (nil, nil).
//   - auto and required: probe conditional writes under the root (a few
//     small requests), then Acquire and Run.
//   - Where the store lacks conditional writes, auto logs a warning and
//     returns (nil, nil) — the mount runs unprotected — and required fails
//     with a hint.
//
// A *HeldError means another walfs holds the replica path; other errors
// (the store is unreachable) fail in both modes, since whether a lease is
// possible cannot be told. opts.Where defaults to store.String(). A nil
// *Lease is valid everywhere a Lease is used.
func Open(ctx context.Context, store s3backend.Store, mode Mode, opts Options) (*Lease, error) {
	if mode == "" {
		mode = ModeAuto
	}
	if _, err := ParseMode(string(mode)); err != nil {
		return nil, err
	}
	if opts.Where == "" {
		opts.Where = store.String()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if mode == ModeOff {
		log.Info("lease: off; nothing stops another walfs from writing to this replica path", "replica", opts.Where)
		return nil, nil
	}
	cw, ok := store.(s3backend.ConditionalWriter)
	var err error
	if !ok {
		err = fmt.Errorf("%w: %s has no conditional writes", s3backend.ErrConditionalUnsupported, opts.Where)
	} else {
		err = s3backend.ProbeConditional(ctx, cw)
	}
	switch {
	case errors.Is(err, s3backend.ErrConditionalUnsupported) && mode == ModeRequired:
		return nil, &s3backend.HintError{
			Err:  fmt.Errorf("lease: required, but %s cannot hold a lease: %w", opts.Where, err),
			Hint: "use a store with conditional writes (AWS S3, Cloudflare R2, MinIO, Tigris, versitygw), or set lease: auto to run without one",
		}
	case errors.Is(err, s3backend.ErrConditionalUnsupported):
		log.Warn("the replica store does not support conditional writes, so walfs runs without a lease: nothing stops a second walfs from writing to this replica path (set lease: required to refuse instead)",
			"replica", opts.Where, "err", err)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("lease: %w", err)
	}
	l, err := Acquire(ctx, cw, opts)
	if err != nil {
		return nil, err
	}
	l.Run()
	log.Info("holding the replica lease", "replica", opts.Where, "lease", l.Key(), "ttl", l.opts.TTL, "holder", l.Holder().String())
	return l, nil
}
