//! Privacy, enforced in one place each: encryption of identity-grade data at rest (`crypto`),
//! each victim's data key, kept apart from the data so erasure reaches backups (`vault`),
//! what a caller may see of a victim and the view types that make it hold (`redaction`), and which
//! staff ids on a case's records a caller may see (`staff`).

pub mod crypto;
pub mod identity;
pub mod redaction;
pub mod staff;
pub mod vault;
