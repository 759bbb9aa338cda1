//! Maelstrom's node protocol, for testing nodes that speak JSON over stdin and
//! stdout (issue: test any Maelstrom node).
//!
//! - [`proto`]: messages, error codes, the lin-kv requests and how a client
//!   classifies their replies;
//! - [`services`]: the `lin-kv`, `seq-kv` and `lww-kv` services a node may message,
//!   emulated inside the harness on the run's seeded stream.
//!
//! Still to come: the stdio router as a system under test (spawning the nodes,
//! `init`, routing node-to-node messages through the fault model, clients c1..cK).

pub mod proto;
pub mod services;
