package head

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the head record parser (the object
// comes from the store, which anyone with write access to the bucket can
// change): it never panics, every error matches ErrUnreadable, and a record
// it accepts encodes and parses back to itself.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"version":1,"seq":3,"written":"2026-03-01T12:00:00Z","writer":"w","dbs":{"sub/app.db":{"txid":9,"checksum":"0123456789abcdef","commit":"2026-03-01T11:59:59Z","files":[{"level":9,"min":1,"max":5,"size":4096},{"level":0,"min":6,"max":9,"size":300}]},"old.db":{"txid":4,"checksum":"8000000000000001","commit":"2026-03-01T11:00:00Z","files":[],"deleted":true}}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"dbs":{"../x":{"txid":1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrUnreadable) {
				t.Fatalf("error does not match ErrUnreadable: %v", err)
			}
			return
		}
		body, err := rec.marshal()
		if err != nil {
			t.Fatalf("an accepted record does not encode: %v", err)
		}
		again, err := Parse(body)
		if err != nil {
			t.Fatalf("an accepted record, encoded, does not parse: %v\n%s", err, body)
		}
		if !reflect.DeepEqual(normal(rec), normal(again)) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, again)
		}
	})
}

// normal makes empty and nil file lists compare equal and times compare
// by instant.
func normal(r Record) Record {
	out := r
	out.Written = r.Written.UTC()
	out.DBs = map[string]DB{}
	for k, v := range r.DBs {
		if len(v.Files) == 0 {
			v.Files = nil
		}
		v.Commit = v.Commit.UTC()
		out.DBs[k] = v
	}
	return out
}
