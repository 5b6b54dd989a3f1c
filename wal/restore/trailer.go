package restore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
)

// ReadPostApply reads the post-apply checksum from an object's trailer (one
// ranged read). An object too small to hold a trailer, or shorter than
// listed, gives an error matching ErrCorrupt; the store's errors pass
// through wrapped.
func ReadPostApply(ctx context.Context, st s3backend.Store, info s3backend.FileInfo) (ltx.Checksum, error) {
	if info.Size < ltx.HeaderSize+ltx.TrailerSize {
		return 0, objectErr("read trailer of", info, fmt.Errorf("%w: object too small (%d bytes)", ErrCorrupt, info.Size))
	}
	rc, err := st.Open(ctx, info, info.Size-ltx.TrailerSize)
	if err != nil {
		return 0, objectErr("read trailer of", info, err)
	}
	defer rc.Close() // a download: nothing to lose
	var b [ltx.TrailerSize]byte
	if _, err := io.ReadFull(rc, b[:]); errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return 0, objectErr("read trailer of", info, fmt.Errorf("%w: %w", ErrCorrupt, err))
	} else if err != nil {
		return 0, objectErr("read trailer of", info, err)
	}
	return ltx.Checksum(binary.BigEndian.Uint64(b[:8])), nil
}
