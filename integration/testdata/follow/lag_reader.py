# On a follower: polls lag.db every 20 ms until the stop file exists and
# prints "L <seconds>" for each row that became visible (now - its commit
# time). Rows committed before it started are not measured.
# argv: db stopfile
import os, sqlite3, sys, time

db, stop = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, timeout=30, isolation_level=None)
last = c.execute("select coalesce(max(id), 0) from lag").fetchone()[0]
while not os.path.exists(stop):
    rows = c.execute("select id, ts from lag where id > ? order by id", (last,)).fetchall()
    now = time.time()
    for i, ts in rows:
        print("L %.4f" % (now - ts), flush=True)
        last = i
    time.sleep(0.02)
print("F", flush=True)
