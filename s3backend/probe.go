package s3backend

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/walfs/walfs/providers"
)

// Prober is a store that can check, with a few tiny requests under its
// root, that it is usable. Both stores of this package implement it.
type Prober interface {
	Probe(ctx context.Context) (ProbeResult, error)
}

var (
	_ Prober = (*S3Store)(nil)
	_ Prober = (*FileStore)(nil)
)

// ProbeResult is what Probe found out.
type ProbeResult struct {
	Steps []ProbeStep `json:"steps"`
	// ConditionalWrites is nil when the probe failed before measuring it.
	ConditionalWrites *ConditionalWrites `json:"conditional_writes,omitempty"`
}

// ProbeStep is one request of a probe.
type ProbeStep struct {
	Name   string `json:"name"` // list, write, read, delete
	OK     bool   `json:"ok"`
	Millis int64  `json:"ms"`
	Error  string `json:"error,omitempty"` // one line, hint included
}

// ConditionalWrites is whether the store honours conditional writes, as
// ProbeConditional measured them: If-None-Match: * must refuse a second
// create of the same key (412, or 409 for a concurrent conditional write)
// and If-Match must refuse a stale ETag and accept the current one.
type ConditionalWrites struct {
	Supported providers.Support `json:"supported"`
	Detail    string            `json:"detail"`
}

// probeKey is a key under the root that no listing mistakes for an LTX file.
func probeKey(prefix, suffix string) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	return prefix + ".walfs-probe-" + hex.EncodeToString(rnd[:]) + suffix
}

// step runs fn as a named probe step and records it.
func (r *ProbeResult) step(name string, fn func() error) error {
	start := time.Now()
	err := fn()
	st := ProbeStep{Name: name, OK: err == nil, Millis: time.Since(start).Milliseconds()}
	if err != nil {
		st.Error = err.Error()
	}
	r.Steps = append(r.Steps, st)
	return err
}

// Probe lists the root, writes, reads back and deletes a small object under
// it, and measures conditional-write support with ProbeConditional. It
// returns the first failure of list, write, read or delete as an error with
// a hint; conditional-write trouble is only reported. Probe objects are
// deleted even when a step fails.
func (s *S3Store) Probe(ctx context.Context) (ProbeResult, error) {
	var res ProbeResult
	err := res.step("list", func() error {
		_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix), MaxKeys: aws.Int32(1)})
		if err != nil {
			return fmt.Errorf("probe %s: list: %w", s, s.ec.classify(err))
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	key := probeKey(s.prefix, "")
	body := []byte("walfs probe " + time.Now().UTC().Format(time.RFC3339Nano))
	if err := res.step("write", func() error { return s.probePut(ctx, key, body) }); err != nil {
		return res, err
	}
	readErr := res.step("read", func() error { return s.probeGet(ctx, key, body) })
	if readErr == nil {
		res.ConditionalWrites = conditionalReport(ctx, s)
	}
	delErr := res.step("delete", func() error {
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
			return fmt.Errorf("probe %s: delete %s (retention needs delete permission): %w", s, key, s.ec.classify(err))
		}
		return nil
	})
	return res, cmp.Or(readErr, delErr)
}

func (s *S3Store) probePut(ctx context.Context, key string, body []byte) error {
	in := &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("probe %s: write %s: %w", s, key, s.ec.classify(err))
	}
	return nil
}

func (s *S3Store) probeGet(ctx context.Context, key string, want []byte) error {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return fmt.Errorf("probe %s: read %s: %w", s, key, s.ec.classify(err))
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		return fmt.Errorf("probe %s: read %s: %w", s, key, s.ec.classify(err))
	}
	if !bytes.Equal(got, want) {
		return withHint(fmt.Errorf("probe %s: read %s: got %d bytes that differ from the %d written", s, key, len(got), len(want)),
			"the store does not return what was written: check proxies or gateways in front of it, and sign-payload")
	}
	return nil
}

// conditionalReport runs ProbeConditional and says what it found.
func conditionalReport(ctx context.Context, cw ConditionalWriter) *ConditionalWrites {
	err := ProbeConditional(ctx, cw)
	switch {
	case err == nil:
		return &ConditionalWrites{providers.SupportYes,
			"supported: a second If-None-Match: * put of the same key was refused, and If-Match honoured the ETag"}
	case errors.Is(err, ErrConditionalUnsupported) && (apiCode(err) == "NotImplemented" || httpStatus(err) == http.StatusNotImplemented):
		return &ConditionalWrites{providers.SupportNo, "not supported: the store answers conditional puts with 501 NotImplemented"}
	case errors.Is(err, ErrConditionalUnsupported):
		msg := err.Error()
		if _, after, ok := strings.Cut(msg, ErrConditionalUnsupported.Error()+": "); ok {
			msg = after
		}
		return &ConditionalWrites{providers.SupportNo, "not supported: " + msg}
	}
	return &ConditionalWrites{providers.SupportUnknown, "could not be measured: " + err.Error()}
}

// Probe initializes the store, then writes, reads back and deletes a small
// file under its root, and measures conditional writes like S3Store.Probe.
func (s *FileStore) Probe(ctx context.Context) (ProbeResult, error) {
	var res ProbeResult
	if err := res.step("init", func() error { return s.Init(ctx) }); err != nil {
		return res, err
	}
	name := filepath.Join(s.root, probeKey("", ""))
	body := []byte("walfs probe")
	if err := res.step("write", func() error {
		if err := os.WriteFile(name, body, 0o600); err != nil {
			return withHint(fmt.Errorf("probe %s: write: %w", s, err), "check the replica directory's permissions and free space")
		}
		return nil
	}); err != nil {
		return res, err
	}
	readErr := res.step("read", func() error {
		got, err := os.ReadFile(name)
		if err == nil && !bytes.Equal(got, body) {
			err = errors.New("content differs from what was written")
		}
		if err != nil {
			return fmt.Errorf("probe %s: read: %w", s, err)
		}
		return nil
	})
	if readErr == nil {
		res.ConditionalWrites = conditionalReport(ctx, s)
	}
	delErr := res.step("delete", func() error {
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("probe %s: delete: %w", s, err)
		}
		return nil
	})
	return res, cmp.Or(readErr, delErr)
}
