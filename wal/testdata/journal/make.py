# Makes the journal fixtures: python3 make.py spill full; python3 make.py nosync off
# (each journal is copied while its transaction is open, then rolled back).
import sqlite3, shutil, sys
name, sync = sys.argv[1], sys.argv[2]
db = "%s.db" % name
c = sqlite3.connect(db, isolation_level=None)
c.execute("pragma page_size=1024"); c.execute("pragma journal_mode=delete"); c.execute("pragma synchronous=%s" % sync)
c.execute("create table t(id integer primary key, v blob)")
c.execute("begin")
for i in range(40): c.execute("insert into t(v) values (zeroblob(300))")
c.execute("commit")
c.execute("pragma cache_size=4")
c.execute("begin")
c.execute("update t set v = randomblob(300) where id % 3 = 0")
c.execute("insert into t(v) values (zeroblob(2000))")
shutil.copy(db + "-journal", "%s.journal" % name)
c.execute("rollback")
