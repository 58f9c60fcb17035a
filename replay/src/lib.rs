//! schedrec's replay side: the kernel's PELT arithmetic ([`pelt`]), models
//! built on it ([`model`]), each task's timeline ([`task`]) and the driver
//! that streams a trace through them in parallel ([`engine`]), judged
//! against the kernel's own values ([`fidelity`]).

pub mod clock;
pub mod engine;
pub mod fidelity;
pub mod model;
pub mod pelt;
pub mod root;
pub mod task;

pub use engine::{replay, Options, Summary};
