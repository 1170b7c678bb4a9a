//! Assistance given to a victim: kind, date, providing organisation, and identity-grade notes
//! (encrypted, shown only to caseworkers entitled to the victim's identity).

pub mod routes;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::assistance_records;
use crate::domain::case_vocab::ServiceKind;
use crate::privacy::redaction::IdentityGrant;

/// Assistance as a client records it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistanceInput {
    /// Client-chosen id; repeating a create with the same id and body returns the record.
    #[serde(default)]
    pub id: Option<Uuid>,
    pub kind: ServiceKind,
    pub provided_on: NaiveDate,
    /// Identity-grade free text: encrypted, shown only to caseworkers who may see the identity.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = assistance_records)]
pub struct AssistanceRow {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub organization_id: Uuid,
    pub kind: ServiceKind,
    pub provided_on: NaiveDate,
    pub provided_by: Uuid,
    pub notes_key_id: Option<String>,
    pub notes_nonce: Option<Vec<u8>>,
    pub notes_ciphertext: Option<Vec<u8>>,
    pub create_digest: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub created_by: Uuid,
}

/// An assistance record without notes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Assistance {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub kind: ServiceKind,
    pub provided_on: NaiveDate,
    /// The organisation that provided it.
    pub provided_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// An assistance record with its notes, for callers holding an identity grant.
#[derive(Serialize, ToSchema)]
pub struct AssistanceWithNotes {
    #[serde(flatten)]
    pub record: Assistance,
    /// Always present in this view, `null` when there are none: its presence is what tells this
    /// view from the one without notes.
    #[schema(required = true)]
    pub notes: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum AssistanceView {
    WithNotes(AssistanceWithNotes),
    WithoutNotes(Assistance),
}

impl AssistanceView {
    pub fn without_notes(row: &AssistanceRow) -> AssistanceView {
        AssistanceView::WithoutNotes(Assistance::from(row))
    }

    pub fn with_notes(grant: IdentityGrant, row: &AssistanceRow, notes: Option<String>) -> AssistanceView {
        assert_eq!(grant.victim(), row.victim_id, "identity grant used for another victim");
        AssistanceView::WithNotes(AssistanceWithNotes { record: Assistance::from(row), notes })
    }
}

impl From<&AssistanceRow> for Assistance {
    fn from(r: &AssistanceRow) -> Assistance {
        Assistance {
            id: r.id,
            victim_id: r.victim_id,
            kind: r.kind,
            provided_on: r.provided_on,
            provided_by: r.provided_by,
            created_at: r.created_at,
        }
    }
}
