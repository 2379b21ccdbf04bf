package guard

// SetBeforeCountHook sets the hook run between the snapshots and the counts.
func SetBeforeCountHook(f func()) (restore func()) {
	testHookBeforeCount = f
	return func() { testHookBeforeCount = nil }
}

// SetAfterTrashCommitHook sets the hook run between the commit of the trash
// snapshots and the removal of their rows.
func SetAfterTrashCommitHook(f func()) (restore func()) {
	testHookAfterTrashCommit = f
	return func() { testHookAfterTrashCommit = nil }
}
