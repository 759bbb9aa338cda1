//! The chaos harness as a library: the engine that takes a plan through a system under
//! test to a history, a judgement and a report. The `chaos` binary (`main.rs`) only
//! parses flags and calls in here.
//!
//! Entry points:
//! - [`engine::execute`] / [`engine::execute_with`]: `chaos run` (a plan, a system);
//! - [`sim::execute`] / [`sim::simulate`]: `chaos sim` (a plan, in one process on
//!   virtual time);
//! - [`check::check`]: `chaos check`;
//! - [`replay::replay`]: `chaos replay`;
//! - [`report::report`]: `chaos report`;
//! - [`matrix::matrix`]: `chaos matrix`;
//! - [`sweep::sweep`] / [`sweep::merge`]: `chaos sweep`, `chaos merge`;
//! - [`cli::plan_from_args`]: flags to a [`results::Plan`].
//!
//! The seams: [`system::System`] / [`system::Client`] / [`system::Launcher`] (a kind of
//! system under test), [`nemesis::apply`] (a fault kind), [`results::Plan`] with
//! [`workload`] (a workload), [`checker::model::Model`] (a checker model).

pub mod check;
pub mod cli;
pub mod cluster;
pub mod compare;
pub mod engine;
pub mod final_phase;
pub mod finish;
pub mod maelstrom;
pub mod matrix;
pub mod procedure;
pub mod progress;
pub mod recorder;
pub mod replay;
pub mod report;
pub mod seeds;
pub mod shrink;
pub mod sim;
pub mod spec;
pub mod sweep;
pub mod system;
pub mod vocab;
pub mod workload;

pub use engine::{RunOutcome, execute, execute_with};
pub use progress::Presentation;
