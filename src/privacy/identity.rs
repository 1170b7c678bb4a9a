//! A victim's identity: everything that identifies a person. It only ever exists in clear inside
//! a caseworker's request; at rest it is one sealed document (see `crypto`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::crypto::{CryptoError, Purpose, Sealed};
use super::vault::{Opens, VictimSealer};
use crate::error::FieldError;

/// Identifying details of a person. Shown only to caseworkers entitled to them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub given_names: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub family_names: Option<String>,
    /// Other names the person is known by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = aliases_schema)]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200)]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1000)]
    pub address: Option<String>,
    /// e.g. `passport`, `national_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100)]
    pub document_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100)]
    pub document_number: Option<String>,
    /// Narrative and notes: identity-grade free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 20000)]
    pub notes: Option<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity(<redacted>)")
    }
}

/// At most 20 aliases of at most 200 characters each (utoipa has no attribute for the items').
fn aliases_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).max_length(Some(200)))
        .max_items(Some(20))
        .description(Some("Other names the person is known by."))
        .build()
}

impl Identity {
    /// What depends on the day; the lengths are the schema's (see `VictimInput::validate`).
    pub fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.date_of_birth.is_some_and(|d| d > chrono::Utc::now().date_naive()) {
            errors.push(FieldError::new("identity.date_of_birth", "must not be in the future"));
        }
    }

    /// Name variants for search: "given family", "family given", and each alias.
    fn names(&self) -> Vec<String> {
        let given = self.given_names.as_deref().unwrap_or_default();
        let family = self.family_names.as_deref().unwrap_or_default();
        let mut names = vec![format!("{given} {family}"), format!("{family} {given}")];
        names.extend(self.aliases.iter().cloned());
        names
    }
}

/// An identity ready to store: sealed, with its blind indexes.
pub struct StoredIdentity {
    pub sealed: Sealed,
    pub name_index: Vec<Vec<u8>>,
    pub document_index: Option<Vec<u8>>,
}

/// Sealed under the victim's data key; the blind indexes under the deployment's index key, since
/// search spans victims.
pub fn seal(sealer: &VictimSealer<'_>, victim: Uuid, identity: &Identity) -> StoredIdentity {
    let keys = sealer.keyring();
    let json = zeroize::Zeroizing::new(serde_json::to_vec(identity).expect("serialises"));
    let mut name_index: Vec<Vec<u8>> = identity.names().iter().filter_map(|n| keys.name_index(n)).collect();
    name_index.sort();
    name_index.dedup();
    StoredIdentity {
        sealed: sealer.seal(Purpose::Identity, victim, &json),
        name_index,
        document_index: identity.document_number.as_deref().and_then(|d| keys.document_index(d)),
    }
}

/// The identity, or none when its data key was destroyed: it was erased (a write that raced the
/// erasure can leave such a row behind).
pub fn open(opener: &impl Opens, victim: Uuid, sealed: &Sealed) -> Result<Option<Identity>, CryptoError> {
    let json = match opener.open(Purpose::Identity, victim, sealed) {
        Ok(json) => json,
        Err(CryptoError::Erased) => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&json).map(Some).map_err(|_| CryptoError::Integrity)
}
