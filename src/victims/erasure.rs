//! Erasure: a person's identity and every identity-grade text about them (assistance notes,
//! referral reasons, task notes, support-plan texts) destroyed for good, in every copy of the
//! database, by destroying their data key in the key vault (`privacy::vault`, D116). What remains
//! is an identity-free case file, which counts in statistics only while consent to anonymised
//! statistics stands, as any other. `POST /victims/{id}/erase`, and the retention schedule.

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::access::{self, Visible};
use super::custody;
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::changes::{self, Forget, LeaveReason};
use crate::db::schema::{assistance_records, referrals, support_plan_goals, tasks, victim_identities, victims};
use crate::domain::policy;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext};
use crate::privacy::vault::Vault;
use crate::state::AppState;

crate::text_enum! {
    /// Why a person's identity is erased.
    pub enum ErasureReason {
        /// The person asked for it (their right to erasure).
        DataSubjectRequest => "data_subject_request",
        /// The person withdrew their consent to the organisation holding it.
        ConsentWithdrawn => "consent_withdrawn",
        /// The organisation no longer needs it.
        NoLongerNeeded => "no_longer_needed",
        /// The organisation's retention schedule (set by the schedule, not by a request).
        RetentionSchedule => "retention_schedule",
    }
}

crate::text_enum! {
    /// Why a person's identity is erased on request.
    pub enum ErasureRequest {
        DataSubjectRequest => "data_subject_request",
        ConsentWithdrawn => "consent_withdrawn",
        NoLongerNeeded => "no_longer_needed",
    }
}

impl From<ErasureRequest> for ErasureReason {
    fn from(r: ErasureRequest) -> ErasureReason {
        match r {
            ErasureRequest::DataSubjectRequest => ErasureReason::DataSubjectRequest,
            ErasureRequest::ConsentWithdrawn => ErasureReason::ConsentWithdrawn,
            ErasureRequest::NoLongerNeeded => ErasureReason::NoLongerNeeded,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseInput {
    pub reason: ErasureRequest,
}

/// What an erasure destroyed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Erasure {
    pub victim_id: Uuid,
    pub erased_at: DateTime<Utc>,
    pub reason: ErasureReason,
    /// Whether an identity was held.
    pub identity: bool,
    pub assistance_notes: usize,
    pub referral_reasons: usize,
    pub task_notes: usize,
    pub support_plan_texts: usize,
}

/// Nulls one sealed text column family of a victim's rows and replaces their create digests;
/// counts the rows that held a text. Given the table's version column (a record a client may
/// patch), those rows' versions move on first, so an update that read a text before the erasure
/// (and would write it back) fails its If-Match. Their `updated_at` stays (D169): clients that
/// held the texts are told to forget them (`changes`, `identity_erased`), and a record's last write
/// is what a former owner's horizon and a past party's sync go by, which an erasure by the case's
/// owner now is not to move.
macro_rules! erase_texts {
    ($conn:expr, $table:ident, $victim:expr, $digest:expr, $key:ident, $nonce:ident, $cipher:ident $(, $version:ident)?) => {{
        let mine = $table::table.filter($table::victim_id.eq($victim));
        let held: i64 = mine.filter($table::$key.is_not_null()).count().get_result($conn).await?;
        $(
            diesel::update(mine.filter($table::$key.is_not_null()))
                .set($table::$version.eq($table::$version + 1))
                .execute($conn)
                .await?;
        )?
        diesel::update(mine)
            .set((
                $table::$key.eq(None::<String>),
                $table::$nonce.eq(None::<Vec<u8>>),
                $table::$cipher.eq(None::<Vec<u8>>),
                $table::create_digest.eq(&$digest),
            ))
            .execute($conn)
            .await?;
        held as usize
    }};
}

/// Erases one case's identity-grade data on `conn`, in the caller's transaction, after locking
/// the case. Refused (409) while a legal hold stands.
///
/// The data key goes first and under the case's lock: a write that sealed under it before the
/// lock (a note added a moment ago) is unreadable from then on, and one after it makes a new key.
/// If the transaction then fails, the values it meant to delete are already unreadable, and a
/// retry deletes them.
pub async fn erase_locked(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
    victim: Uuid,
    reason: ErasureReason,
) -> ApiResult<Erasure> {
    let org: Uuid = victims::table.find(victim).select(victims::organization_id).for_update().first(conn).await?;
    if crate::retention::routes::held(conn, victim).await? {
        return Err(ApiError::Conflict("A legal hold stands on this case: lift it before erasing.".into()));
    }
    vault.destroy(victim).await?;
    let identity = diesel::delete(victim_identities::table.find(victim)).execute(conn).await? == 1;
    // The create digests are keyed over bodies that held the texts: replaced by random bytes.
    let digest = rand::random::<[u8; 32]>().to_vec();
    let assistance_notes =
        erase_texts!(conn, assistance_records, victim, digest, notes_key_id, notes_nonce, notes_ciphertext);
    let referral_reasons =
        erase_texts!(conn, referrals, victim, digest, reason_key_id, reason_nonce, reason_ciphertext);
    let task_notes = erase_texts!(conn, tasks, victim, digest, notes_key_id, notes_nonce, notes_ciphertext, version);
    let support_plan_texts =
        erase_texts!(conn, support_plan_goals, victim, digest, text_key_id, text_nonce, text_ciphertext, version);
    // The case's create digest too, so a retry of that create is a conflict rather than an answer.
    let erased_at: DateTime<Utc> = diesel::update(victims::table.find(victim))
        .set((
            victims::erased_at.eq(crate::db::now_nullable()),
            victims::create_digest.eq(&digest),
            victims::version.eq(victims::version + 1),
            victims::updated_at.eq(diesel::dsl::now),
        ))
        .returning(victims::updated_at)
        .get_result(conn)
        .await?;
    // Every client holding a copy, here and at receivers, deletes it.
    changes::for_holders(conn, org, victim, Forget::Identity, LeaveReason::IdentityErased).await?;
    Ok(Erasure {
        victim_id: victim,
        erased_at,
        reason,
        identity,
        assistance_notes,
        referral_reasons,
        task_notes,
        support_plan_texts,
    })
}

/// Whether `victim`'s identity was erased and the case has not been reopened since. Call under the
/// case's lock. Such a case stays a de-identified record: no identity is recorded on it again (an
/// old export imported again, a patch), since the retention job erases a case once per closure and
/// would not come back to it (D154). Reopening, a deliberate step with its reason, starts a new
/// period whose closure makes the case due again.
pub async fn erased(conn: &mut AsyncPgConnection, victim: Uuid) -> QueryResult<bool> {
    Ok(erased_among(conn, &[victim]).await?.contains(&victim))
}

/// A case `v` whose identity was erased and which was not reopened since, as SQL.
pub const ERASED: &str = "(v.erased_at IS NOT NULL \
    AND NOT EXISTS (SELECT 1 FROM case_closures c WHERE c.victim_id = v.id AND c.reopened_at > v.erased_at))";

/// Those of `cases` that [`erased`] holds for, in one query (an import's whole file).
pub async fn erased_among(
    conn: &mut AsyncPgConnection,
    cases: &[Uuid],
) -> QueryResult<std::collections::HashSet<Uuid>> {
    #[derive(QueryableByName)]
    struct Erased {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let rows: Vec<Erased> = diesel::sql_query(format!("SELECT v.id FROM victims v WHERE v.id = ANY($1) AND {ERASED}"))
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(cases)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Refuses an identity-grade text (`what`: assistance notes, a referral's reason) for `victim` when
/// it is closed and was erased since its closure: the retention job will not come back to it, so
/// the text would stay for good (D156). Call under the case's lock (or a key-share lock on it).
pub async fn refuse_text_after_erasure(conn: &mut AsyncPgConnection, victim: Uuid, what: &str) -> ApiResult<()> {
    if erased_since_closed(conn, victim).await? {
        return Err(ApiError::Conflict(format!(
            "This case was closed and its identity erased: {what} not recorded on it (leave it out, or reopen the case)."
        )));
    }
    Ok(())
}

async fn erased_since_closed(conn: &mut AsyncPgConnection, victim: Uuid) -> QueryResult<bool> {
    diesel::select(
        diesel::dsl::sql::<diesel::sql_types::Bool>(
            "EXISTS (SELECT 1 FROM victims v LEFT JOIN case_closures c ON c.victim_id = v.id AND c.reopened_at IS NULL \
             WHERE v.id = ",
        )
        .bind::<diesel::sql_types::Uuid, _>(victim)
        // A case closed before closures were recorded is closed at its last change, as the
        // retention job reads it (D176).
        .sql(" AND v.status IN ('closed', 'closed_referred') AND v.erased_at >= coalesce(c.closed_at, v.updated_at))"),
    )
    .get_result(conn)
    .await
}

/// Refused: an identity for a case whose identity was erased.
pub fn refused_on_erased() -> ApiError {
    ApiError::Conflict(
        "This case's identity was erased: no identity is recorded on it again unless it is reopened. A person who comes back gets a new case file."
            .into(),
    )
}

/// The audit record of an erasure: counts only, nothing that was erased.
pub fn event(erasure: &Erasure, org: Uuid) -> Event {
    Event::new(AuditAction::VictimErased, AuditOutcome::Success)
        .in_org(org)
        .target("victim", erasure.victim_id)
        .details(serde_json::json!({
            "reason": erasure.reason,
            "identity": erasure.identity,
            "assistance_notes": erasure.assistance_notes,
            "referral_reasons": erasure.referral_reasons,
            "task_notes": erasure.task_notes,
            "support_plan_texts": erasure.support_plan_texts,
        }))
}

/// Erase a person's identity and every identity-grade text about them (caseworkers of the owning
/// organisation who may write the case).
///
/// Destroys the person's data key, under which their identity, assistance notes, referral reasons,
/// task notes and support-plan texts are sealed, and deletes those values. Backups taken before
/// hold only bytes that nothing can open any more. The identity-free case file stays; it counts in
/// statistics only while consent to anonymised statistics stands. Clients holding a copy are told
/// to forget it (changes feed, `identity_erased`). Irreversible; refused (409) while a legal hold
/// stands. Audited. Erasing again erases what was added since.
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    request_body = EraseInput,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What was erased", body = Erasure),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/victims/{id}/erase")]
pub async fn erase_victim(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<EraseInput>,
) -> ApiResult<HttpResponse> {
    let reason = ErasureReason::from(body.0.reason);
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let Visible { row, custody, .. } =
        access::load_visible(&state, &mut conn, &ctx, &principal, id.into_inner()).await?;
    // Judged before the lock as well (D169), as a close is.
    policy::write_victim(&principal, row.organization_id, custody).require()?;
    let erasure = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let custody = custody::lock(conn, row.id, principal.user_id, row.organization_id).await?;
            policy::write_victim(&principal, row.organization_id, custody).require()?;
            let erasure = erase_locked(conn, &state.vault, row.id, reason).await?;
            audit::record(conn, &ctx, event(&erasure, row.organization_id).by(&principal)).await?;
            Ok(erasure)
        })
        .await?;
    Ok(HttpResponse::Ok().json(erasure))
}
