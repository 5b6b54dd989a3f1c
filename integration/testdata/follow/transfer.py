# Transfer workload on bank.db until the stop file exists.
# argv: db stopfile seed accounts
# Each transaction moves money between accounts (the total never changes),
# counts itself in meta.n, logs itself in ledger with id = meta.n, and
# sometimes inserts or deletes churn rows in other. One in twenty moves money
# around a ring of 200 accounts (a transaction touching many pages); one in
# five hundred checkpoints the WAL afterwards. Prints "P <transactions>"
# every hundred and "W <transactions>" at the end.
import os, random, sqlite3, sys, time

db, stop, seed, nacc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
c = sqlite3.connect(db, timeout=30, isolation_level=None)
k = 0
while not os.path.exists(stop):
    c.execute("begin immediate")
    if rnd.random() < 0.05:
        ring = rnd.sample(range(1, nacc + 1), 200)
        for i, a in enumerate(ring):
            amt = rnd.randint(1, 50)
            c.execute("update accounts set balance = balance - ? where id = ?", (amt, a))
            c.execute("update accounts set balance = balance + ? where id = ?", (amt, ring[(i + 1) % len(ring)]))
        a, b, amt = ring[0], ring[1], 0
    else:
        a, b = rnd.sample(range(1, nacc + 1), 2)
        amt = rnd.randint(1, 100)
        c.execute("update accounts set balance = balance - ? where id = ?", (amt, a))
        c.execute("update accounts set balance = balance + ? where id = ?", (amt, b))
    c.execute("update meta set n = n + 1 where k = 1")
    n = c.execute("select n from meta where k = 1").fetchone()[0]
    c.execute("insert into ledger values (?, ?, ?, ?)", (n, a, b, amt))
    r = rnd.random()
    if r < 0.3:
        c.execute("insert into other(v) values (randomblob(?))", (rnd.randint(10, 6000),))
    elif r < 0.42:
        c.execute("delete from other where id in (select id from other order by random() limit 3)")
    c.execute("commit")
    k += 1
    if k % 100 == 0:
        print("P", k, flush=True)
    if rnd.random() < 0.002:
        c.execute("pragma wal_checkpoint(TRUNCATE)")
    time.sleep(rnd.random() * 0.004)
print("W", k, flush=True)
