//! A case's support plan, as HTCDS v2.0 records it (`spl_*`): goals or planned services, each of a
//! type (`spl_Type`), with objectives and an action plan (identity-grade text, sealed as one
//! document and shown only to caseworkers entitled to the identity), a planned and an actual end
//! date, and a status. Seen by whoever sees the case, written by whoever may write it.

pub mod routes;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::support_plan_goals;
use crate::domain::case_vocab::{GoalStatus, SupportKind};
use crate::privacy::redaction::{Gated, View};
use crate::privacy::staff::StaffSight;

/// A goal of the plan as a client records it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalInput {
    /// Client-chosen id; repeating a create with the same id and body returns the goal.
    #[serde(default)]
    pub id: Option<Uuid>,
    pub kind: SupportKind,
    /// `planned` when absent.
    #[serde(default)]
    pub status: Option<GoalStatus>,
    pub planned_end_on: NaiveDate,
    /// When it ended (not in the future).
    #[serde(default)]
    pub actual_end_on: Option<NaiveDate>,
    /// What the goal is for. Identity-grade: encrypted, shown only to caseworkers who may see
    /// the identity.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub objectives: Option<String>,
    /// The actions that reach it. Identity-grade, like `objectives`.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub action_plan: Option<String>,
}

/// Changes to a goal; at least one field. `null` removes a date or a text.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct GoalPatch {
    #[serde(default)]
    #[schema(value_type = SupportKind)]
    pub kind: Option<SupportKind>,
    #[serde(default)]
    #[schema(value_type = GoalStatus)]
    pub status: Option<GoalStatus>,
    #[serde(default)]
    #[schema(value_type = NaiveDate)]
    pub planned_end_on: Option<NaiveDate>,
    /// When it ended (not in the future); `null` removes it.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<NaiveDate>)]
    pub actual_end_on: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub objectives: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub action_plan: Option<Option<String>>,
}

// A goal's identity-grade text (HTCDS `spl_Objectives`, `spl_ActionPlan`), sealed as one document
// (no doc comment: it would become a schema description).
#[derive(Default, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlanText {
    /// What the goal is for. Identity-grade: encrypted, shown only to caseworkers who may see the
    /// identity; always present in that view (`null` when empty).
    #[serde(default)]
    #[schema(max_length = 5000, required = true)]
    pub objectives: Option<String>,
    /// The actions that reach it. Identity-grade, like `objectives`.
    #[serde(default)]
    #[schema(max_length = 5000, required = true)]
    pub action_plan: Option<String>,
}

/// Identity-grade, as `Identity` is: a debug print never shows it.
impl std::fmt::Debug for PlanText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanText(<redacted>)")
    }
}

impl PlanText {
    pub fn is_empty(&self) -> bool {
        self.objectives.is_none() && self.action_plan.is_none()
    }
}

/// A new goal, created once however often the client retries (`idempotency`).
#[derive(Insertable)]
#[diesel(table_name = support_plan_goals)]
pub struct NewGoal {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub organization_id: Uuid,
    pub kind: SupportKind,
    pub status: GoalStatus,
    pub planned_end_on: NaiveDate,
    pub actual_end_on: Option<NaiveDate>,
    pub text_key_id: Option<String>,
    pub text_nonce: Option<Vec<u8>>,
    pub text_ciphertext: Option<Vec<u8>>,
    pub create_digest: Vec<u8>,
    pub created_by: Uuid,
    pub updated_by: Uuid,
}

crate::create_once_by_id!(NewGoal => GoalRow, support_plan_goals);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = support_plan_goals)]
pub struct GoalRow {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub organization_id: Uuid,
    pub kind: SupportKind,
    pub status: GoalStatus,
    pub planned_end_on: NaiveDate,
    pub actual_end_on: Option<NaiveDate>,
    pub text_key_id: Option<String>,
    pub text_nonce: Option<Vec<u8>>,
    pub text_ciphertext: Option<Vec<u8>>,
    pub version: i32,
    pub create_digest: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub created_by: Uuid,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Uuid,
}

/// A goal of a support plan without its text.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupportGoal {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub kind: SupportKind,
    pub status: GoalStatus,
    pub planned_end_on: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_end_on: Option<NaiveDate>,
    /// The goal's version, also its `ETag` (send it as `If-Match` to change the goal).
    pub version: i32,
    pub created_at: DateTime<Utc>,
    /// Who added it; absent for other organisations' callers but host auditors (who works a case is
    /// its organisation's to know).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<Uuid>,
    /// The last change (for client sync). An erasure of its text does not move it: the
    /// erasure's tombstone (`GET /changes`) tells clients, and a change sent with the version
    /// before it is refused (412) until the record is fetched again.
    pub updated_at: DateTime<Utc>,
}

impl Gated for SupportGoal {
    type Part = PlanText;

    const VIEW: &'static str = "SupportGoalView";
    const VIEW_DESCRIPTION: &'static str = "A support-plan goal as one caller may see it: with its objectives and action plan (caseworkers entitled to the identity) or without.";
    const DISCLOSED: &'static str = "SupportGoalWithText";
    const DISCLOSED_DESCRIPTION: &'static str =
        "A support-plan goal with its objectives and action plan, for callers holding an identity grant.";

    fn victim_id(&self) -> Uuid {
        self.victim_id
    }
}

/// A goal as one caller may see it.
pub type SupportGoalView = View<SupportGoal>;

impl SupportGoal {
    /// The staff a goal names, for the `StaffSight` its view is built with.
    pub fn staff(r: &GoalRow) -> [Uuid; 1] {
        [r.created_by]
    }

    pub fn of(r: &GoalRow, staff: &StaffSight) -> SupportGoal {
        SupportGoal {
            id: r.id,
            victim_id: r.victim_id,
            kind: r.kind,
            status: r.status,
            planned_end_on: r.planned_end_on,
            actual_end_on: r.actual_end_on,
            version: r.version,
            created_at: r.created_at,
            created_by: staff.show(r.created_by),
            updated_at: r.updated_at,
        }
    }
}
