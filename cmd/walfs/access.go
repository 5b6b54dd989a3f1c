package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/walfs/walfs/cmd/internal/config"
)

// fuseConfPath is where fusermount3 reads user_allow_other.
const fuseConfPath = "/etc/fuse.conf"

// mountAccess is who may enter a mount: only the user running walfs (the
// default, as sshfs, rclone and LiteFS do), or every user, with permissions
// checked by the kernel either way.
type mountAccess struct {
	AllowOther bool   `json:"allow_other"`
	From       string `json:"from"` // "--allow-other", "WALFS_ALLOW_OTHER", "config" or "default"
}

func allowOtherFlag() cli.Flag {
	return &cli.BoolFlag{Name: "allow-other", EnvVars: []string{"WALFS_ALLOW_OTHER"}, Usage: "let users other than the one running walfs enter the mount (each file's owner and mode still decide what they may do, as on the disk); without it only that user may; a non-root user needs user_allow_other in /etc/fuse.conf"}
}

// pickAccess merges --allow-other, WALFS_ALLOW_OTHER and the config file's
// allow-other, in that order of precedence.
func pickAccess(c *cli.Context, file *config.Config) mountAccess {
	switch {
	case c.IsSet("allow-other") && os.Getenv("WALFS_ALLOW_OTHER") != "" && !flagOnCommandLine("allow-other"):
		return mountAccess{AllowOther: c.Bool("allow-other"), From: "WALFS_ALLOW_OTHER"}
	case c.IsSet("allow-other"):
		return mountAccess{AllowOther: c.Bool("allow-other"), From: "--allow-other"}
	case file.AllowOther != nil:
		return mountAccess{AllowOther: *file.AllowOther, From: "config"}
	}
	return mountAccess{From: "default"}
}

// flagOnCommandLine reports whether the flag was given as an argument,
// not only through its environment variable (cli.Context.IsSet is true for
// both).
func flagOnCommandLine(name string) bool {
	for _, a := range os.Args[1:] {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// who says in words who may enter a mount run by euid.
func (a mountAccess) who(euid int) string {
	if a.AllowOther {
		return "every user (allow-other)"
	}
	if euid == 0 {
		return "root only (the user running walfs; --allow-other lets others in)"
	}
	return "uid " + strconv.Itoa(euid) + " only (the user running walfs; --allow-other lets others in)"
}

// check refuses allow-other where fusermount3 would: a non-root user needs
// user_allow_other in /etc/fuse.conf.
func (a mountAccess) check(euid int, fuseConf string) error {
	if !a.AllowOther || euid == 0 {
		return nil
	}
	b, err := os.ReadFile(fuseConf)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--allow-other: read %s: %w", fuseConf, err)
	}
	if !userAllowOther(b) {
		return fmt.Errorf("--allow-other (from %s) needs the line user_allow_other in %s when walfs runs as a non-root user (add it as root, run walfs as root, or drop --allow-other)", a.From, fuseConf)
	}
	return nil
}

// userAllowOther reports whether a fuse.conf enables user_allow_other.
func userAllowOther(conf []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = bytes.TrimSpace(line[:i])
		}
		if string(line) == "user_allow_other" {
			return true
		}
	}
	return false
}
