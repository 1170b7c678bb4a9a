//! Authenticated encryption of identity-grade data (XChaCha20-Poly1305, RustCrypto) under a keyring
//! addressed by key id, and keyed blind indexes (HMAC-SHA256) for exact-match search without
//! plaintext in the database.
//!
//! Each ciphertext is bound to its purpose and record id as associated data: a ciphertext copied
//! onto another row, or altered in any bit, fails to decrypt and is refused.

use std::collections::HashMap;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;
use zeroize::Zeroizing;

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

/// What a ciphertext protects; part of the associated data.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    Identity,
    AssistanceNotes,
    ReferralReason,
    TaskNotes,
    /// A support-plan goal's objectives and action plan, sealed as one document.
    SupportPlanText,
    /// A staff account's TOTP secret.
    SecondFactor,
    /// A webhook's signing secret.
    WebhookSecret,
    /// A victim's data key, wrapped by a deployment key (see `vault`).
    DataKey,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Identity => b"identity",
            Purpose::AssistanceNotes => b"assistance-notes",
            Purpose::ReferralReason => b"referral-reason",
            Purpose::TaskNotes => b"task-notes",
            Purpose::SupportPlanText => b"support-plan-text",
            Purpose::SecondFactor => b"second-factor",
            Purpose::WebhookSecret => b"webhook-secret",
            Purpose::DataKey => b"data-key",
        }
    }
}

/// A ciphertext as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// The three nullable columns (key id, nonce, ciphertext) of an optional sealed text.
pub type OptionalSealed = (Option<String>, Option<Vec<u8>>, Option<Vec<u8>>);

impl Sealed {
    /// An optional sealed text (notes, a reason) as its three nullable columns.
    pub fn columns(sealed: Option<Sealed>) -> OptionalSealed {
        match sealed {
            Some(s) => (Some(s.key_id), Some(s.nonce), Some(s.ciphertext)),
            None => (None, None, None),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("unknown identity key id `{0}`")]
    UnknownKey(String),
    #[error("integrity check failed")]
    Integrity,
    /// Sealed under a victim's data key that no longer exists: the victim was erased.
    #[error("the data key was destroyed")]
    Erased,
}

/// How the `key_id` of a value sealed under a victim's data key begins (`v:<data key id>`);
/// deployment key ids cannot contain `:`.
pub const VICTIM_KEY_PREFIX: &str = "v:";

/// A victim's own data key, unwrapped, with its id. Everything identity-grade about one victim
/// (identity, notes, reasons, plans) is sealed under it, so destroying it erases all of them, in
/// every copy of the database too. Each key has an id of its own, stored with every value sealed
/// under it: a value sealed under a key since destroyed is recognised as erased even after the
/// victim has a new key, never mistaken for a tampered one.
pub struct DataKey {
    id: Uuid,
    cipher: XChaCha20Poly1305,
}

impl DataKey {
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Whether `key_id` (as stored with a value) names this key.
    pub(super) fn sealed_it(&self, key_id: &str) -> bool {
        key_id.strip_prefix(VICTIM_KEY_PREFIX).is_some_and(|id| id == self.id.to_string())
    }

    pub(super) fn seal(&self, purpose: Purpose, record: Uuid, plaintext: &[u8]) -> Sealed {
        let nonce_bytes: [u8; NONCE_BYTES] = rand::random();
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce_bytes), Payload { msg: plaintext, aad: &aad(purpose, record) })
            .expect("encryption of an in-memory buffer cannot fail");
        Sealed { key_id: format!("{VICTIM_KEY_PREFIX}{}", self.id), nonce: nonce_bytes.to_vec(), ciphertext }
    }

    pub(super) fn open(
        &self,
        purpose: Purpose,
        record: Uuid,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&self.cipher, purpose, record, sealed)
    }
}

fn open_with(
    cipher: &XChaCha20Poly1305,
    purpose: Purpose,
    record: Uuid,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let nonce_bytes: [u8; NONCE_BYTES] = sealed.nonce.as_slice().try_into().map_err(|_| CryptoError::Integrity)?;
    cipher
        .decrypt(&XNonce::from(nonce_bytes), Payload { msg: &sealed.ciphertext, aad: &aad(purpose, record) })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Integrity)
}

pub(super) fn refused(purpose: Purpose, record: Uuid, e: &CryptoError) -> crate::error::ApiError {
    tracing::error!(record_id = %record, ?purpose, error = %e, "sealed text refused: integrity check failed");
    crate::error::ApiError::Internal(format!("sealed {purpose:?} of {record} failed its integrity check"))
}

pub struct IdentityKeyring {
    current: String,
    ciphers: HashMap<String, XChaCha20Poly1305>,
    index_key: Zeroizing<Vec<u8>>,
}

fn decode_key(text: &str, what: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let bytes =
        STANDARD.decode(text).or_else(|_| URL_SAFE_NO_PAD.decode(text)).map_err(|_| format!("{what} is not base64"))?;
    if bytes.len() != KEY_BYTES {
        return Err(format!("{what} must be exactly {KEY_BYTES} bytes"));
    }
    Ok(Zeroizing::new(bytes))
}

fn aad(purpose: Purpose, record: Uuid) -> Vec<u8> {
    let mut aad = b"haven:v1:".to_vec();
    aad.extend_from_slice(purpose.label());
    aad.push(b':');
    aad.extend_from_slice(record.as_bytes());
    aad
}

impl IdentityKeyring {
    /// `keys`: `kid:base64key,...`, the first encrypts; `index_key`: base64 of 32 bytes.
    pub fn parse(keys: &str, index_key: &str) -> Result<IdentityKeyring, String> {
        let mut ciphers = HashMap::new();
        let mut current = None;
        for entry in keys.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kid, secret) = entry.split_once(':').ok_or("identity keys are `kid:base64key`")?;
            if kid.is_empty() || !kid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err("identity key ids must be non-empty and use letters, digits, - or _".into());
            }
            let key = decode_key(secret, &format!("identity key `{kid}`"))?;
            let cipher = XChaCha20Poly1305::new_from_slice(&key).map_err(|_| "bad key length")?;
            if ciphers.insert(kid.to_owned(), cipher).is_some() {
                return Err(format!("identity key id `{kid}` appears twice"));
            }
            current.get_or_insert_with(|| kid.to_owned());
        }
        Ok(IdentityKeyring {
            current: current.ok_or("no identity keys given")?,
            ciphers,
            index_key: decode_key(index_key, "the blind-index key")?,
        })
    }

    /// A fresh `kid:base64key` spec, or a fresh index key.
    pub fn generate_key_spec() -> String {
        format!("i{}:{}", &Uuid::new_v4().simple().to_string()[..8], Self::generate_index_key())
    }

    pub fn generate_index_key() -> String {
        let key: [u8; KEY_BYTES] = rand::random();
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    pub fn seal(&self, purpose: Purpose, record: Uuid, plaintext: &[u8]) -> Sealed {
        let nonce_bytes: [u8; NONCE_BYTES] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let ciphertext = self.ciphers[&self.current]
            .encrypt(&nonce, Payload { msg: plaintext, aad: &aad(purpose, record) })
            .expect("encryption of an in-memory buffer cannot fail");
        Sealed { key_id: self.current.clone(), nonce: nonce_bytes.to_vec(), ciphertext }
    }

    pub fn open(&self, purpose: Purpose, record: Uuid, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let cipher = self.ciphers.get(&sealed.key_id).ok_or_else(|| CryptoError::UnknownKey(sealed.key_id.clone()))?;
        open_with(cipher, purpose, record, sealed)
    }

    /// A fresh data key for `victim`, and its wrapping under the current deployment key.
    pub fn new_data_key(&self, victim: Uuid) -> (DataKey, Sealed) {
        let raw: Zeroizing<[u8; KEY_BYTES]> = Zeroizing::new(rand::random());
        let cipher = XChaCha20Poly1305::new_from_slice(&raw[..]).expect("32 bytes");
        (DataKey { id: Uuid::new_v4(), cipher }, self.seal(Purpose::DataKey, victim, &raw[..]))
    }

    /// Unwraps `victim`'s data key `id`.
    pub fn unwrap_data_key(&self, victim: Uuid, id: Uuid, wrapped: &Sealed) -> Result<DataKey, CryptoError> {
        let raw = self.open(Purpose::DataKey, victim, wrapped)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&raw).map_err(|_| CryptoError::Integrity)?;
        Ok(DataKey { id, cipher })
    }

    /// Opens an optional sealed text stored as three nullable columns (assistance notes, referral
    /// reasons). A value that fails its integrity check is refused, logged by record id only.
    pub fn open_text(
        &self,
        purpose: Purpose,
        record: Uuid,
        parts: (&Option<String>, &Option<Vec<u8>>, &Option<Vec<u8>>),
    ) -> Result<Option<String>, crate::error::ApiError> {
        let (Some(key_id), Some(nonce), Some(ciphertext)) = parts else { return Ok(None) };
        let sealed = Sealed { key_id: key_id.clone(), nonce: nonce.clone(), ciphertext: ciphertext.clone() };
        let plain = self.open(purpose, record, &sealed).map_err(|e| refused(purpose, record, &e))?;
        Ok(Some(String::from_utf8_lossy(&plain).into_owned()))
    }

    /// Keyed hash of a normalised name (case, accents, punctuation and spacing ignored).
    pub fn name_index(&self, name: &str) -> Option<Vec<u8>> {
        let normal = normalise_name(name);
        (!normal.is_empty()).then(|| self.index(b"name", &normal))
    }

    /// Keyed hash of a normalised document number (letters and digits only, case ignored).
    pub fn document_index(&self, number: &str) -> Option<Vec<u8>> {
        let normal: String = number.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect();
        (!normal.is_empty()).then(|| self.index(b"document", &normal))
    }

    /// Keyed digest of a create request, to recognise a retry. Keyed, because the body holds the
    /// identity: a plain hash would let anyone with a copy of the database test guesses offline.
    pub fn request_digest(&self, canonical_body: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key).expect("any key length");
        mac.update(b"request");
        mac.update(&[0]);
        mac.update(canonical_body);
        mac.finalize().into_bytes().to_vec()
    }

    /// A secret for another purpose, derived from the blind-index key (so it needs no setting of
    /// its own and rotates with it): HMAC-SHA256 of the purpose.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key).expect("any key length");
        mac.update(b"derive");
        mac.update(&[0]);
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn index(&self, kind: &[u8], value: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key).expect("any key length");
        mac.update(kind);
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// "  José-María  DE LA Cruz " and "jose maria de la cruz" are the same name.
pub fn normalise_name(name: &str) -> String {
    let folded: String = name
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &str) -> IdentityKeyring {
        IdentityKeyring::parse(keys, &IdentityKeyring::generate_index_key()).unwrap()
    }

    #[test]
    fn seals_and_refuses_tampering_or_misplacement() {
        let spec = IdentityKeyring::generate_key_spec();
        let keys = ring(&spec);
        let id = Uuid::new_v4();
        let sealed = keys.seal(Purpose::Identity, id, b"Amina Diallo");
        assert!(!sealed.ciphertext.windows(5).any(|w| w == b"Amina"));
        assert_eq!(&keys.open(Purpose::Identity, id, &sealed).unwrap()[..], b"Amina Diallo");
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert_eq!(keys.open(Purpose::Identity, id, &flipped), Err(CryptoError::Integrity));
        assert_eq!(keys.open(Purpose::Identity, Uuid::new_v4(), &sealed), Err(CryptoError::Integrity), "other row");
        assert_eq!(keys.open(Purpose::AssistanceNotes, id, &sealed), Err(CryptoError::Integrity), "other purpose");
    }

    #[test]
    fn old_keys_still_open_after_rotation() {
        let old = IdentityKeyring::generate_key_spec();
        let new = IdentityKeyring::generate_key_spec();
        let index = IdentityKeyring::generate_index_key();
        let before = IdentityKeyring::parse(&old, &index).unwrap();
        let after = IdentityKeyring::parse(&format!("{new},{old}"), &index).unwrap();
        let id = Uuid::new_v4();
        let sealed = before.seal(Purpose::Identity, id, b"x");
        assert_eq!(&after.open(Purpose::Identity, id, &sealed).unwrap()[..], b"x");
        assert_ne!(after.seal(Purpose::Identity, id, b"x").key_id, sealed.key_id);
    }

    #[test]
    fn blind_indexes_normalise() {
        let keys = ring(&IdentityKeyring::generate_key_spec());
        assert_eq!(keys.name_index("  José-María  DE LA Cruz "), keys.name_index("jose maria de la cruz"));
        assert_ne!(keys.name_index("Jose Maria"), keys.name_index("Jose Mario"));
        assert_eq!(keys.document_index("ab 12-345"), keys.document_index("AB12345"));
        assert_ne!(keys.name_index("AB12345"), keys.document_index("AB12345"), "kinds are separated");
        assert!(keys.name_index(" - ").is_none());
        let other = ring(&IdentityKeyring::generate_key_spec());
        assert_ne!(keys.name_index("Amina"), other.name_index("Amina"), "keyed");
    }
}
