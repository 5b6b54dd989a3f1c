# Commits one row into lag.db every 50 ms until the stop file exists; ts is
# the wall time just before the commit.
# argv: db stopfile
import os, sqlite3, sys, time

db, stop = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, timeout=30, isolation_level=None)
i = c.execute("select coalesce(max(id), 0) from lag").fetchone()[0]
while not os.path.exists(stop):
    i += 1
    c.execute("insert into lag values (?, ?)", (i, time.time()))
    time.sleep(0.05)
print("W", i, flush=True)
