package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// processes runs n writer processes (c.Worker) against one WAL database;
// each commits 1-row transactions for c.Duration. Timing starts when every
// process has opened the database, so process start-up is not measured.
func processes(ctx context.Context, dir string, n int, c Config) (int, time.Duration, error) {
	if c.Worker == nil {
		return 0, 0, fmt.Errorf("no worker command to start processes with")
	}
	path, err := fresh(dir, fmt.Sprintf("procs-%d.db", n))
	if err != nil {
		return 0, 0, err
	}
	db, err := create(path, "WAL", "NORMAL", "create table t(id integer primary key, v blob)")
	if err != nil {
		return 0, 0, err
	}
	if err := db.Close(); err != nil {
		return 0, 0, err
	}
	if err := c.settle(); err != nil {
		return 0, 0, err
	}
	type worker struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		out    *bufio.Reader
		stderr bytes.Buffer
	}
	workers := make([]*worker, 0, n)
	defer func() {
		for _, w := range workers {
			w.stdin.Close()
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
	}()
	fail := func(w *worker, err error) error {
		return fmt.Errorf("writer process: %w: %s", err, strings.TrimSpace(w.stderr.String()))
	}
	args := c.Worker(path, "NORMAL", c.Duration)
	for range n {
		w := &worker{cmd: exec.CommandContext(ctx, args[0], args[1:]...)}
		w.cmd.Stderr = &w.stderr
		if w.stdin, err = w.cmd.StdinPipe(); err != nil {
			return 0, 0, err
		}
		stdout, err := w.cmd.StdoutPipe()
		if err != nil {
			return 0, 0, err
		}
		w.out = bufio.NewReader(stdout)
		if err := w.cmd.Start(); err != nil {
			return 0, 0, fmt.Errorf("start writer process: %w", err)
		}
		workers = append(workers, w)
	}
	for _, w := range workers {
		if line, err := w.out.ReadString('\n'); err != nil || line != "ready\n" {
			return 0, 0, fail(w, fmt.Errorf("not ready: %q %v", line, err))
		}
	}
	start := time.Now()
	for _, w := range workers {
		if _, err := io.WriteString(w.stdin, "go\n"); err != nil {
			return 0, 0, fail(w, err)
		}
	}
	total := 0
	for _, w := range workers {
		line, err := w.out.ReadString('\n')
		if err != nil {
			return 0, 0, fail(w, err)
		}
		k, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			return 0, 0, fail(w, fmt.Errorf("bad count %q", line))
		}
		total += k
	}
	elapsed := time.Since(start)
	for _, w := range workers {
		w.stdin.Close()
		if err := w.cmd.Wait(); err != nil {
			return 0, 0, fail(w, err)
		}
	}
	workers = nil
	return total, elapsed, nil
}

// RunWorker is the body of one writer process of the several-processes
// workload: it opens the database at path, writes "ready", waits for a line
// on in, commits 1-row transactions for d, and writes how many.
func RunWorker(ctx context.Context, path, syncMode string, d time.Duration, in io.Reader, out io.Writer) error {
	db, err := open(path, "WAL", syncMode)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := fmt.Fprintln(out, "ready"); err != nil {
		return err
	}
	if _, err := bufio.NewReader(in).ReadString('\n'); err != nil {
		return fmt.Errorf("wait for start: %w", err)
	}
	payload := make([]byte, 100)
	n := 0
	for deadline := time.Now().Add(d); time.Now().Before(deadline) && ctx.Err() == nil; n++ {
		if _, err := conn.ExecContext(ctx, "insert into t(v) values (?)", payload); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintln(out, n)
	return err
}
