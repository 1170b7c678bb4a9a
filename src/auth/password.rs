//! Password hashing off the async executor, with bounded concurrency: argon2id costs ~13 ms of
//! CPU and 19 MiB per call, so unbounded parallel logins would starve every other request.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};

fn argon2() -> Argon2<'static> {
    // OWASP parameters: m = 19456 KiB, t = 2, p = 1.
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against when the account does not exist, so an unknown email costs the same
    /// time as a wrong password.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> PasswordHasher {
        let dummy_hash = hash_now(b"haven timing-equaliser password").expect("hashing works");
        PasswordHasher { permits: Arc::new(Semaphore::new(concurrency)), dummy_hash }
    }

    pub async fn hash(&self, password: &str) -> ApiResult<String> {
        let password = Zeroizing::new(password.to_owned());
        let permit = self.permits.clone().acquire_owned().await.map_err(|e| ApiError::internal("hasher", e))?;
        // The permit lives in the blocking task: if the request is dropped, the slot stays taken
        // until the hash is really done.
        actix_web::web::block(move || {
            let _permit = permit;
            hash_now(password.as_bytes())
        })
        .await
        .map_err(|e| ApiError::internal("hasher", e))?
        .map_err(|e| ApiError::internal("hasher", e))
    }

    /// Whether `password` matches `hash`; with no hash (unknown account) it does the same work
    /// and answers false.
    pub async fn verify(&self, password: Zeroizing<String>, hash: Option<String>) -> ApiResult<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let permit = self.permits.clone().acquire_owned().await.map_err(|e| ApiError::internal("hasher", e))?;
        let matched = actix_web::web::block(move || {
            let _permit = permit;
            argon2().verify_password(password.as_bytes(), hash.as_str()).is_ok()
        })
        .await
        .map_err(|e| ApiError::internal("hasher", e))?;
        Ok(known && matched)
    }
}

fn hash_now(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    Ok(argon2().hash_password(password)?.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_are_argon2id_phc_strings_with_owasp_parameters() {
        let hash = super::hash_now(b"correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    }
}
