//! Privacy, enforced in one place each: encryption of identity-grade data at rest (`crypto`),
//! what a caller may see of a victim and the view types that make it hold (`redaction`).

pub mod crypto;
pub mod identity;
pub mod redaction;
