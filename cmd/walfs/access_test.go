package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAllowOtherNeedsFuseConf(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	enabled := write("enabled.conf", "# mount_max = 1000\n  user_allow_other  \n")
	commented := write("commented.conf", "#user_allow_other\n")
	missing := filepath.Join(dir, "missing.conf")
	on := mountAccess{AllowOther: true, From: "--allow-other"}
	for _, tc := range []struct {
		name    string
		access  mountAccess
		euid    int
		conf    string
		wantErr string
	}{
		{"default, user", mountAccess{From: "default"}, 1000, missing, ""},
		{"root needs no fuse.conf", on, 0, missing, ""},
		{"user with user_allow_other", on, 1000, enabled, ""},
		{"user, line commented out", on, 1000, commented, "needs the line user_allow_other in " + commented},
		{"user, no fuse.conf", on, 1000, missing, "needs the line user_allow_other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.access.check(tc.euid, tc.conf)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestMountAccessWho(t *testing.T) {
	for _, tc := range []struct {
		access mountAccess
		euid   int
		want   string
	}{
		{mountAccess{}, 0, "root only"},
		{mountAccess{}, 1000, "uid 1000 only"},
		{mountAccess{AllowOther: true}, 1000, "every user"},
	} {
		if got := tc.access.who(tc.euid); !strings.HasPrefix(got, tc.want) {
			t.Errorf("who(%+v, %d) = %q, want prefix %q", tc.access, tc.euid, got, tc.want)
		}
	}
}
