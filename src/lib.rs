//! Haven: an HTTP API for organisations that assist victims of human trafficking.
//!
//! The service is a library so that the binary and the tests build the very same application.

pub mod assistance;
pub mod audit;
pub mod auth;
#[cfg(feature = "benchmark-twin")]
pub mod benchmark_twin;
pub mod bootstrap;
pub mod changes;
pub mod config;
pub mod console;
pub mod db;
pub mod deadline;
pub mod domain;
pub mod error;
pub mod exchange;
pub mod extract;
pub mod grants;
pub mod hardening;
pub mod idempotency;
pub mod memory;
pub mod openapi;
pub mod ops;
pub mod orgs;
pub mod pagination;
pub mod privacy;
pub mod referrals;
pub mod rekey;
pub mod reports;
pub mod retention;
pub mod routes;
pub mod secrets;
pub mod seed;
pub mod startup;
pub mod state;
pub mod support_plan;
pub mod tasks;
pub mod telemetry;
pub mod transfers;
pub mod users;
pub mod victims;
pub mod vocabularies;
pub mod webhooks;
