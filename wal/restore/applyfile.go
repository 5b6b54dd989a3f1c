package restore

import (
	"io"

	"github.com/superfly/ltx"

	"github.com/walfs/walfs/s3backend"
)

// PageFile is what ApplyFile writes pages into.
type PageFile interface {
	io.WriterAt
	Truncate(size int64) error
}

// ApplyFile decodes the LTX object info from r and applies it to db, with
// every check a restore makes of one file (see applyLTX): the header
// against the key and pageSize (0: any), pages within the commit, the page
// index, trailer and CRC. It returns the file's header and trailer; the
// caller checks the checksum chain. On error db holds a mix of old and new
// pages.
func ApplyFile(r io.Reader, db PageFile, pageSize uint32, info s3backend.FileInfo) (ltx.Header, ltx.Trailer, error) {
	a, err := applyLTX(r, db, expect{pageSize: pageSize, minTXID: info.MinTXID, maxTXID: info.MaxTXID})
	if err != nil {
		return ltx.Header{}, ltx.Trailer{}, objectErr("apply", info, err)
	}
	return a.header, a.trailer, nil
}
