#!/usr/bin/env python3
"""Random rollback-journal transactions by real SQLite, for the differential
test of wal.RollbackChanges (rollback_test.go runs this script).

Usage: rollback.py OUTDIR SEED DATABASES TXNS

For each of DATABASES databases (random page size, auto_vacuum, secure_delete,
cache size, synchronous and locking mode) it runs TXNS random transactions and
writes, per transaction, OUTDIR/NNNN.before (the database file before),
NNNN.after (after the commit) and NNNN.journal (the journal as it was at the
commit point), and a line of OUTDIR/cases.json describing the case.

The journal at the commit point: SQLite deletes it (DELETE mode) or zeroes its
header (EXCLUSIVE locking mode) when it commits.
  - DELETE mode: an empty journal file and a hard link to it are made before
    the transaction. SQLite finds a zero-length journal not hot, writes into
    that file, and unlinks only its own name at the commit, so the link keeps
    the journal as it was.
  - EXCLUSIVE locking mode: the journal file stays, its first 28 bytes
    zeroed. The header is put back from what is known (the original size,
    the page and sector sizes; the nonce from the first record's checksum)
    with a record count of 0xFFFFFFFF ("to the end of the file"): the reader
    must then stop at the first record left from an older transaction by its
    checksum. These databases use a large cache, so the journal has one
    segment.
  - "persist" cases append what an older, longer journal held past the end
    of this one, as a PERSIST-mode journal file would look (an older header
    right after the live journal loses its first byte, as SQLite does it).
  - "memory" cases run a transaction in journal_mode=MEMORY (no journal file)
    between the .before image and the journaled transaction: the reader
    cannot see it, and the test checks that the original page 1 gives it away.
"""
import json, os, random, sqlite3, struct, sys

MAGIC = bytes.fromhex("d9d505f920a163d7")


def page_size_of(b):
    ps = struct.unpack(">H", b[16:18])[0]
    return 65536 if ps == 1 else ps


def main():
    out, seed, ndb, ntx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    os.makedirs(out, exist_ok=True)
    manifest = open(os.path.join(out, "cases.json"), "w")
    n = 0
    for d in range(ndb):
        rnd = random.Random(seed * 1000 + d)
        n = run_db(rnd, out, d, ntx, n, manifest)
    manifest.close()


def run_db(rnd, out, d, ntx, n, manifest):
    path = os.path.join(out, "db%d.db" % d)
    jp, link = path + "-journal", path + ".link"
    ps = rnd.choice([512, 1024, 4096, 65536] if d % 7 == 6 else [512, 1024, 4096])
    av = rnd.choice([0, 0, 1, 2])
    exclusive = d % 5 == 4
    sync = rnd.choice(["off", "normal", "full"])
    cfg = dict(page_size=ps, auto_vacuum=av, exclusive=exclusive, sync=sync,
               secure_delete=rnd.random() < 0.25,
               cache=2000 if exclusive else rnd.choice([5, 10, 50, 2000]))
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("pragma page_size=%d" % ps)
    c.execute("pragma auto_vacuum=%d" % av)
    c.execute("pragma journal_mode=delete")
    c.execute("pragma synchronous=%s" % sync)
    c.execute("pragma cache_size=%d" % cfg["cache"])
    if cfg["secure_delete"]:
        c.execute("pragma secure_delete=1")
    c.execute("create table t(id integer primary key, k integer, v blob)")
    c.execute("create index tk on t(k)")
    c.execute("begin")
    for _ in range(rnd.randint(50, 300)):
        c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 1000), rnd.randbytes(rnd.randint(0, 3 * ps))))
    c.execute("commit")
    # A first journaled transaction tells the sector size, for EXCLUSIVE mode.
    open(jp, "wb").close()
    os.link(jp, link)
    c.execute("delete from t where id % 3 = 0")
    sector = struct.unpack(">I", open(link, "rb").read()[20:24])[0]
    os.remove(link)
    if exclusive:
        c.execute("pragma locking_mode=exclusive")
    prev_journal = b""
    for _ in range(ntx):
        before = open(path, "rb").read()
        kind = rnd.choice(["txn"] * 8 + ["vacuum", "memory", "persist"])
        if exclusive and kind in ("vacuum", "memory"):
            kind = "txn"
        if kind == "memory":
            c.execute("pragma journal_mode=memory")
            c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 1000), rnd.randbytes(rnd.randint(1, ps))))
            c.execute("pragma journal_mode=delete")
        if not exclusive:
            if not os.path.exists(jp):
                open(jp, "wb").close()
            os.link(jp, link)
        desc = kind
        if kind == "vacuum":
            if rnd.random() < 0.3:
                c.execute("pragma page_size=%d" % rnd.choice([512, 1024, 4096]))
            c.execute("vacuum")
        else:
            desc += ":" + transaction(c, rnd, ps, exclusive)
        after = open(path, "rb").read()
        if exclusive:
            journal = restore_header(open(jp, "rb").read(), before, sector)
        else:
            journal = open(link, "rb").read()
            os.remove(link)
        if kind == "persist":
            journal = persist_tail(journal, prev_journal, sector)
        if not exclusive and len(journal) > 0:
            prev_journal = journal
        name = "%04d" % n
        n += 1
        for ext, data in (("before", before), ("after", after), ("journal", journal)):
            with open(os.path.join(out, name + "." + ext), "wb") as f:
                f.write(data)
        manifest.write(json.dumps(dict(name=name, desc=desc, memory=kind == "memory", **cfg)) + "\n")
    c.close()
    for f in (path, jp, link):
        if os.path.exists(f):
            os.remove(f)
    return n


def transaction(c, rnd, ps, exclusive):
    """One random transaction; returns what it did."""
    ops = []
    c.execute("begin")
    c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 1000), rnd.randbytes(rnd.randint(0, 2 * ps))))
    for _ in range(rnd.randint(0, 7)):
        o = rnd.choice(["ins", "ins", "big", "del", "delrange", "upd", "sp", "incr", "tbl", "churn"])
        ops.append(o)
        if o == "ins":
            for _ in range(rnd.randint(1, 30)):
                c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 1000), rnd.randbytes(rnd.randint(0, 2 * ps))))
        elif o == "big":
            for _ in range(rnd.randint(100, 400)):
                c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 1000), rnd.randbytes(rnd.randint(0, ps))))
        elif o == "del":
            c.execute("delete from t where k % ? = ?", (rnd.randint(2, 7), rnd.randint(0, 1)))
        elif o == "delrange":
            c.execute("delete from t where id > (select max(id) from t) - ?", (rnd.randint(10, 300),))
        elif o == "upd":
            c.execute("update t set v = randomblob(?) where k % ? = 0", (rnd.randint(0, 2 * ps), rnd.randint(2, 9)))
        elif o == "sp":
            c.execute("savepoint a")
            for _ in range(rnd.randint(1, 50)):
                c.execute("insert into t(k, v) values (?, ?)", (rnd.randint(0, 1000), rnd.randbytes(rnd.randint(0, ps))))
            c.execute("delete from t where k % 5 = 0")
            c.execute(rnd.choice(["rollback to a", "release a"]))
        elif o == "incr":
            c.execute("pragma incremental_vacuum(%d)" % rnd.randint(1, 20))
        elif o == "tbl":
            u = "u%d" % rnd.randint(0, 2)
            if rnd.random() < 0.5:
                c.execute("create table if not exists %s(a, b)" % u)
                c.execute("insert into %s select k, v from t limit ?" % u, (rnd.randint(1, 80),))
            else:
                c.execute("drop table if exists %s" % u)
        elif o == "churn":
            # Take free pages and give them back in one transaction.
            c.execute("create table if not exists w(v blob)")
            c.execute("insert into w select randomblob(?) from t limit ?", (rnd.randint(100, 2 * ps), rnd.randint(5, 60)))
            c.execute("delete from w")
    c.execute("commit")
    return ",".join(ops)


def persist_tail(j, prev, sector):
    """j as a PERSIST-mode journal file holds it: what the older journal prev
    held past j's end follows. SQLite zeroes the first byte of an older
    header right after the live journal (pager.c syncJournal), so that it is
    not read as a segment of this transaction; so does this."""
    out = bytearray(j + prev[len(j):])
    nxt = (len(j) + sector - 1) // sector * sector
    if out[nxt:nxt + 8] == MAGIC:
        out[nxt] = 0
    return bytes(out)


def restore_header(j, before, sector):
    """A journal whose first 28 bytes SQLite zeroed, with its header put back."""
    if len(j) < sector + 8:
        return j
    ps = page_size_of(before)
    page = j[sector + 4:sector + 4 + ps]
    cksum = struct.unpack(">I", j[sector + 4 + ps:sector + 8 + ps])[0]
    s, i = 0, ps - 200
    while i > 0:
        s += page[i]
        i -= 200
    nonce = (cksum - s) & 0xFFFFFFFF
    hdr = MAGIC + struct.pack(">IIIII", 0xFFFFFFFF, nonce, len(before) // ps, sector, ps)
    return hdr + j[len(hdr):]


if __name__ == "__main__":
    main()
