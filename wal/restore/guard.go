package restore

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/superfly/ltx"
)

// frameGuard passes an LTX stream through unchanged while following its page
// frames, and fails the read that would hand the decoder a compressed block
// size no valid file has. ltx.Decoder allocates a block before reading it, so
// an unchecked size field in a damaged object could cost 4 GiB of memory.
type frameGuard struct {
	r     io.Reader
	state guardState
	field [ltx.HeaderSize]byte // the field being collected
	n     int                  // bytes of it collected so far
	skip  int64                // block bytes left to pass in guardBlock
	page  int64                // page size from the header
}

type guardState int

const (
	guardHeader     guardState = iota // the 100-byte file header
	guardPageHeader                   // a 6-byte page header
	guardSize                         // the 4-byte compressed block size
	guardBlock                        // the compressed block
	guardRest                         // past the page frames, or a format it does not follow
)

// fieldSize is the length of the field collected in each state.
var fieldSize = [...]int{guardHeader: ltx.HeaderSize, guardPageHeader: ltx.PageHeaderSize, guardSize: 4}

func (g *frameGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if ferr := g.follow(p[:n]); ferr != nil {
		return 0, ferr
	}
	return n, err
}

// follow advances the guard over b.
func (g *frameGuard) follow(b []byte) error {
	for len(b) > 0 && g.state != guardRest {
		if g.state == guardBlock {
			k := min(int64(len(b)), g.skip)
			g.skip -= k
			b = b[k:]
			if g.skip == 0 {
				g.state = guardPageHeader
			}
			continue
		}
		need := fieldSize[g.state]
		k := copy(g.field[g.n:need], b)
		g.n += k
		b = b[k:]
		if g.n < need {
			return nil
		}
		g.n = 0
		switch f := g.field[:need]; g.state {
		case guardHeader:
			g.page = int64(binary.BigEndian.Uint32(f[8:]))
			g.state = guardPageHeader
			if !ltx.IsValidPageSize(uint32(g.page)) {
				g.state = guardRest // the decoder rejects the header
			}
		case guardPageHeader:
			switch flags := binary.BigEndian.Uint16(f[4:]); {
			case flags&ltx.PageHeaderFlagSize != 0:
				g.state = guardSize
			default:
				// The end marker, or the old LZ4-frame format, which the
				// decoder streams with bounded memory.
				g.state = guardRest
			}
		case guardSize:
			// lz4.CompressBlockBound: the most a page can take compressed.
			size, bound := int64(binary.BigEndian.Uint32(f)), g.page+g.page/255+16
			if size == 0 || size > bound {
				return fmt.Errorf("page frame claims a %d-byte compressed block; a %d-byte page needs at most %d", size, g.page, bound)
			}
			g.skip = size
			g.state = guardBlock
		}
	}
	return nil
}
