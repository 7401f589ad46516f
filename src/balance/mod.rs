//! Backend choice: the stable seeded hash, Maglev tables and the immutable `Snapshot` workers read.

pub mod hash;
pub mod maglev;
pub mod owner;
pub mod snapshot;
pub mod steer;

pub use owner::Reta;
pub use snapshot::{Health, MemberId, ProbeState, Rule, RuleId, RuleKind, Snapshot};
