package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/walfs/walfs/integration/testserver"
)

// s3Env returns the environment that gives walfs the server's credentials.
func s3Env(s *testserver.Server) []string {
	return []string{"WALFS_ACCESS_KEY_ID=" + s.AccessKey, "WALFS_SECRET_ACCESS_KEY=" + s.SecretKey}
}

// s3URL is the replica URL of path in the server's bucket.
func s3URL(s *testserver.Server, path string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&region=%s&force-path-style=true", s.Bucket, path, s.Endpoint, s.Region)
}

const writeAppScript = `
import sqlite3, sys, os
mnt = sys.argv[1]
os.makedirs(os.path.join(mnt, "sub"), exist_ok=True)
for name in ("app.db", "sub/other.db"):
    c = sqlite3.connect(os.path.join(mnt, name), isolation_level=None)
    c.execute("pragma journal_mode=wal")
    c.execute("create table if not exists t(id integer primary key, v text)")
    for i in range(200):
        c.execute("insert into t(v) values (?)", ("row %d %s" % (i, "x" * (i % 50)),))
    c.execute("begin"); c.execute("delete from t where id % 5 = 0"); c.execute("commit")
    c.execute("pragma wal_checkpoint(TRUNCATE)")
    c.execute("insert into t(v) values ('after checkpoint')")
    c.close()
`

// A mount replicating to real S3 servers restores with walfs — and, from
// MinIO, with the real Litestream v0.5.18 — to the live databases.
func TestMountS3Replica(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB, ...testserver.Option) *testserver.Server
	}{{"minio", testserver.StartMinIO}, {"versitygw", testserver.StartVersityGW}} {
		t.Run(tc.name, func(t *testing.T) {
			requireEnv(t)
			srv := tc.start(t)
			env := s3Env(srv)
			dataDir := filepath.Join(t.TempDir(), "data")
			replica := s3URL(srv, "walfs/prod")
			m := startMountEnv(t, env, dataDir, replica)
			py(t, writeAppScript, m.Mnt)
			m.Sync()
			m.Unmount()
			for _, db := range []string{"app.db", "sub/other.db"} {
				live := filepath.Join(dataDir, filepath.FromSlash(db))
				requireSameDB(t, live, restoreToEnv(t, env, s3URL(srv, "walfs/prod/"+db)))
				if tc.name == "minio" {
					requireSameDB(t, live, litestreamRestore(t, srv, "walfs/prod/"+db))
				}
			}
			// A fresh machine gets its databases back from the bucket.
			fresh := filepath.Join(t.TempDir(), "fresh")
			m2 := startMountEnv(t, env, fresh, replica)
			requireSameDB(t, filepath.Join(dataDir, "app.db"), filepath.Join(m2.Mnt, "app.db"))
			m2.Unmount()
		})
	}
}

// litestreamRestore restores path from the server with the real Litestream
// binary and returns the output file.
func litestreamRestore(t *testing.T, srv *testserver.Server, path string) string {
	t.Helper()
	bin := testserver.Tool(t, "litestream")
	out := filepath.Join(t.TempDir(), "litestream.db")
	cmd := exec.Command(bin, "restore", "-o", out, s3URL(srv, path))
	cmd.Env = litestreamEnv(srv)
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("litestream restore %s: %v\n%s", path, err, o)
	}
	return out
}

// litestreamEnv is the environment for the Litestream binary: credentials,
// and no AWS_CA_BUNDLE (Litestream v0.5.18 refuses to start with it).
func litestreamEnv(srv *testserver.Server) []string {
	var env []string
	for _, kv := range os.Environ() {
		if len(kv) >= len("AWS_CA_BUNDLE=") && kv[:len("AWS_CA_BUNDLE=")] == "AWS_CA_BUNDLE=" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "AWS_ACCESS_KEY_ID="+srv.AccessKey, "AWS_SECRET_ACCESS_KEY="+srv.SecretKey)
}
