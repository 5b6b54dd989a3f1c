#!/usr/bin/env python3
"""Generate the wal package's test fixtures with real SQLite.

Run from anywhere: python3 wal/testdata/gen.py  (needs python3's sqlite3; the
trace fixture also needs strace). Everything is written next to this script.
Salts are random, so every run produces different bytes with the same shape;
the Go tests only rely on what the JSON files say.

Golden fixtures (golden-<page size>.*): a workload runs against a database in
WAL mode with automatic checkpoints off, and the -wal and database files are
copied while the connection is still open. The expected transactions are
derived without parsing the WAL:
  - one transaction per committing workload step since the last checkpoint
    (the WAL restarts at the first commit after a complete checkpoint);
  - "commit" is PRAGMA page_count right after the step;
  - "changed" lists the pages whose bytes differ from the image before the
    step, where an image is what SQLite itself reads: a copy of db + wal taken
    after the step, opened by SQLite (recovery) and checkpointed;
  - "final_sha256" is the image after the last step, "rows" its row count.
A capture must emit exactly len(txns) transactions with those commit sizes,
each containing at least the changed pages, and applying them to the
database copy must give final_sha256.

Trace fixture (trace-512.*): the same kind of workload runs under strace, and
every write, truncate and unlink of the -wal file is recorded in order
(trace-512.trace.gz, format below). It covers what SQLite really does: header
then frame writes, cache spill followed by in-place page overwrites and
checksum rewrites before the commit, a rolled-back spilled transaction,
restart after a checkpoint, truncation by journal_size_limit and by
wal_checkpoint(TRUNCATE), and deletion of the WAL on close followed by a new
WAL. Its JSON lists every commit of the workload with the sha256 of the image
after it; trace-512.db0.gz is the image before the first WAL commit.

Trace format (gzip): b"WALTRACE1\\n", then records of
  op (1 byte: W write, T truncate, D delete), offset or size (int64 BE),
  length (uint32 BE), data (length bytes; only for W).

Savepoint fixture (savepoint-512.*): the SQLite quirk behind the package's
pending-rewrite rule (see ../doc.go). A table is loaded and checkpointed
(wal_checkpoint(TRUNCATE); savepoint-512.db0.gz is the database file then),
and three transactions follow with a tiny page cache:
  A: one insert;
  B: BEGIN; insert; SAVEPOINT a; DELETE half the rows (spills, overwrites
     spilled frames); ROLLBACK TO a; insert; COMMIT;
  C: one insert.
SQLite 3.40.1 keeps its pending checksum-rewrite mark across ROLLBACK TO, so
B leaves a frame with zeroed salts and checksums and chains the frames after
it from (0, 0): the live connection sees A, B and C, recovery only A. The -wal
file is copied while the connection is open (savepoint-512.wal.gz; the
database file then still equals savepoint-512.db0.gz), then the live connection
checkpoints everything it considers committed into the database file, whose
sha256 is "live_sha256" ("recovery_sha256" is what SQLite reads from the
copies). The writes are recorded under strace from the truncation on
(savepoint-512.trace.gz, trace format above). Row contents come from a seeded
generator; the generator tries seeds until the quirk shows and fails if it
never does (e.g. an SQLite that clears the mark).

Usage: gen.py [golden] [trace] [savepoint]  (no argument: all of them)
"""

import gzip
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def image(db, wal):
    """What SQLite reads from db + wal: recover and checkpoint a copy."""
    d = tempfile.mkdtemp()
    try:
        shutil.copyfile(db, os.path.join(d, "x.db"))
        if wal is not None and os.path.exists(wal):
            shutil.copyfile(wal, os.path.join(d, "x.db-wal"))
        c = sqlite3.connect(os.path.join(d, "x.db"), isolation_level=None)
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        rows = c.execute(
            "SELECT count(*) FROM sqlite_master WHERE name='t'").fetchone()[0]
        if rows:
            rows = c.execute("SELECT count(*) FROM t").fetchone()[0]
        c.close()
        with open(os.path.join(d, "x.db"), "rb") as f:
            return f.read(), rows
    finally:
        shutil.rmtree(d)


def changed_pages(before, after, ps):
    out = []
    for p in range(len(after) // ps):
        if before[p * ps:(p + 1) * ps] != after[p * ps:(p + 1) * ps]:
            out.append(p + 1)
    return out


class Workload:
    """Drives one connection; snapshots db + wal after every step."""

    def __init__(self, path, ps, snapdir, journal_size_limit=None):
        self.path, self.ps, self.snapdir = path, ps, snapdir
        self.c = sqlite3.connect(path, isolation_level=None)
        self.c.execute(f"PRAGMA page_size={ps}")
        self.c.execute("PRAGMA journal_mode=wal").fetchall()
        self.c.execute("PRAGMA wal_autocheckpoint=0")
        if journal_size_limit is not None:
            self.c.execute(f"PRAGMA journal_size_limit={journal_size_limit}").fetchall()
        self.rnd = random.Random(ps)
        self.steps = []  # {"kind": "commit"|"checkpoint"|"reopen", "commit": n, "snap": i}
        self.snap("start")

    def snap(self, kind, **kw):
        i = len(self.steps)
        shutil.copyfile(self.path, os.path.join(self.snapdir, f"{i:03d}.db"))
        wal = self.path + "-wal"
        if os.path.exists(wal):
            shutil.copyfile(wal, os.path.join(self.snapdir, f"{i:03d}.db-wal"))
        self.steps.append(dict(kind=kind, snap=i, **kw))

    def value(self, n):
        return ("v%04d-" % self.rnd.randrange(10000)) * n

    def commit(self, *sql):
        """Runs sql (strings or (sql, args)) as one transaction."""
        self.run(sql, "COMMIT")
        n = self.c.execute("PRAGMA page_count").fetchone()[0]
        self.snap("commit", commit=n)

    def rollback(self, *sql):
        self.run(sql, "ROLLBACK")

    def run(self, sql, end):
        self.c.execute("BEGIN")
        for s in sql:
            if callable(s):
                s(self.c)
            elif isinstance(s, tuple):
                self.c.execute(*s)
            else:
                self.c.execute(s)
        self.c.execute(end)

    def checkpoint(self, mode="PASSIVE"):
        busy, _, _ = self.c.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        assert busy == 0, "checkpoint blocked"
        self.snap("checkpoint")

    def insert(self, n=1, width=3):
        return lambda c: c.executemany(
            "INSERT INTO t(v) VALUES (?)", [(self.value(width),) for _ in range(n)])

    def spill(self, rows, width, fix):
        """A transaction larger than the page cache: SQLite spills dirty pages
        into the WAL, then changes some of them again."""
        def run(c):
            c.execute("PRAGMA cache_size=10")
            self.insert(rows, width)(c)
            if fix:
                c.execute(fix)
        return run

    def done(self):
        self.c.execute("PRAGMA cache_size=-2000")


def golden_512(w):
    w.commit("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for _ in range(6):
        w.commit(w.insert())
    w.commit(w.insert(20))
    w.commit("UPDATE t SET v = v || '!' WHERE id % 3 = 0")
    w.commit("DELETE FROM t WHERE id % 5 = 0")
    w.commit(w.spill(150, 8, "UPDATE t SET v = upper(v) WHERE id < 40"))
    w.done()
    w.checkpoint()
    for _ in range(4):
        w.commit(w.insert())
    w.commit("CREATE INDEX tv ON t(v)")
    w.rollback(w.spill(60, 8, None))  # leaves a spilled, never committed tail
    w.done()


def golden_4096(w):
    w.commit("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for _ in range(5):
        w.commit(w.insert())
    w.commit(w.insert(30, 30))
    w.commit("UPDATE t SET v = 'x' || v WHERE id % 2 = 0")
    w.commit("CREATE TABLE u(a, b)", ("INSERT INTO u VALUES (1, 2)",))
    w.commit("DELETE FROM t WHERE id > 20")
    w.commit(w.insert(2))


def golden_65536(w):
    w.commit("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    w.commit(w.insert())
    w.commit(w.insert(3))


def trace_512(w):
    golden_512(w)  # spill + rewrite, checkpoint + restart, spilled rollback
    w.commit(w.insert(2))  # overwrites the rolled-back tail
    w.checkpoint()
    w.commit(w.insert())  # restart; then journal_size_limit truncates the WAL
    w.commit("UPDATE t SET v = lower(v) WHERE id % 7 = 0")
    w.checkpoint("TRUNCATE")  # ftruncate(0)
    w.commit(w.insert(3))  # new header into an empty file
    w.commit("DELETE FROM t WHERE id % 11 = 0")
    w.c.close()  # checkpoints and deletes the WAL
    w.c = sqlite3.connect(w.path, isolation_level=None)
    w.c.execute("PRAGMA wal_autocheckpoint=0")
    w.snap("reopen")
    w.commit(w.insert(2))  # a new WAL file
    w.commit("UPDATE t SET v = 'z' WHERE id = 3")
    w.c.close()


def expected_txns(w, snapdir, ps, since_checkpoint):
    """Commit steps (all, or those after the last checkpoint) with the images
    SQLite reads after each."""
    steps = w.steps
    first = 0
    if since_checkpoint:
        for i, s in enumerate(steps):
            if s["kind"] in ("checkpoint", "reopen"):
                first = i
    prev = None
    out = []
    for i, s in enumerate(steps):
        db = os.path.join(snapdir, f"{s['snap']:03d}.db")
        img, rows = image(db, db + "-wal")
        if s["kind"] == "commit" and i > first:
            assert len(img) == s["commit"] * ps, (len(img), s)
            out.append(dict(commit=s["commit"], changed=changed_pages(prev, img, ps),
                            sha256=hashlib.sha256(img).hexdigest()))
        prev = img
    return out, prev, rows


def write_gz(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        # mtime=0 keeps the bytes stable for identical content.
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=9) as g:
            g.write(data)


def write_json(name, obj):
    """One key per line, one transaction per line."""
    lines = []
    for k, v in obj.items():
        if k == "txns":
            inner = ",\n".join("  " + json.dumps(t) for t in v)
            lines.append(f' "{k}": [\n{inner}\n ]')
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}")
    with open(os.path.join(HERE, name), "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def gen_golden(ps, workload):
    d = tempfile.mkdtemp()
    try:
        snapdir = os.path.join(d, "snaps")
        os.mkdir(snapdir)
        path = os.path.join(d, "g.db")
        w = Workload(path, ps, snapdir)
        workload(w)
        # Copy while the connection is open (closing would checkpoint and
        # delete the WAL).
        with open(path, "rb") as f:
            db = f.read()
        with open(path + "-wal", "rb") as f:
            wal = f.read()
        w.snap("final")
        txns, final, rows = expected_txns(w, snapdir, ps, since_checkpoint=True)
        w.c.close()
        name = f"golden-{ps}"
        write_gz(name + ".wal.gz", wal)
        write_gz(name + ".db.gz", db)
        for t in txns:
            del t["sha256"]
        write_json(name + ".json", dict(
            page_size=ps, wal=name + ".wal.gz", db=name + ".db.gz",
            txns=txns, final_sha256=hashlib.sha256(final).hexdigest(), rows=rows,
            wal_bytes=len(wal)))
        print(f"{name}: {len(txns)} txns, wal {len(wal)} bytes, db {len(db)} bytes")
    finally:
        shutil.rmtree(d)


def trace_child(d):
    snapdir = os.path.join(d, "snaps")
    w = Workload(os.path.join(d, "t.db"), 512, snapdir, journal_size_limit=8192)
    trace_512(w)
    with open(os.path.join(d, "steps.json"), "w") as f:
        json.dump(w.steps, f)


HEX = re.compile(r"\\x([0-9a-f]{2})")


def unhex(s):
    assert "\\" not in HEX.sub("", s) and '"' not in s, s[:80]
    return bytes(int(h, 16) for h in HEX.findall(s))


def parse_strace(path, wal):
    """Returns the WAL's writes, truncates and deletes in order, and how many
    writes landed before the end of what was already written (in-place
    overwrites of an open transaction's frames and checksum rewrites)."""
    recs = []
    written = 0  # end of the bytes written since the WAL (re)started
    overwrites = 0
    line_re = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)")
    fd_re = r"(\d+)<((?:\\x[0-9a-f]{2})*)>"
    str_re = r'"((?:\\x[0-9a-f]{2})*)"'
    for line in open(path):
        if "<unfinished" in line or "resumed>" in line:
            raise SystemExit(f"interleaved system calls in the trace: {line[:200]}")
        m = line_re.match(line)
        if not m:
            continue
        call, args, ret = m.group(1), m.group(2), int(m.group(3))
        if call in ("unlink", "unlinkat"):
            pm = re.search(str_re, args)
            if ret == 0 and unhex(pm.group(1)).decode() == wal:
                recs.append((b"D", 0, b""))
                written = 0
            continue
        fm = re.match(fd_re, args)
        if not fm or unhex(fm.group(2)).decode().removesuffix(" (deleted)") != wal:
            continue
        if call == "pwrite64":
            am = re.match(fd_re + ", " + str_re + r", (\d+), (\d+)$", args)
            data, n, off = unhex(am.group(3)), int(am.group(4)), int(am.group(5))
            assert len(data) == n == ret, (n, ret, len(data))
            if off == 0:
                written = 0
            elif off < written:
                overwrites += 1
            written = max(written, off + n)
            recs.append((b"W", off, data))
        elif call == "ftruncate":
            am = re.match(fd_re + r", (\d+)$", args)
            recs.append((b"T", int(am.group(3)), b""))
            written = min(written, int(am.group(3)))
        else:
            raise SystemExit(f"unexpected {call} on the WAL: {line[:200]}")
    return recs, overwrites


def gen_trace():
    if shutil.which("strace") is None:
        print("strace not found: trace fixture not regenerated", file=sys.stderr)
        return
    d = tempfile.mkdtemp()
    try:
        os.mkdir(os.path.join(d, "snaps"))
        out = os.path.join(d, "strace.txt")
        subprocess.run(["strace", "-f", "-o", out, "-yy", "-xx", "-s", "1000000",
                        "-e", "trace=pwrite64,write,pwritev,pwritev2,writev,ftruncate,fallocate,unlink,unlinkat",
                        sys.executable, __file__, "--trace-child", d], check=True)
        wal = os.path.join(d, "t.db-wal")
        recs, overwrites = parse_strace(out, wal)
        steps = json.load(open(os.path.join(d, "steps.json")))

        class W:
            pass
        w = W()
        w.steps = steps
        snapdir = os.path.join(d, "snaps")
        txns, final, rows = expected_txns(w, snapdir, 512, since_checkpoint=False)
        db0, _ = image(os.path.join(snapdir, "000.db"), None)

        buf = bytearray(b"WALTRACE1\n")
        for op, off, data in recs:
            buf += op + off.to_bytes(8, "big") + len(data).to_bytes(4, "big") + data
        write_gz("trace-512.trace.gz", bytes(buf))
        write_gz("trace-512.db0.gz", db0)
        kinds = {k: sum(1 for r in recs if r[0] == k.encode()) for k in "WTD"}
        headers = sum(1 for r in recs if r[0] == b"W" and r[1] == 0)
        assert overwrites > 0 and headers >= 4 and kinds["T"] >= 2 and kinds["D"] >= 1, (
            overwrites, headers, kinds)
        write_json("trace-512.json", dict(
            page_size=512, trace="trace-512.trace.gz", db0="trace-512.db0.gz",
            txns=txns, final_sha256=hashlib.sha256(final).hexdigest(), rows=rows,
            writes=kinds["W"], header_writes=headers, truncates=kinds["T"],
            deletes=kinds["D"], in_place_overwrites=overwrites))
        print(f"trace-512: {len(txns)} txns, {kinds['W']} writes ({overwrites} in place, "
              f"{headers} headers), {kinds['T']} truncates, {kinds['D']} deletes")
    finally:
        shutil.rmtree(d)


SAVEPOINT_ROWS = 100


def savepoint_workload(d, seed):
    """Runs the savepoint fixture's workload in directory d; returns what the
    Go test needs to know, and leaves db0, db and wal copies in d."""
    ps = 512
    rnd = random.Random(seed)
    path = os.path.join(d, "s.db")
    c = sqlite3.connect(path, isolation_level=None)
    c.execute(f"PRAGMA page_size={ps}")
    c.execute("PRAGMA journal_mode=wal").fetchall()
    c.execute("PRAGMA wal_autocheckpoint=0")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v BLOB)")
    c.execute("CREATE INDEX t_k ON t(k)")
    c.execute("BEGIN")
    for _ in range(SAVEPOINT_ROWS):
        n = rnd.randrange(1000)
        c.execute("INSERT INTO t(k, v) VALUES (?, ?)",
                  (n, ("v%03d-" % n).encode() * rnd.randrange(20)))
    c.execute("COMMIT")
    busy, _, _ = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    shutil.copyfile(path, os.path.join(d, "db0"))
    commits = []

    def commit(*sql):
        c.execute("BEGIN")
        for q in sql:
            c.execute(q)
        c.execute("COMMIT")
        commits.append(dict(commit=c.execute("PRAGMA page_count").fetchone()[0]))

    commit("INSERT INTO t(k, v) VALUES (1001, x'a1')")
    c.execute("PRAGMA cache_size=2")
    commit("INSERT INTO t(k, v) VALUES (1002, x'b1')",
           "SAVEPOINT a",
           "DELETE FROM t WHERE id % 2 = 0",
           "ROLLBACK TO a",
           "INSERT INTO t(k, v) VALUES (1003, x'b2')")
    c.execute("PRAGMA cache_size=-2000")
    commit("INSERT INTO t(k, v) VALUES (1004, x'c1')")
    rows, ksum = c.execute("SELECT count(*), sum(k) FROM t").fetchone()
    shutil.copyfile(path, os.path.join(d, "db"))
    shutil.copyfile(path + "-wal", os.path.join(d, "wal"))
    busy, _, _ = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    with open(path, "rb") as f:
        live = f.read()
    c.close()
    return dict(txns=commits, live_rows=rows, live_sum=ksum,
                live_sha256=hashlib.sha256(live).hexdigest())


def zeroed_frames(wal, ps):
    """Frames whose salts and checksums are all zero."""
    fs = 24 + ps
    return [i for i in range((len(wal) - 32) // fs)
            if wal[32 + i * fs + 8:32 + i * fs + 24] == bytes(16)]


def savepoint_child(d):
    seed = int(os.environ["WALFS_SAVEPOINT_SEED"])
    with open(os.path.join(d, "result.json"), "w") as f:
        json.dump(savepoint_workload(d, seed), f)


def savepoint_try(d, seed):
    """Checks a finished workload run in d; returns the JSON fields or None
    when the quirk did not show."""
    with open(os.path.join(d, "result.json")) as f:
        res = json.load(f)
    with open(os.path.join(d, "wal"), "rb") as f:
        wal = f.read()
    img, rows = image(os.path.join(d, "db"), os.path.join(d, "wal"))
    rec = os.path.join(d, "recovered.db")
    with open(rec, "wb") as f:
        f.write(img)
    c = sqlite3.connect(rec)
    rec_rows, rec_sum = c.execute("SELECT count(*), sum(k) FROM t").fetchone()
    c.close()
    zeroed = zeroed_frames(wal, 512)
    if not zeroed or rec_rows == res["live_rows"]:
        return None
    res.update(seed=seed, zeroed_frames=zeroed, recovery_rows=rec_rows,
               recovery_sum=rec_sum,
               recovery_sha256=hashlib.sha256(img).hexdigest())
    return res


def gen_savepoint():
    if shutil.which("strace") is None:
        print("strace not found: savepoint fixture not regenerated", file=sys.stderr)
        return
    for seed in range(1, 200):
        # Find a seed cheaply, then run it again under strace.
        d = tempfile.mkdtemp()
        try:
            res = savepoint_workload(d, seed)
            with open(os.path.join(d, "result.json"), "w") as f:
                json.dump(res, f)
            if savepoint_try(d, seed) is None:
                continue
        finally:
            shutil.rmtree(d)
        d = tempfile.mkdtemp()
        try:
            out = os.path.join(d, "strace.txt")
            subprocess.run(["strace", "-f", "-o", out, "-yy", "-xx", "-s", "1000000",
                            "-e", "trace=pwrite64,write,pwritev,pwritev2,writev,ftruncate,fallocate,unlink,unlinkat",
                            sys.executable, __file__, "--savepoint-child", d],
                           check=True, env=dict(os.environ, WALFS_SAVEPOINT_SEED=str(seed)))
            res = savepoint_try(d, seed)
            assert res is not None, f"seed {seed}: quirk gone under strace"
            recs, _ = parse_strace(out, os.path.join(d, "s.db-wal"))
            # Keep the truncation after the load and what follows, up to the
            # final truncation (the test replays into an empty file).
            first = next(i for i, r in enumerate(recs) if r[0] == b"T")
            last = max(i for i, r in enumerate(recs) if r[0] == b"T")
            recs = recs[first:last]
            wal = bytearray()
            for op, off, data in recs:
                if op == b"T":
                    del wal[off:]
                elif op == b"W":
                    wal[len(wal):] = bytes(max(0, off + len(data) - len(wal)))
                    wal[off:off + len(data)] = data
                else:
                    raise SystemExit("WAL deleted during the savepoint workload")
            with open(os.path.join(d, "wal"), "rb") as f:
                copy = f.read()
            assert bytes(wal) == copy, "trace replay differs from the WAL copy"
            buf = bytearray(b"WALTRACE1\n")
            for op, off, data in recs:
                buf += op + off.to_bytes(8, "big") + len(data).to_bytes(4, "big") + data
            name = "savepoint-512"
            write_gz(name + ".trace.gz", bytes(buf))
            write_gz(name + ".wal.gz", copy)
            with open(os.path.join(d, "db0"), "rb") as f:
                db0 = f.read()
            with open(os.path.join(d, "db"), "rb") as f:
                assert f.read() == db0, "database file changed after the truncation"
            write_gz(name + ".db0.gz", db0)
            write_json(name + ".json", dict(
                page_size=512, wal=name + ".wal.gz", db0=name + ".db0.gz",
                trace=name + ".trace.gz",
                sqlite_version=sqlite3.sqlite_version, **res))
            print(f"{name}: seed {seed}, zeroed frames {res['zeroed_frames']}, live "
                  f"{res['live_rows']} rows, recovery {res['recovery_rows']}, wal {len(copy)} bytes")
            return
        finally:
            shutil.rmtree(d)
    raise SystemExit("savepoint fixture: no seed shows the quirk (this SQLite "
                     f"{sqlite3.sqlite_version} may clear iReCksum on ROLLBACK TO)")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--trace-child":
        trace_child(sys.argv[2])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--savepoint-child":
        savepoint_child(sys.argv[2])
        return
    what = sys.argv[1:] or ["golden", "trace", "savepoint"]
    print("sqlite", sqlite3.sqlite_version)
    if "golden" in what:
        gen_golden(512, golden_512)
        gen_golden(4096, golden_4096)
        gen_golden(65536, golden_65536)
    if "trace" in what:
        gen_trace()
    if "savepoint" in what:
        gen_savepoint()


if __name__ == "__main__":
    main()
