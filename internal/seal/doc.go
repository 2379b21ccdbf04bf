// Package seal is per-tenant envelope encryption (age, filippo.io/age): every
// tenant has its own X25519 key pair, the "tenant key". Its public half (the
// recipient) lets any host seal objects for the tenant; its private half (the
// identity) is itself sealed to the operators' age recipients (on-call, break-glass)
// and opened only by a host given an operator identity. A snapshot host therefore
// holds no private key: it can write snapshots, never read them back. Forgetting a
// tenant destroys its sealed identity, and with it every object ever sealed for it,
// even under S3 Object Lock (crypto-shredding).
//
// Objects are streams: age's STREAM format is chunked AEAD (64 KiB chunks), so
// neither sealing nor opening holds an object in memory, and a flipped, truncated
// or reordered chunk fails the read. Each sealed stream begins, inside the
// encryption, with the tenant and the object's key, so an object moved to another
// key or another tenant fails to open even though it decrypts.
//
// The keys live in storage under keys/<tenant>/, in one object per tenant, which
// must stay erasable: the store must have the storage.Erasable capability (no Object
// Lock retention, every version destroyed on erase).
//
// Secrets (identities, address keys) print as REDACTED whichever way they are
// formatted, and no error carries one.
package seal
