//! Maelstrom's node protocol, for testing nodes that speak JSON over stdin and
//! stdout (issue: test any Maelstrom node).
//!
//! - [`proto`]: messages, error codes, the lin-kv requests and how a client
//!   classifies their replies;
//! - [`services`]: the `lin-kv`, `seq-kv` and `lww-kv` services a node may message,
//!   emulated inside the harness on the run's seeded stream.
//!
//! The router that runs such nodes as a system under test is
//! [`crate::system::maelstrom`].

pub mod proto;
pub mod services;
