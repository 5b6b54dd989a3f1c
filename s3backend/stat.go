package s3backend

import "context"

// Stater is implemented by stores that can read one object's stored
// attributes. Unlike List, whose CreatedAt may come from the store's own
// clock (S3 LastModified), Stat returns the CreatedAt given to Write, at
// millisecond precision or better. It costs one request per object on S3,
// so use it only where the commit time matters (point-in-time restore).
type Stater interface {
	// Stat returns info with Size and CreatedAt filled in from the store,
	// or an error matching ErrNotFound.
	Stat(ctx context.Context, info FileInfo) (FileInfo, error)
}

var _ Stater = (*FileStore)(nil)
