//! JWT access tokens: HS256 pinned, `iss`/`aud`/`exp`/`nbf`/`iat`/`sub` required, keys addressed
//! by `kid` in a keyring so they can rotate. A retired key keeps verifying the tokens it signed
//! until they expire (retirement time + token lifetime), then nothing.

use std::collections::HashMap;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::verified_tokens::{Bearer, VerifiedTokens};
use crate::domain::Role;

pub const TOKEN_TYPE_ACCESS: &str = "access";
const ALGORITHM: Algorithm = Algorithm::HS256;
const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: Uuid,
    pub typ: String,
    /// The login session: revoking it stops the token at once.
    pub sid: Uuid,
    pub org: Uuid,
    pub role: Role,
    /// The user's token version at issue; bumped on role change, disable and password reset.
    pub ver: i32,
}

struct Key {
    encoding: EncodingKey,
    decoding: DecodingKey,
    retired_at: Option<i64>,
}

pub struct Keyring {
    signing_kid: String,
    keys: HashMap<String, Key>,
    issuer: String,
    audience: String,
    ttl_secs: i64,
    pub(super) verified: VerifiedTokens,
}

/// Seconds a token is still accepted after its `exp` (and before its `nbf`): clocks differ.
const LEEWAY_SECS: i64 = 5;

/// Why a token was refused; all are answered 401 alike, the reason is for tests and logs.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    UnknownKey,
    RetiredKey,
    Invalid(String),
    WrongType,
}

impl Keyring {
    /// Parses `kid:base64key[:retired_unix_time],...`; the first key signs.
    pub fn parse(spec: &str, issuer: &str, audience: &str, ttl_secs: u64) -> Result<Keyring, String> {
        let mut keys = HashMap::new();
        let mut signing_kid = None;
        // Entries are named by their place, never by their text: a misplaced secret would print.
        for (n, entry) in spec.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let n = n + 1;
            let mut parts = entry.split(':');
            let kid = parts.next().unwrap_or_default();
            // Not named: an entry without `kid:` is most likely the secret itself, which an error
            // message would print to the terminal and the journal.
            let secret = parts.next().ok_or_else(|| "a key has no id: write each as kid:base64secret".to_owned())?;
            let retired_at = match parts.next() {
                Some(t) => {
                    Some(t.parse::<i64>().map_err(|_| format!("key {n}: retirement time must be unix seconds"))?)
                }
                None => None,
            };
            if kid.is_empty() || !kid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err("key ids must be non-empty and use letters, digits, - or _".into());
            }
            let bytes = decode_secret(secret).ok_or_else(|| format!("key {n}: secret is not base64"))?;
            if bytes.len() < MIN_KEY_BYTES {
                return Err(format!("key {n}: secret must be at least {MIN_KEY_BYTES} bytes"));
            }
            if signing_kid.is_none() {
                if retired_at.is_some() {
                    return Err("the first (signing) key cannot be retired".into());
                }
                signing_kid = Some(kid.to_owned());
            }
            let key = Key {
                encoding: EncodingKey::from_secret(&bytes),
                decoding: DecodingKey::from_secret(&bytes),
                retired_at,
            };
            if keys.insert(kid.to_owned(), key).is_some() {
                return Err(format!("key id `{kid}` appears twice"));
            }
        }
        let signing_kid = signing_kid.ok_or("no keys given")?;
        Ok(Keyring {
            signing_kid,
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs: ttl_secs as i64,
            verified: VerifiedTokens::default(),
        })
    }

    /// A fresh key spec (`kid:base64key`) with 256 random bits.
    pub fn generate_spec() -> String {
        let secret: [u8; 32] = rand::random();
        let kid = format!("k{}", &Uuid::new_v4().simple().to_string()[..8]);
        format!("{kid}:{}", base64::engine::general_purpose::STANDARD.encode(secret))
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn issue(&self, user: Uuid, org: Uuid, role: Role, session: Uuid, version: i32) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user,
            exp: now + self.ttl_secs,
            nbf: now,
            iat: now,
            jti: Uuid::now_v7(),
            typ: TOKEN_TYPE_ACCESS.into(),
            sid: session,
            org,
            role,
            ver: version,
        };
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.signing_kid.clone());
        let key = &self.keys[&self.signing_kid].encoding;
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| e.to_string())
    }

    /// What an access token says, as [`Keyring::verify`] finds it, remembered until the token is
    /// no longer valid (`auth::verified_tokens`).
    pub fn bearer(&self, token: impl AsRef<[u8]>) -> Result<Bearer, TokenError> {
        self.verified.verify(token.as_ref(), chrono::Utc::now().timestamp(), |token| {
            // Read as text only when not remembered: a token is ASCII (base64url and dots), and
            // anything else, Unicode space included, is refused before it is parsed.
            let token = std::str::from_utf8(token).ok().filter(|t| t.is_ascii()).ok_or(TokenError::Malformed)?;
            let (claims, until) = self.verify_until(token)?;
            let bearer = Bearer {
                user: claims.sub,
                session: claims.sid,
                organization: claims.org,
                role: claims.role,
                version: claims.ver,
            };
            Ok((bearer, until))
        })
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_until(token).map(|(claims, _)| claims)
    }

    /// The claims of a valid token, and the last second it stays valid: its expiry (with the
    /// leeway), or the end of its retired key's grace if sooner.
    fn verify_until(&self, token: &str) -> Result<(AccessClaims, i64), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "sub", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS as u64;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map_err(|e| TokenError::Invalid(format!("{:?}", e.kind())))?;
        let claims = data.claims;
        if claims.typ != TOKEN_TYPE_ACCESS {
            return Err(TokenError::WrongType);
        }
        let mut until = claims.exp + LEEWAY_SECS;
        if let Some(retired_at) = key.retired_at {
            let now = chrono::Utc::now().timestamp();
            if claims.iat > retired_at || now > retired_at + self.ttl_secs {
                return Err(TokenError::RetiredKey);
            }
            until = until.min(retired_at + self.ttl_secs);
        }
        Ok((claims, until))
    }
}

fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    STANDARD.decode(secret).ok().or_else(|| URL_SAFE_NO_PAD.decode(secret).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(spec: &str) -> Keyring {
        Keyring::parse(spec, "haven", "haven-api", 900).unwrap()
    }

    #[test]
    fn round_trip_and_rotation() {
        let old = Keyring::generate_spec();
        let new = Keyring::generate_spec();
        let before = ring(&old);
        let token = before.issue(Uuid::nil(), Uuid::nil(), Role::Admin, Uuid::nil(), 1).unwrap();
        assert!(before.verify(&token).is_ok());
        let now = chrono::Utc::now().timestamp();
        // Old key retired just now: its tokens still verify until they expire.
        let after = ring(&format!("{new},{old}:{now}"));
        assert!(after.verify(&token).is_ok());
        // Retired long ago: refused.
        let later = ring(&format!("{new},{old}:{}", now - 10_000));
        assert_eq!(later.verify(&token).unwrap_err(), TokenError::RetiredKey);
        // Dropped from the ring: unknown kid.
        assert_eq!(ring(&new).verify(&token).unwrap_err(), TokenError::UnknownKey);
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in ["", "k1", "k1:short", "k1:!!!", "a b:AAAA"] {
            assert!(Keyring::parse(bad, "i", "a", 900).is_err(), "{bad}");
        }
        let k = Keyring::generate_spec();
        assert!(Keyring::parse(&format!("{k},{k}"), "i", "a", 900).is_err(), "duplicate kid");
        // A secret given without its id is refused without being repeated.
        let secret = k.split(':').nth(1).unwrap();
        let refused = Keyring::parse(secret, "i", "a", 900).err().expect("refused");
        assert!(!refused.contains(secret), "{refused}");
    }
}
