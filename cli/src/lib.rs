//! Library side of the `kapsel` tool: the receiver's replay ledger and the
//! sender's serial store (both SQLite), and duration parsing. Exposed as a
//! library so benchmarks can measure the ledger without the binary.
#![forbid(unsafe_code)]

pub mod duration;
pub mod ledger;
pub mod serials;
pub mod sqlite;
pub mod state_dir;
