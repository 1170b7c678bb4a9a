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
use crate::privacy::redaction::{Gated, NotesPart, View};

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

/// A new assistance record, created once however often the client retries (`idempotency`).
#[derive(Insertable)]
#[diesel(table_name = assistance_records)]
pub struct NewAssistance {
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
    pub created_by: Uuid,
}

crate::create_once_by_id!(NewAssistance => AssistanceRow, assistance_records);

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

impl Gated for Assistance {
    type Part = NotesPart;

    const VIEW: &'static str = "AssistanceView";
    const VIEW_DESCRIPTION: &'static str =
        "An assistance record as one caller may see it: with notes (caseworkers entitled to the identity) or without.";
    const DISCLOSED: &'static str = "AssistanceWithNotes";
    const DISCLOSED_DESCRIPTION: &'static str =
        "An assistance record with its notes, for callers holding an identity grant.";

    fn victim_id(&self) -> Uuid {
        self.victim_id
    }
}

/// An assistance record as one caller may see it.
pub type AssistanceView = View<Assistance>;

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
