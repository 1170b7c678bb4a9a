//! Victims: case files, their encrypted identities, and the handlers in `routes`.

pub mod access;
pub mod assignment;
pub mod closure;
pub mod consent;
pub mod custody;
pub mod erasure;
pub mod filters;
pub mod model;
pub mod routes;
pub mod search;
pub mod store;
pub mod subject_access;
