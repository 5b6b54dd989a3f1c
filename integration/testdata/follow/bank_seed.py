# Creates the databases of the follow tests on the primary.
# argv: mnt accounts balance
#   bank.db (WAL): accounts with a fixed total, meta.n = transfers so far,
#                  ledger (one row per transfer, id = meta.n), other (churn)
#   misc.db (rollback journal, DELETE): t1 and t2 hold the same ids and x
#   lag.db  (WAL): lag(id, ts), commit times for the lag measurement
#   big.db  (WAL): big(v), only ever grown by large transactions
import os, sqlite3, sys

mnt, nacc, balance = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b = sqlite3.connect(os.path.join(mnt, "bank.db"), isolation_level=None)
b.execute("pragma journal_mode=wal")
b.execute("begin")
b.execute("create table accounts(id integer primary key, balance integer not null, pad blob)")
b.execute("create table meta(k integer primary key, n integer not null)")
b.execute("create table ledger(id integer primary key, a integer, b integer, amt integer)")
b.execute("create table other(id integer primary key, v blob)")
b.execute("insert into meta values (1, 0)")
for i in range(1, nacc + 1):
    b.execute("insert into accounts values (?, ?, randomblob(150))", (i, balance))
b.execute("commit")
b.close()

m = sqlite3.connect(os.path.join(mnt, "misc.db"), isolation_level=None)
m.execute("pragma journal_mode=delete")
m.execute("begin")
m.execute("create table t1(id integer primary key, x integer not null, v blob)")
m.execute("create table t2(id integer primary key, x integer not null, v blob)")
for i in range(1, 201):
    m.execute("insert into t1 values (?, ?, randomblob(300))", (i, i))
    m.execute("insert into t2 values (?, ?, randomblob(300))", (i, i))
m.execute("commit")
m.close()

l = sqlite3.connect(os.path.join(mnt, "lag.db"), isolation_level=None)
l.execute("pragma journal_mode=wal")
l.execute("create table lag(id integer primary key, ts real not null)")
l.close()

g = sqlite3.connect(os.path.join(mnt, "big.db"), isolation_level=None)
g.execute("pragma journal_mode=wal")
g.execute("create table big(v blob)")
g.close()
print("seeded")
