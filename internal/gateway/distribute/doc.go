// Package distribute is the gateway's distributor: it takes the files of the
// pipeline queue from processed to cleaned. For each file it declares a
// storage order with 12 nodes the scheduler picks, pushes every column
// (signed HTTP to each node), moves a column whose node failed the push or
// did not report in time (ReassignColumn), frees the work area once the
// chain says stored, and carries out deletes in order with all of that.
//
// A node is charged a failure (and may go to the scheduler's cooldown pool)
// only when it is at fault (NodeAtFault): unreachable, too slow, failing
// inside, or refusing right bytes. A failure on the gateway's side, or an
// answer that follows from the file's own state (the order was deleted, the
// column moved), is retried without blame.
//
// The distributor is driven by events: a change in the queue, Wake (the
// gateway calls it for each block with events), and the next due back-off or
// report deadline; it is never a poll of every record.
package distribute
