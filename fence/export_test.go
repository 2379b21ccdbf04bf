package fence

// The tests install on graphs they shape themselves (a table that does not exist, a
// graph without its root), which the public API, taking a profile, cannot express.
var (
	InstallGraph   = installGraph
	UninstallGraph = uninstallGraph
)

// InstallCaptureGraph is installCaptureGraph, for the same reason.
var InstallCaptureGraph = installCaptureGraph
