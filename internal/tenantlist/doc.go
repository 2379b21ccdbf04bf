// Package tenantlist parses lists of tenant IDs where they enter purgeguard: files,
// stdin, HTTP responses from the source of truth.
//
// Every tenant ID is a uuid.UUID from the moment it is parsed. The incident this
// guards against compared Python str UUIDs with uuid.UUID objects: nothing matched
// and every tenant looked deleted. Parsing at the edge, into one comparable type,
// makes that class of bug impossible further in.
//
// Parsing is strict and loud: an entry that is not a tenant UUID is an error naming
// the source and the line or JSON index, never silently dropped, because a dropped
// entry in a source of truth is a tenant that looks deleted.
package tenantlist
