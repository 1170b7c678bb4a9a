//! Password hashing off the async executor, with bounded concurrency: argon2id costs ~13 ms of
//! CPU and 7 MiB per call, so unbounded parallel logins would starve every other request.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};

fn argon2() -> Argon2<'static> {
    // OWASP's m = 7 MiB, t = 5, p = 1: the same defence as its m = 19 MiB, t = 2 (the cheat
    // sheet rates its five settings equal) for the same CPU, with a third of the memory that every
    // concurrent check holds (docs/DECISIONS.md D125). Hashes made with other parameters keep
    // verifying: each PHC string names its own.
    let params = Params::new(7_168, 5, 1, None).expect("valid argon2 parameters");
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

    /// Whether `hash` was made with other parameters than a new hash gets (D125): worth making
    /// again once the password is known to be right.
    pub fn is_outdated(&self, hash: &str) -> bool {
        parameters(hash) != parameters(&self.dummy_hash)
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

/// `$argon2id$v=19$m=7168,t=5,p=1` of a PHC string: everything before its salt and output.
fn parameters(hash: &str) -> Option<&str> {
    hash.rsplitn(3, '$').nth(2)
}

fn hash_now(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    Ok(argon2().hash_password(password)?.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_are_argon2id_phc_strings_with_owasp_parameters() {
        let hash = super::hash_now(b"correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
    }

    #[actix_web::test]
    async fn hashes_made_with_earlier_parameters_still_verify() {
        use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, Version};
        let earlier = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19_456, 2, 1, None).unwrap());
        let hash = earlier.hash_password(b"correct horse battery staple").unwrap().to_string();
        let hasher = super::PasswordHasher::new(1);
        let right = zeroize::Zeroizing::new("correct horse battery staple".to_owned());
        let wrong = zeroize::Zeroizing::new("correct horse battery stapler".to_owned());
        assert!(hasher.is_outdated(&hash) && !hasher.is_outdated(&super::hash_now(b"another one").unwrap()));
        assert!(hasher.verify(right, Some(hash.clone())).await.unwrap());
        assert!(!hasher.verify(wrong, Some(hash)).await.unwrap());
    }
}
