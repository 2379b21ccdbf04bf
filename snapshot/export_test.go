package snapshot

// SetAfterExportHook sets the hook run between the snapshot export and the
// workers' import, for the duration of a test.
func SetAfterExportHook(f func()) (restore func()) {
	testHookAfterExport = f
	return func() { testHookAfterExport = nil }
}
