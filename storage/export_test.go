package storage

// LockOf exposes the header reading of S3 retention to the external tests.
var LockOf = lockOf

// BatchSize is how many objects a file:// batch holds before it flushes itself.
const BatchSize = batchSize
