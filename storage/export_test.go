package storage

// LockOf exposes the header reading of S3 retention to the external tests.
var LockOf = lockOf
