// Package policy decides whether a tenant deletion set may go ahead.
//
// It is a pure function of its input: no I/O, no clock, no logging. The caller
// reads the database, the source of truth and the activity, and passes them in;
// the same input always gives the same decision, in the same order, which is what
// makes a refusal reproducible and testable.
//
// The rules exist because of one incident: a tenant sync computed "tenants in our
// database minus tenants in wazo-auth" comparing str UUIDs with uuid.UUID objects.
// Nothing matched, every tenant looked deleted, and ON DELETE CASCADE removed every
// tenant's data. Any one of these rules would have refused that deletion set:
// it listed tenants the source of truth still had, it was far more than a handful
// of tenants, and it was the whole database.
package policy
