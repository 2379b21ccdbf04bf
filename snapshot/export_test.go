package snapshot

import "golang.org/x/sys/unix"

// SetAfterExportHook sets the hook run between the snapshot export and the
// workers' import, for the duration of a test.
func SetAfterExportHook(f func()) (restore func()) {
	testHookAfterExport = f
	return func() { testHookAfterExport = nil }
}

// SetKeyBudget sets how many bytes of parent keys a run may hold, for the duration
// of a test.
func SetKeyBudget(n int64) (restore func()) {
	old := idBudget
	idBudget = n
	return func() { idBudget = old }
}

// SetKeyedShareMax sets the largest share of a parent's rows for which children are
// selected by the parent's keys, for the duration of a test.
func SetKeyedShareMax(f float64) (restore func()) {
	old := keyedShareMax
	keyedShareMax = f
	return func() { keyedShareMax = old }
}

// SetOpenat2 replaces the openat2 system call saveFile opens files with, for the
// duration of a test (a kernel or a seccomp policy without it).
func SetOpenat2(f func(dirfd int, path string, how *unix.OpenHow) (int, error)) (restore func()) {
	old := openat2
	openat2 = f
	return func() { openat2 = old }
}

// SetAfterStatHook sets the hook run between a file's stat by name and the shield's
// look at it by name, for the duration of a test.
func SetAfterStatHook(f func(path string)) (restore func()) {
	testHookAfterStat = f
	return func() { testHookAfterStat = nil }
}

// SetAfterFstatHook sets the hook run between a small file's fstat by descriptor and
// its reading, for the duration of a test.
func SetAfterFstatHook(f func(path string)) (restore func()) {
	testHookAfterFstat = f
	return func() { testHookAfterFstat = nil }
}

// SetByNameTrials sets how many files a shield may vouch for by descriptor after
// saying no by name before it is asked by name no more, for the duration of a test.
func SetByNameTrials(n int64) (restore func()) {
	old := byNameTrials
	byNameTrials = n
	return func() { byNameTrials = old }
}

// SetShieldTrials sets how many files of a column the shield is asked about while
// it vouches for none, for the duration of a test.
func SetShieldTrials(n int64) (restore func()) {
	old := shieldTrials
	shieldTrials = n
	return func() { shieldTrials = old }
}

// FileWorkersPerJob is how many file workers a snapshot runs per --jobs.
const FileWorkersPerJob = fileWorkersPerJob

// SmallBlob is the largest file a snapshot stores from memory.
const SmallBlob = smallBlob
