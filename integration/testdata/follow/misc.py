# Random workload on misc.db (rollback journal) until the stop file exists.
# argv: db stopfile seed
# t1 and t2 always hold the same ids with the same x: each transaction
# inserts, deletes or updates the same rows in both (blobs of random sizes,
# some spilling to overflow pages).
import os, random, sqlite3, sys, time

db, stop, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(seed)
c = sqlite3.connect(db, timeout=30, isolation_level=None)
k = 0
while not os.path.exists(stop):
    c.execute("begin immediate")
    r = rnd.random()
    if r < 0.45:
        top = c.execute("select coalesce(max(id), 0) from t1").fetchone()[0]
        for i in range(top + 1, top + 1 + rnd.randint(1, 5)):
            x = rnd.randint(-1000, 1000)
            c.execute("insert into t1 values (?, ?, randomblob(?))", (i, x, rnd.randint(1, 5000)))
            c.execute("insert into t2 values (?, ?, randomblob(?))", (i, x, rnd.randint(1, 5000)))
    elif r < 0.75:
        ids = [row[0] for row in c.execute("select id from t1 order by random() limit ?", (rnd.randint(1, 5),))]
        for i in ids:
            c.execute("delete from t1 where id = ?", (i,))
            c.execute("delete from t2 where id = ?", (i,))
    else:
        for (i,) in c.execute("select id from t1 order by random() limit 20").fetchall():
            d = rnd.randint(-50, 50)
            c.execute("update t1 set x = x + ? where id = ?", (d, i))
            c.execute("update t2 set x = x + ? where id = ?", (d, i))
    c.execute("commit")
    k += 1
    time.sleep(rnd.random() * 0.01)
print("W", k, flush=True)
