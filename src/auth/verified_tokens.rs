//! A memory of access tokens already verified, so a client's next request with the same token
//! costs a lookup instead of base64, JSON and an HMAC again (most of what authentication cost on
//! equal work: docs/BENCHMARKS.md).
//!
//! Safe because a token's verdict depends only on its own bytes, on the keyring (fixed for the
//! life of the process) and on the clock: an entry is keyed by the whole token, compared in full,
//! so a token differing in any byte (a forged signature, an edited claim) is never recalled; and
//! it is kept only until the token expires (or its retired key stops verifying). What the token
//! names (the session, the user's role and status) is still checked on every request by the
//! caller (`auth::principal`), so revocations are not delayed by this memory.

use std::collections::HashMap;
use std::hash::{BuildHasher, DefaultHasher, Hasher, RandomState};
use std::sync::Mutex;

use uuid::Uuid;

use crate::domain::Role;

/// What a verified access token says, as the request guard reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bearer {
    pub user: Uuid,
    pub session: Uuid,
    pub organization: Uuid,
    pub role: Role,
    pub version: i32,
}

/// Far more tokens than a deployment has live at once (each holds ~600 bytes); past it, expired
/// ones go and, if that is not enough, everything.
const MAX_ENTRIES: usize = 4096;

/// How many bytes at the end of a token its hash reads: the end of its signature.
const HASHED_TAIL: usize = 32;

/// Each verified token's bytes, with what it says and the last second it is valid in.
type Entries = HashMap<Box<[u8]>, (Bearer, i64), TailHash>;

#[derive(Default)]
pub struct VerifiedTokens {
    entries: Mutex<Entries>,
}

/// Hashes only the last [`HASHED_TAIL`] bytes of each write: hashing a whole token (hundreds of
/// bytes) was the largest part of a remembered token's cost. The tail is the token's signature, as
/// random as the key that made it, and only tokens that verified are ever stored, so nobody can fill
/// the map with colliding entries; equality still compares the whole token.
#[derive(Default)]
struct TailHash(RandomState);

struct Tail(DefaultHasher);

impl BuildHasher for TailHash {
    type Hasher = Tail;

    fn build_hasher(&self) -> Tail {
        Tail(self.0.build_hasher())
    }
}

impl Hasher for Tail {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(&bytes[bytes.len().saturating_sub(HASHED_TAIL)..]);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

impl VerifiedTokens {
    /// The verdict on `token`: remembered while still valid at `now` (unix seconds), else from
    /// `verify`, which gives what the token says and the last second it is valid in.
    pub fn verify<E>(
        &self,
        token: &[u8],
        now: i64,
        verify: impl FnOnce(&[u8]) -> Result<(Bearer, i64), E>,
    ) -> Result<Bearer, E> {
        if let Some((bearer, until)) = self.lock().get(token)
            && now <= *until
        {
            return Ok(*bearer);
        }
        let (bearer, until) = verify(token)?;
        if now <= until {
            let mut entries = self.lock();
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, (_, until)| now <= *until);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(token.into(), (bearer, until));
        }
        Ok(bearer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::{Keyring, TokenError};

    fn ring(ttl: u64) -> Keyring {
        Keyring::parse(&Keyring::generate_spec(), "haven", "haven-api", ttl).unwrap()
    }

    fn token(ring: &Keyring) -> String {
        ring.issue(Uuid::new_v4(), Uuid::new_v4(), Role::Partner, Uuid::new_v4(), 3).unwrap()
    }

    #[test]
    fn a_remembered_token_never_vouches_for_another_with_any_byte_changed() {
        let ring = ring(900);
        let genuine = token(&ring);
        let said = ring.bearer(&genuine).unwrap();
        assert_eq!(ring.bearer(&genuine).unwrap(), said, "recalled as verified");
        let (unsigned, signature) = genuine.rsplit_once('.').unwrap();
        let mut forged_signature = signature.as_bytes().to_vec();
        forged_signature[0] = if forged_signature[0] == b'A' { b'B' } else { b'A' };
        let forged = format!("{unsigned}.{}", String::from_utf8(forged_signature).unwrap());
        assert!(ring.bearer(&forged).is_err(), "a forged signature on remembered claims");
        assert!(ring.bearer(format!("{genuine}x")).is_err());
        assert!(ring.bearer(unsigned).is_err());
        // Bytes the header may carry but a token never holds: refused, remembered token or not.
        assert!(ring.bearer(format!("\u{a0}{genuine}\u{a0}")).is_err(), "Unicode space around it");
        assert!(matches!(ring.bearer([genuine.as_bytes(), b"\xff"].concat()), Err(TokenError::Malformed)));
        let other = token(&ring);
        assert_ne!(ring.bearer(&other).unwrap(), said);
    }

    #[test]
    fn the_hashed_tail_lies_within_the_signature() {
        // Tail hashing is sound only while the tail is signature (D137): a shorter signature, from
        // another algorithm, would bring claims into it.
        let signature = token(&ring(900)).rsplit_once('.').unwrap().1.len();
        assert!(signature >= HASHED_TAIL, "signature of {signature} characters");
    }

    #[test]
    fn tokens_alike_at_the_end_are_told_apart() {
        let memory = VerifiedTokens::default();
        let tail = "s".repeat(HASHED_TAIL);
        let bearer = |version| Bearer {
            user: Uuid::nil(),
            session: Uuid::nil(),
            organization: Uuid::nil(),
            role: Role::Partner,
            version,
        };
        let (first, second) = (format!("a.{tail}"), format!("b.{tail}"));
        memory.verify(first.as_bytes(), 1, |_| Ok::<_, TokenError>((bearer(1), 100))).unwrap();
        memory.verify(second.as_bytes(), 1, |_| Ok::<_, TokenError>((bearer(2), 100))).unwrap();
        let recalled =
            |token: &str| memory.verify(token.as_bytes(), 1, |_| Err::<(Bearer, i64), _>(TokenError::Malformed));
        assert_eq!(recalled(&first).unwrap().version, 1);
        assert_eq!(recalled(&second).unwrap().version, 2);
        assert!(recalled(&format!("c.{tail}")).is_err(), "a third token with the same end was never verified");
    }

    #[test]
    fn a_verdict_is_kept_only_until_the_token_stops_being_valid() {
        let memory = VerifiedTokens::default();
        let bearer = Bearer {
            user: Uuid::nil(),
            session: Uuid::nil(),
            organization: Uuid::nil(),
            role: Role::Partner,
            version: 1,
        };
        let checks = std::cell::Cell::new(0);
        let check = |_: &[u8]| {
            checks.set(checks.get() + 1);
            Ok::<_, TokenError>((bearer, 100))
        };
        memory.verify(b"t", 99, check).unwrap();
        memory.verify(b"t", 100, check).unwrap();
        assert_eq!(checks.get(), 1, "remembered while valid");
        memory.verify(b"t", 101, check).unwrap();
        assert_eq!(checks.get(), 2, "checked again once past its last valid second");
        let refused = memory.verify(b"u", 1, |_| Err::<(Bearer, i64), _>(TokenError::Malformed));
        assert!(refused.is_err());
        assert!(
            memory.verify(b"u", 1, |_| Err::<(Bearer, i64), _>(TokenError::Malformed)).is_err(),
            "never remembered"
        );
    }

    #[test]
    fn a_token_of_a_retired_key_is_remembered_only_for_its_grace() {
        let (old, new) = (Keyring::generate_spec(), Keyring::generate_spec());
        let token = Keyring::parse(&old, "haven", "haven-api", 900).unwrap().issue(
            Uuid::nil(),
            Uuid::nil(),
            Role::Admin,
            Uuid::nil(),
            1,
        );
        let now = chrono::Utc::now().timestamp();
        // Retired now, by a deployment whose tokens last 100 s: the token's 900 s do not count.
        let ring = Keyring::parse(&format!("{new},{old}:{now}"), "haven", "haven-api", 100).unwrap();
        let token = token.unwrap();
        ring.bearer(&token).unwrap();
        let until = ring.verified.lock().get(token.as_bytes()).map(|(_, until)| *until).unwrap();
        assert!((now + 99..=now + 101).contains(&until), "remembered until {until}, now {now}");
    }
}
