//! Subject access: everything Haven holds about one person, in one document, for the caseworkers
//! who may see their identity (`GET /victims/{id}/subject-access`, D113). It is how an
//! organisation answers a person who asks what it keeps about them.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::access::{self, Visible};
use super::closure::Closure;
use super::consent::{self, ConsentEvent};
use super::model::{CaseFile, IdentityPart, VictimView};
use crate::assistance::{AssistanceRow, AssistanceView};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{assistance_records, referrals, support_plan_goals, tasks, transfers};
use crate::domain::Role;
use crate::domain::policy::{self, Relation};
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestContext;
use crate::privacy::crypto::Purpose;
use crate::privacy::identity::Identity;
use crate::privacy::redaction::{IdentityGrant, NotesPart};
use crate::privacy::staff::StaffSight;
use crate::privacy::vault::Opens;
use crate::referrals::external::ExternalReferral;
use crate::referrals::{ReasonPart, ReferralRow, ReferralView};
use crate::state::AppState;
use crate::support_plan::{GoalRow, SupportGoal, SupportGoalView};
use crate::tasks::{Task, TaskRow, TaskView};
use crate::transfers::{Transfer, TransferRow};

/// One read of the person's identity or of identity-grade text about them.
#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct IdentityRead {
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub at: DateTime<Utc>,
    /// The account that read it; `null` for a reader of another organisation (its organisation and
    /// role are given).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub user_id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub role: Option<Role>,
    /// The reader's organisation.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub organization_id: Option<Uuid>,
    /// What was read: `identity`, `assistance_notes`, `referral_reason`, `task_notes`,
    /// `support_plan_goals` or `subject_access`.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub what: String,
}

/// A case file as a transfer handed it over, kept for the organisation that handed it over.
#[derive(Serialize, ToSchema)]
pub struct HandedOver {
    pub transfer_id: Uuid,
    /// The organisation that handed it over and reads this copy.
    pub read_by: Uuid,
    pub case_file: CaseFile,
}

/// Everything held about one person.
#[derive(Serialize, ToSchema)]
pub struct SubjectAccess {
    pub generated_at: DateTime<Utc>,
    /// The case file with the identity.
    pub case_file: VictimView,
    pub assistance: Vec<AssistanceView>,
    /// Referrals to other organisations on Haven, with their reasons.
    pub referrals: Vec<ReferralView>,
    /// Referrals to providers outside Haven.
    pub external_referrals: Vec<ExternalReferral>,
    pub tasks: Vec<TaskView>,
    pub support_plan: Vec<SupportGoalView>,
    pub closures: Vec<Closure>,
    pub transfers: Vec<Transfer>,
    /// The case file as each accepted transfer handed it over, which the organisation that handed
    /// it over still reads (D166), oldest first.
    pub handed_over: Vec<HandedOver>,
    /// Every consent given or withdrawn, oldest first.
    pub consent_history: Vec<ConsentEvent>,
    /// Who read the identity, or text about the person, and when (oldest first).
    pub identity_reads: Vec<IdentityRead>,
}

/// Everything Haven holds about a person (caseworkers of the owning organisation who may see the
/// identity; of a restricted case, its assigned caseworkers).
///
/// The case file with the identity, assistance, referrals (within and outside Haven), tasks, the
/// support plan, closures, transfers and the case files they handed over (which the organisations
/// that handed them over still read), the consent history, and who read the identity and when. A
/// receiving organisation answers its own subject-access requests from its own records: 403. The
/// export is audited as one read of everything in it.
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Everything held about the person", body = SubjectAccess),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/victims/{id}/subject-access")]
pub async fn subject_access(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let document = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let Visible { row, sight, relation, .. } =
                access::load_visible(&state, conn, &ctx, &principal, id.into_inner()).await?;
            let grant = match (relation, sight.grant()) {
                (Relation::None, Some(grant)) if row.organization_id == principal.organization_id => grant,
                _ => return Err(ApiError::Forbidden),
            };
            // Recorded first, so the export lists itself among the reads.
            let event =
                Event::new(AuditAction::SubjectAccess, AuditOutcome::Success).by(&principal).target("victim", row.id);
            audit::record(conn, &ctx, event).await?;
            gather(&state, conn, &principal, grant, &row).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(document))
}

async fn gather(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    grant: IdentityGrant,
    row: &super::model::VictimRow,
) -> ApiResult<SubjectAccess> {
    let victim = row.id;
    let keys = state.vault.opener(victim).await?;
    let identity = match super::store::sealed_identity(conn, victim).await? {
        Some(sealed) => access::open_identity(&keys, victim, &sealed)?,
        None => Identity::default(),
    };
    let case_file = VictimView::disclosed(grant, CaseFile::from(row), IdentityPart { identity });

    let rows: Vec<AssistanceRow> = assistance_records::table
        .filter(assistance_records::victim_id.eq(victim))
        .order(assistance_records::id.asc())
        .select(AssistanceRow::as_select())
        .load(conn)
        .await?;
    let mut assistance = Vec::with_capacity(rows.len());
    for r in &rows {
        let notes =
            keys.open_text(Purpose::AssistanceNotes, r.id, (&r.notes_key_id, &r.notes_nonce, &r.notes_ciphertext))?;
        assistance.push(AssistanceView::disclosed(grant, r.into(), NotesPart { notes }));
    }

    let rows: Vec<ReferralRow> = referrals::table
        .filter(referrals::victim_id.eq(victim))
        .order(referrals::id.asc())
        .select(ReferralRow::as_select())
        .load(conn)
        .await?;
    let mut referral_views = Vec::with_capacity(rows.len());
    for r in &rows {
        let reason =
            keys.open_text(Purpose::ReferralReason, r.id, (&r.reason_key_id, &r.reason_nonce, &r.reason_ciphertext))?;
        referral_views.push(ReferralView::disclosed(grant, r.into(), ReasonPart { reason }));
    }

    let rows: Vec<TaskRow> = tasks::table
        .filter(tasks::victim_id.eq(victim))
        .order(tasks::id.asc())
        .select(TaskRow::as_select())
        .load(conn)
        .await?;
    let today = crate::tasks::today();
    let staff = StaffSight::of(conn, principal, rows.iter().flat_map(Task::staff)).await?;
    let mut task_views = Vec::with_capacity(rows.len());
    for r in &rows {
        let notes = keys.open_text(Purpose::TaskNotes, r.id, (&r.notes_key_id, &r.notes_nonce, &r.notes_ciphertext))?;
        task_views.push(TaskView::disclosed(grant, Task::of(r, today, &staff), NotesPart { notes }));
    }

    let rows: Vec<GoalRow> = support_plan_goals::table
        .filter(support_plan_goals::victim_id.eq(victim))
        .order(support_plan_goals::id.asc())
        .select(GoalRow::as_select())
        .load(conn)
        .await?;
    let staff = StaffSight::of(conn, principal, rows.iter().flat_map(SupportGoal::staff)).await?;
    let mut support_plan = Vec::with_capacity(rows.len());
    for r in &rows {
        let (text, _) = crate::support_plan::routes::open(&keys, r)?;
        support_plan.push(SupportGoalView::disclosed(grant, SupportGoal::of(r, &staff), text));
    }

    let closures = super::closure::history(conn, principal, victim, None).await?;
    let transfer_rows: Vec<TransferRow> = transfers::table
        .filter(transfers::victim_id.eq(victim))
        .order(transfers::id.asc())
        .select(TransferRow::as_select())
        .load(conn)
        .await?;
    let staff = StaffSight::of(conn, principal, transfer_rows.iter().flat_map(Transfer::staff)).await?;
    let transfers = transfer_rows.into_iter().map(|r| Transfer::of(r, &staff)).collect();
    let external_referrals = crate::referrals::external::for_victim(conn, victim, None).await?;
    let external_referrals = ExternalReferral::views(conn, principal, &external_referrals).await?;
    let consent_history = consent::history(conn, principal, victim, None).await?;
    let handed_over = super::store::handed_over(conn, victim)
        .await?
        .into_iter()
        .map(|(transfer_id, read_by, row)| HandedOver { transfer_id, read_by, case_file: CaseFile::from(&row) })
        .collect();
    let mut identity_reads: Vec<IdentityRead> = diesel::sql_query(include_str!("identity_reads.sql"))
        .bind::<diesel::sql_types::Uuid, _>(victim)
        .load(conn)
        .await?;
    let staff = StaffSight::of(conn, principal, identity_reads.iter().filter_map(|r| r.user_id)).await?;
    identity_reads.iter_mut().for_each(|r| r.user_id = staff.show_some(r.user_id));
    Ok(SubjectAccess {
        generated_at: Utc::now(),
        case_file,
        assistance,
        referrals: referral_views,
        external_referrals,
        tasks: task_views,
        support_plan,
        closures,
        transfers,
        handed_over,
        consent_history,
        identity_reads,
    })
}
