//! The chaos harness as a library: a plan, through a system under test (real
//! processes or the simulation), to a history, a judgement and a report. It takes
//! typed specs, returns typed results and prints nothing; what a command has to say
//! while it works goes to an [`observe::Observer`]. The `chaos` binary (the `chaos`
//! crate) parses flags into these specs and shows what the library says.
//!
//! Entry points:
//! - [`spec::PlanSpec::plan`]: the one way to make a [`results::Plan`];
//!   [`spec::plan_from_file`] for a stored plan.json;
//! - [`engine::execute`] / [`engine::execute_with`]: a plan with real processes
//!   (`chaos run`), through [`procedure::run`];
//! - [`sim::execute`] / [`sim::sweep::judge`] / [`sim::sweep::sweep`]: a plan in one
//!   process on virtual time, into a run directory, judged in memory, or over many
//!   seeds (`chaos sim`);
//! - [`sweep::sweep`] / [`sweep::merge`], [`shrink::run`], [`matrix::matrix`],
//!   [`replay::replay`], [`compare::compare`]: the commands that run many runs or
//!   read them.
//!
//! The seams: [`system::System`] / [`system::Client`] / [`system::Launcher`] (a kind of
//! system under test), [`procedure::Driver`] (a way of running one),
//! [`nemesis::apply`] (a fault kind), [`results::Plan`] (a workload),
//! [`checker::model::Model`] (a checker model). The words they share are in
//! [`vocab`]. ARCHITECTURE.md gives the layers: which module may import which.

pub mod cluster;
pub mod compare;
pub mod engine;
mod final_phase;
mod finish;
pub mod maelstrom;
pub mod matrix;
pub mod observe;
pub mod procedure;
pub mod progress;
pub mod recorder;
pub mod replay;
mod seeds;
pub mod shrink;
pub mod sim;
pub mod spec;
pub mod sweep;
pub mod system;
pub mod vocab;
mod workload;

pub use engine::{RunOutcome, execute, execute_with};
