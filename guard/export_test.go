package guard

// SetBeforeCountHook sets the hook run between the snapshots and the counts.
func SetBeforeCountHook(f func()) (restore func()) {
	testHookBeforeCount = f
	return func() { testHookBeforeCount = nil }
}
