//! Authentication: argon2id passwords, JWT access tokens from a rotating keyring, refresh-token
//! sessions with reuse detection, login throttling, enrolment tokens with which people set their own
//! passwords, and the `Principal` extractor.

pub mod credential_answer;
pub mod credentials;
pub mod enrolments;
pub mod lockout;
pub mod login;
pub mod password;
pub mod principal;
pub mod revocations;
pub mod routes;
pub mod second_factor;
pub mod second_factor_store;
pub mod session_cache;
pub mod sessions;
pub mod shared_limits;
pub mod throttle;
pub mod tokens;
pub mod verified_tokens;

pub use crate::domain::Principal;
pub use password::PasswordHasher;
pub use throttle::LoginThrottle;
pub use tokens::Keyring;
