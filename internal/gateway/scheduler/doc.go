// Package scheduler chooses the storage nodes of a gateway's uploads.
//
// Nouns:
//   - candidate: an active node with room for the column, not excluded by the
//     strategy and not cooling down.
//   - score: a node's quality: its success rate (failures and successes decay
//     with a half-life, so old events matter less) times a throughput factor.
//     Choice is random in proportion to score, so good nodes are preferred
//     and load still spreads.
//   - cooldown pool: nodes that failed F times within a window; they get no
//     new columns for a period that doubles each time they return to it.
package scheduler
