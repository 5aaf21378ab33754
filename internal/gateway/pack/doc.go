// Package pack keeps a gateway's small objects until they share a pack.
//
// A Buffer is a directory of logs, <seq>.log, each a run of records:
//
//	"DPK1" | data length (u64) | data | header length (u16) | header (CBOR Object) | CRC32C
//
// where the CRC covers everything after the magic. A tombstone is a record
// with no data whose header says Deleted. The highest log is open; every
// other one is sealed and becomes one pack. Appends write their record
// under one lock and then share fsyncs: the writer that finds no fsync
// running starts one that covers every record written so far, and the
// writers that queued behind it return as soon as one covers theirs, so
// many small uploads cost one fsync. An append returns only once its bytes
// are durable.
//
// Restart replays the logs in order and truncates a log at its first bad
// record (a torn tail: nothing after it was acknowledged). A sealed log's
// members (its records live at the end of that log) are fixed, so its pack
// has the same bytes, and so the same FID, however often the seal is
// redone; deletes after the seal only make members dead, which the
// declaration leaves out.
//
// Every object is found by its OID, which binds owner, length, encryption
// and the BLAKE3 of its bytes: a read hashes the bytes before it hands out
// any of them.
package pack
