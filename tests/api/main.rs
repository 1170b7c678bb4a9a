//! Integration tests against a real PostgreSQL: one binary (one throw-away cluster), one fresh
//! database per test, cloned from a migrated template.

// The harness unwraps as tests do: a panic here is a failing test, with its message.
#![allow(clippy::unwrap_used)]

mod breaking_proxy;
mod deaf_proxy;
mod helpers;
mod paths;
mod world;

mod audit;
mod auth;
mod casework;
mod changes;
mod charts;
mod console;
mod contract;
mod docs_page;
mod documented_settings;
mod duties;
mod erasure;
mod errors;
mod exchange;
mod faults;
mod fuzz_api;
mod generated_client;
mod hostile;
mod judged_again;
mod leak;
mod lock_order;
mod lockout;
mod matrix;
mod migrations;
mod moved_on;
mod openapi;
mod operations;
mod organizations;
mod pools;
mod processes;
mod read_as_decided;
mod recovery;
mod referrals;
mod refusal_timing;
mod rekey_seed;
mod releases;
mod replica;
mod reports;
mod retention;
mod rights;
mod second_factor;
mod sensitivity;
mod tasks;
mod tokens;
mod transfers;
mod users;
mod victims;
mod vocabularies;
mod webhooks;
mod zero_config;
