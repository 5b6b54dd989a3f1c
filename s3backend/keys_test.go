package s3backend

import "testing"

func TestParseKey(t *testing.T) {
	tests := []struct {
		key  string
		ok   bool
		want FileInfo
	}{
		{"0000/0000000000000001-0000000000000001.ltx", true, FileInfo{Level: 0, MinTXID: 1, MaxTXID: 1}},
		{"l/src.db/0009/0000000000000001-00000000000000ff.ltx", true, FileInfo{DB: "l/src.db", Level: 9, MinTXID: 1, MaxTXID: 255}},
		{"app.db/0003/000000000000000a-000000000000000f.ltx", true, FileInfo{DB: "app.db", Level: 3, MinTXID: 10, MaxTXID: 15}},
		{"/0000/0000000000000001-0000000000000001.ltx", false, FileInfo{}},
		{"a//b/0000/0000000000000001-0000000000000001.ltx", false, FileInfo{}},
		{"./0000/0000000000000001-0000000000000001.ltx", false, FileInfo{}},
		{"../0000/0000000000000001-0000000000000001.ltx", false, FileInfo{}},
		{"0000/0000000000000000-0000000000000001.ltx", false, FileInfo{}},
		{"0000/0000000000000002-0000000000000001.ltx", false, FileInfo{}},
		{"0000/0000000000000001-0000000000000001.ltx.tmp", false, FileInfo{}},
		{"0000/000000000000000A-000000000000000B.ltx", false, FileInfo{}},
		{"000/0000000000000001-0000000000000001.ltx", false, FileInfo{}},
		{"db/0000/.walfs-tmp-0000000000000001-0000000000000001.ltx-1", false, FileInfo{}},
	}
	for _, tt := range tests {
		got, ok := ParseKey(tt.key)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseKey(%q) = %+v, %t; want %+v, %t", tt.key, got, ok, tt.want, tt.ok)
		}
		if ok && Key(got) != tt.key {
			t.Errorf("Key(ParseKey(%q)) = %q", tt.key, Key(got))
		}
	}
}
