// Command walfs mounts a directory in which SQLite databases are replicated,
// commit by commit, to a local directory or an S3-compatible store.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

func main() {
	app := newApp()
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "walfs: "+oneLine(err))
		os.Exit(exitCode(err))
	}
}

func newApp() *cli.App {
	app := &cli.App{
		Name:  "walfs",
		Usage: "make SQLite databases durable in object storage, commit by commit",
		Description: "walfs mounts a directory. SQLite databases opened inside it work as on a local disk;\n" +
			"every committed WAL transaction is captured as it is written and shipped to a replica\n" +
			"(a local directory or an S3-compatible bucket) in Litestream v0.5's LTX layout.\n" +
			"`walfs restore` rebuilds any database at any point in time.",
		Version:              Version,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		Commands: []*cli.Command{
			mountCommand(),
			unmountCommand(),
			syncCommand(),
			verifyCommand(),
			statusCommand(),
			promoteCommand(),
			benchCommand(),
			restoreCommand(),
			lsCommand(),
			configCommand(),
			versionCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints and exits
		OnUsageError:   onUsageError,
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
	}
	return app
}

// onUsageError replaces urfave/cli's "Incorrect Usage" plus the whole help
// text with the one-line error every other failure gets.
func onUsageError(c *cli.Context, err error, _ bool) error {
	name := "walfs"
	if c.Command != nil && c.Command.Name != "" {
		name += " " + c.Command.Name
	}
	return usagef("%v (see %s --help)", err, name)
}

// exitCode maps an error to the process exit status; usage errors are 2.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) && ec.ExitCode() != 0 {
		return ec.ExitCode()
	}
	return 1
}

// usageError marks errors caused by wrong flags or arguments.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// oneLine flattens an error message so users always get a single line.
func oneLine(err error) string {
	s := err.Error()
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
