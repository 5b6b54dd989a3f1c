package follow

import "time"

// DBStatus is one followed database as status and metrics show it.
type DBStatus struct {
	DB          string
	TXID        uint64    // the point readers see
	Commit      time.Time // when the primary committed it; zero when unknown
	ReplicaTXID uint64    // the newest point the follower knows of
	// Lag is how long the database has been behind the newest point the
	// follower knows of; 0 when current.
	Lag     time.Duration
	Waiting string // what the pending update waits for; "" when none
	Error   string // why the last update failed; "" when it succeeded
	Applied uint64 // updates applied since start
	Reloads uint64 // full restores since start (fell behind, or a check failed)
}

// Status describes the follower as a whole.
type Status struct {
	Source   string // how news is found
	Interval time.Duration
	LastPoll time.Time
	PollErr  string
	Polls    uint64 // polls since start
	Changes  uint64 // polls that found news
	DBs      []DBStatus
}

// Status returns the follower's state now.
func (f *Follower) Status() Status {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := Status{Source: f.src.String(), Interval: f.opts.Interval, LastPoll: f.lastPoll, PollErr: f.pollErr, Polls: f.polls, Changes: f.changes}
	now := time.Now()
	for _, db := range sortedKeys(f.dbs) {
		st := f.dbs[db]
		d := DBStatus{DB: db, TXID: st.txid, Commit: st.commit, ReplicaTXID: max(st.txid, f.latest[db].TXID),
			Waiting: st.waiting, Error: st.lastErr, Applied: st.applied, Reloads: st.reloads}
		if !st.behindSince.IsZero() {
			d.Lag = now.Sub(st.behindSince)
		}
		s.DBs = append(s.DBs, d)
	}
	return s
}
