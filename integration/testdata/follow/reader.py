# On a follower: read transactions on bank.db and misc.db until the stop file
# exists, each checking that it saw one committed state of the primary:
#   bank.db: sum(balance) is the fixed total and the account count fixed;
#            meta.n read at the start and at the end agree, and the ledger
#            holds exactly rows 1..meta.n
#   misc.db: t1 and t2 have the same count and sum of x, and t1 read twice
#            gives the same answer
# Prints "P <txns> <violations>" every 100 transactions, "V <what>" for the
# first violations, "F <txns> <violations>" at the end.
# argv: bank misc stopfile total accounts seed
import os, random, sqlite3, sys

bank, misc, stop = sys.argv[1], sys.argv[2], sys.argv[3]
total, nacc, rnd = int(sys.argv[4]), int(sys.argv[5]), random.Random(int(sys.argv[6]))
b = sqlite3.connect(bank, timeout=30, isolation_level=None)
m = sqlite3.connect(misc, timeout=30, isolation_level=None)
n = bad = 0

def violation(what):
    global bad
    bad += 1
    if bad <= 10:
        print("V", what, flush=True)

while not os.path.exists(stop):
    if rnd.random() < 0.6:
        b.execute("begin")
        n1 = b.execute("select n from meta where k = 1").fetchone()[0]
        s, cnt = b.execute("select sum(balance), count(*) from accounts").fetchone()
        lc, lmax = b.execute("select count(*), coalesce(max(id), 0) from ledger").fetchone()
        n2 = b.execute("select n from meta where k = 1").fetchone()[0]
        b.execute("commit")
        if s != total or cnt != nacc:
            violation("bank: sum %s count %s, want %d %d" % (s, cnt, total, nacc))
        if not (n1 == n2 == lc == lmax):
            violation("bank: meta.n %d then %d, ledger count %d max %d" % (n1, n2, lc, lmax))
    else:
        m.execute("begin")
        a = m.execute("select count(*), coalesce(sum(x), 0) from t1").fetchone()
        c = m.execute("select count(*), coalesce(sum(x), 0) from t2").fetchone()
        a2 = m.execute("select count(*), coalesce(sum(x), 0) from t1").fetchone()
        m.execute("commit")
        if a != c or a != a2:
            violation("misc: t1 %s, t2 %s, t1 again %s" % (a, c, a2))
    n += 1
    if n % 100 == 0:
        print("P", n, bad, flush=True)
print("F", n, bad, flush=True)
