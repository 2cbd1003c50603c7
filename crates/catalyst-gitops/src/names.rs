//! The validated names of Organizations, Applications and Environment types live in the pure
//! core (`catalyst_core::names`); re-exported here for this crate's callers.
pub use catalyst_core::names::*;
