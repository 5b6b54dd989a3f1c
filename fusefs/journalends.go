package fusefs

import "sync"

// journalEnds remembers, per database, how its rollback journals end, which
// decides whether the kernel may write the next one (journalFile).
//
// SQLite ends a journal by deleting it (journal_mode=DELETE) or truncating
// it (TRUNCATE): both are requests the mount sees, whoever wrote the
// journal. It ends one by zeroing its header (PERSIST, or any mode under
// locking_mode=EXCLUSIVE) with a write that only a journal walfs serves
// itself shows. So a database's journals go to the kernel once one of them
// was seen ending by delete or truncate, and come back to walfs as soon as
// one ends by a zeroed header.
//
// Owned by the fileSystem; mu guards the map. A database walfs has not seen
// end a journal yet is absent: its journals stay in userspace.
type journalEnds struct {
	mu      sync.Mutex
	visible map[string]bool // db -> its last journal ended by delete or truncate
}

// ended records how db's journal just ended: visibly (delete, truncate) or
// by a zeroed header.
func (e *journalEnds) ended(db string, visibly bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.visible == nil {
		e.visible = map[string]bool{}
	}
	if visibly {
		e.visible[db] = true
	} else {
		delete(e.visible, db)
	}
}

// kernelMay reports whether the kernel may write db's next journal.
func (e *journalEnds) kernelMay(db string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.visible[db]
}

// forget drops what is known of db (its file was removed).
func (e *journalEnds) forget(db string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.visible, db)
}
