package head

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/superfly/ltx"
)

// The format as docs/format.md shows it.
func TestRecordJSON(t *testing.T) {
	rec := Record{Version: 1, Seq: 7, Written: time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC), Writer: "web-1/42",
		DBs: map[string]DB{"sub/app.db": {TXID: 9, Checksum: 0x0123456789abcdef, Commit: time.Date(2026, 3, 1, 11, 59, 59, 0, time.UTC),
			Files: []File{{Level: 9, Min: 1, Max: 5, Size: 4096}, {Level: 0, Min: 6, Max: 9, Size: 300}}}}}
	body, err := rec.marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"seq":7,"written":"2026-03-01T12:00:00.000000005Z","writer":"web-1/42","dbs":{"sub/app.db":` +
		`{"txid":9,"checksum":"0123456789abcdef","commit":"2026-03-01T11:59:59Z",` +
		`"files":[{"level":9,"min":1,"max":5,"size":4096},{"level":0,"min":6,"max":9,"size":300}]}}}`
	if string(body) != want {
		t.Fatalf("got  %s\nwant %s", body, want)
	}
	got, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := got.marshal(); string(again) != want {
		t.Fatalf("round trip: %s", again)
	}
	empty, err := Record{Version: 1}.marshal()
	if err != nil || !strings.Contains(string(empty), `"dbs":{}`) {
		t.Fatalf("empty record: %s, %v", empty, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, body := range []string{
		``,
		`[]`,
		`{"version":2,"dbs":{}}`,
		`{"version":1,"dbs":{"../x.db":{"txid":1}}}`,
		`{"version":1,"dbs":{"":{"txid":1}}}`,
		`{"version":1,"dbs":{"a.db":{"txid":1,"checksum":"xyz"}}}`,
		`{"version":1,"dbs":{"a.db":{"txid":5,"files":[{"level":10,"min":1,"max":5}]}}}`,
		`{"version":1,"dbs":{"a.db":{"txid":5,"files":[{"level":0,"min":3,"max":2}]}}}`,
		`{"version":1,"dbs":{"a.db":{"txid":5,"files":[{"level":0,"min":1,"max":6}]}}}`,
		`{"version":1,"dbs":{"a.db":{"txid":5,"files":[{"level":0,"min":4,"max":5},{"level":0,"min":1,"max":3}]}}}`,
	} {
		if _, err := Parse([]byte(body)); !errors.Is(err, ErrUnreadable) {
			t.Errorf("Parse(%s): %v, want ErrUnreadable", body, err)
		}
	}
	rec, err := Parse([]byte(`{"version":1,"seq":3}`))
	if err != nil || rec.DBs == nil {
		t.Fatalf("a record with no dbs: %+v, %v", rec, err)
	}
}

func TestAdd(t *testing.T) {
	f := func(level int, a, b uint64) File { return File{Level: level, Min: a, Max: b, Size: 1} }
	var e DB
	for _, x := range []File{f(0, 1, 1), f(0, 2, 4), f(0, 5, 5)} {
		e = e.add(x, x.Max, ltx.Checksum(x.Max), time.Time{}, 3)
	}
	shared := e.Files
	for _, tc := range []struct {
		name string
		add  File
		want []File
	}{
		{"next", f(0, 6, 6), []File{f(0, 2, 4), f(0, 5, 5), f(0, 6, 6)}},
		{"snapshot", f(9, 1, 6), []File{f(0, 1, 1), f(0, 2, 4), f(0, 5, 5), f(9, 1, 6)}[1:]},
		{"snapshot below the window", f(9, 1, 3), []File{f(0, 1, 1), f(9, 1, 3)}},
		{"another lineage", f(0, 3, 3), []File{f(0, 1, 1), f(0, 3, 3)}},
		{"the same file again", f(0, 5, 5), []File{f(0, 1, 1), f(0, 2, 4), f(0, 5, 5)}},
	} {
		got := e.add(tc.add, tc.add.Max, 7, time.Time{}, 3)
		if !slices.Equal(got.Files, tc.want) || got.TXID != tc.add.Max || got.Checksum != 7 {
			t.Errorf("%s: got %+v, want files %+v", tc.name, got, tc.want)
		}
	}
	if !slices.Equal(shared, e.Files) || len(shared) != 3 || shared[2] != f(0, 5, 5) {
		t.Errorf("add changed the files it was given: %+v", shared)
	}
}
