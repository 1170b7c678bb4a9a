//! The shared victim rules of every handler that touches a victim (case files, assistance,
//! referrals, search): loading a victim the caller may see, on the caller's one connection, and
//! building what they are shown, with every identity read audited.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use diesel_async::pg::TransactionBuilder;
use uuid::Uuid;

use super::model::{CaseFile, IdentityPart, VictimRow, VictimView};
use super::{custody, store};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::domain::Principal;
use crate::domain::case_vocab::CaseStatus;
use crate::domain::policy::{self, Custody, Relation};
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestContext;
use crate::privacy::crypto::Sealed;
use crate::privacy::identity::{self, Identity};
use crate::privacy::redaction::{self, Gated, IdentityGrant, Sight, View};
use crate::privacy::vault::{Opens, WrappedKey};
use crate::state::AppState;

/// A victim the caller may see, what they may see of it, how it is referred to them, and who
/// works it as it concerns them.
pub struct Visible {
    pub row: VictimRow,
    pub sight: Sight,
    pub relation: Relation,
    pub custody: Custody,
    /// For a former owner, when it last handed the case over: what the case's new owners recorded
    /// or changed after that (tasks, goals, assistance, referrals outside Haven, closures, consent)
    /// is theirs, not the former owner's history (D165). `None`: everything the caller's sight
    /// reaches.
    pub until: Option<DateTime<Utc>>,
}

impl Visible {
    /// Whether a record of the case last written at `written` (its `updated_at`, or its creation
    /// for a record never changed) is in the caller's sight; a read of one that is not answers
    /// 404, as an unknown id does. A record the new owner changed is the new owner's: there is no
    /// version of it as it stood at the hand-over to show.
    pub fn holds(&self, written: DateTime<Utc>) -> bool {
        within(written, self.until)
    }
}

/// The one rule of a former owner's horizon: what was written up to its hand-over (`until`) is in
/// its sight; without a hand-over, everything is.
fn within(written: DateTime<Utc>, until: Option<DateTime<Utc>>) -> bool {
    until.is_none_or(|until| written <= until)
}

/// The transaction of a read that decides what the caller may see and then reads it (D157): one
/// `REPEATABLE READ` snapshot, so the identity, notes or plan texts handed on are those the
/// decision saw. Read in statements of their own, a consent withdrawn, a case restricted or a
/// hand-over committed between the decision and the read would let the caller read what was
/// written after it: a new address given once a receiver was no longer to see it.
pub fn one_snapshot(conn: &mut AsyncPgConnection) -> TransactionBuilder<'_, AsyncPgConnection> {
    conn.build_transaction().repeatable_read()
}

/// Whether `conn` is inside a transaction: where an identity is read, the one that decided it may
/// be seen (a snapshot, or a writer's lock on the case).
fn in_a_transaction(conn: &mut AsyncPgConnection) -> bool {
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    matches!(AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth(), Ok(Some(_)))
}

/// Loads a victim and what the caller may see of it, in one query on `conn`. An unknown id and
/// another organisation's hidden record are answered alike and in the same time: the query
/// returns neither, and either refusal is audited off the response path (in a task of its own,
/// which also lets the record of it survive the request). A refusal of an existing record goes to
/// its owner's log, a probe of an unknown id to the deployment's (host auditors), never to the
/// caller's organisation, whose admins could otherwise tell the two apart.
pub async fn load_visible(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    id: Uuid,
) -> ApiResult<Visible> {
    load_probed(state, conn, ctx, principal, id, ("victim", id), None).await
}

/// `load_visible`, with a refusal audited as a probe of `asked` (what the caller asked for), and,
/// when `asked` is a record of the case last written at `written`, refused to a former owner
/// whose sight ended before then (D165) before anything of the case is read.
async fn load_probed(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    id: Uuid,
    asked: (&'static str, Uuid),
    written: Option<DateTime<Utc>>,
) -> ApiResult<Visible> {
    let scope = policy::victim_list_scope(principal)?;
    let refused = |refusal: ApiError| {
        let status = actix_web::ResponseError::status_code(&refusal).as_u16();
        audit_refusal(state, ctx, principal, id, asked, status);
        Err(refusal)
    };
    let found = match store::find_in_scope(conn, id, scope, principal.user_id).await? {
        // A referral gives an organisation's admins and auditors nothing (D172): for them a case
        // referred back to their organisation is still one it handed over.
        Some((row, relation, custody))
            if policy::victim_sight(principal, row.organization_id, relation, custody).is_ok() =>
        {
            Some((row, relation, custody, None))
        }
        // Not the caller's and not referred to them: perhaps a case their organisation transferred.
        // Asked for every id that is neither, so an unknown id and a hidden one still take alike.
        _ => match scope {
            Some(org) => match store::handed_over_by(conn, id, org).await? {
                Some((transfer, until)) if written.is_none_or(|w| within(w, Some(until))) => {
                    store::case_file_kept(conn, transfer)
                        .await?
                        .map(|row| (row, Relation::FormerOwner, Custody::default(), Some(until)))
                }
                // A record the former owner never saw: refused as an unknown one is, after the
                // same queries.
                _ => None,
            },
            None => None,
        },
    };
    let Some((row, relation, custody, until)) = found else {
        return refused(ApiError::NotFound);
    };
    match redaction::sight(principal, row.id, row.organization_id, relation, custody) {
        Ok(sight) => Ok(Visible { row, sight, relation, custody, until }),
        Err(refusal) => refused(refusal),
    }
}

/// A record of a case that a client asks for by its own id: its table, which has `id`,
/// `victim_id` and `updated_at`.
#[derive(Debug, Clone, Copy)]
pub enum CaseRecord {
    Task,
    SupportPlanGoal,
    ExternalReferral,
}

impl CaseRecord {
    /// Its case and last write, in one row whether or not the record exists: a constant text, so
    /// prepared once per connection (`db::fixed`).
    fn written(self) -> &'static str {
        match self {
            CaseRecord::Task => {
                "SELECT r.victim_id, r.updated_at FROM (SELECT 1) AS one LEFT JOIN tasks r ON r.id = $1"
            }
            CaseRecord::SupportPlanGoal => {
                "SELECT r.victim_id, r.updated_at FROM (SELECT 1) AS one LEFT JOIN support_plan_goals r ON r.id = $1"
            }
            CaseRecord::ExternalReferral => {
                "SELECT r.victim_id, r.updated_at FROM (SELECT 1) AS one LEFT JOIN external_referrals r ON r.id = $1"
            }
        }
    }

    /// What an audit event calls it.
    fn kind(self) -> &'static str {
        match self {
            CaseRecord::Task => "task",
            CaseRecord::SupportPlanGoal => "support_plan_goal",
            CaseRecord::ExternalReferral => "external_referral",
        }
    }
}

/// The case of a record asked for by its own id (a task, a goal, a referral outside Haven), and
/// the caller's sight of it. The one read of the record before the sight is decided (its case and
/// last write) answers one row whether or not the record exists; an unknown record then looks its
/// own id up as a case, and a record a former owner may not see (written after its hand-over) is
/// refused before the case file it kept is read. So every 404 takes the same queries and the time
/// of one does not tell which ids exist elsewhere (README, "Roles and what each sees"). Each
/// refusal is audited as a probe of the record: in the deployment's log for an unknown one, in
/// the case owner's for another.
pub async fn load_record_case(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    record: CaseRecord,
    id: Uuid,
) -> ApiResult<Visible> {
    #[derive(diesel::QueryableByName)]
    struct Written {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
        victim_id: Option<Uuid>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
        updated_at: Option<DateTime<Utc>>,
    }
    use diesel_async::RunQueryDsl;
    let written: Written =
        crate::db::fixed::fixed(record.written()).bind::<diesel::sql_types::Uuid, _>(id).get_result(conn).await?;
    let asked = (record.kind(), id);
    match written.victim_id.zip(written.updated_at) {
        Some((victim, at)) => load_probed(state, conn, ctx, principal, victim, asked, Some(at)).await,
        None => load_probed(state, conn, ctx, principal, id, asked, None).await.and(Err(ApiError::NotFound)),
    }
}

thread_local! {
    /// One refusal audit written at a time per HTTP worker, with the worker's own pool (D131): a
    /// flood of probes queues its audit writes (memory only) and leaves the worker's other
    /// connections to requests.
    static REFUSAL_WRITER: std::rc::Rc<tokio::sync::Semaphore> = std::rc::Rc::new(tokio::sync::Semaphore::new(1));
}

/// Records a refused access to `asked` (of `victim`'s case, if it exists) in a task of its own,
/// after the response.
fn audit_refusal(
    state: &AppState,
    ctx: &RequestContext,
    principal: &Principal,
    victim: Uuid,
    asked: (&'static str, Uuid),
    status: u16,
) {
    let (pool, ctx) = (state.pool.clone(), ctx.clone());
    let event = Event::new(AuditAction::AccessDenied, AuditOutcome::Denied)
        .actor(principal.user_id, principal.role)
        .target(asked.0, asked.1)
        .details(serde_json::json!({ "status": status }));
    let writer = REFUSAL_WRITER.with(std::rc::Rc::clone);
    actix_web::rt::spawn(async move {
        let recorded = async {
            let _writer = writer.acquire().await.map_err(|e| e.to_string())?;
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            let event = match store::owner_of(&mut conn, victim).await.map_err(|e| e.to_string())? {
                Some(owner) => event.in_org(owner),
                None => event,
            };
            audit::record(&mut conn, &ctx, event).await.map_err(|e| e.to_string())
        };
        if let Err(error) = recorded.await {
            tracing::error!(%error, "a refused access could not be audited");
        }
    });
}

/// Opens a sealed identity, refusing (500, logged by id) one that fails its integrity check; one
/// whose data key was destroyed (erased) is empty.
pub fn open_identity(opener: &impl Opens, victim: Uuid, sealed: &Sealed) -> ApiResult<Identity> {
    identity::open(opener, victim, sealed).map(Option::unwrap_or_default).map_err(|e| {
        tracing::error!(victim_id = %victim, error = %e, "identity refused: ciphertext failed its integrity check");
        ApiError::Internal(format!("identity of {victim} failed its integrity check"))
    })
}

/// What reading a victim's identity takes besides the case file: the sealed identity, read by the
/// statement that records the read (D136), and the victim's data key, still wrapped, from the
/// vault, fetched together once the caller's sight grants the identity (D133). Never before: a
/// record the caller may not see is neither read nor decoded (D79).
struct IdentityParts {
    sealed: Option<Sealed>,
    key: Option<WrappedKey>,
}

impl IdentityParts {
    async fn fetch(
        state: &AppState,
        conn: &mut AsyncPgConnection,
        ctx: &RequestContext,
        victim: Uuid,
        events: &[Event],
    ) -> ApiResult<IdentityParts> {
        let (sealed, key) =
            tokio::join!(store::sealed_identity_recorded(conn, ctx, victim, events), state.vault.wrapped(victim));
        let sealed = sealed?;
        // Without a stored identity the key is not needed, and the vault's failure does not matter.
        let key = match sealed {
            Some(_) => key?,
            None => None,
        };
        Ok(IdentityParts { sealed, key })
    }
}

/// The view of one victim for a caller with `sight`; reading an identity is audited on `conn`, in
/// the statement that reads it.
pub async fn view_of(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    row: &VictimRow,
    sight: Sight,
) -> ApiResult<VictimView> {
    let case = CaseFile::from(row);
    let Some(grant) = sight.grant() else { return Ok(VictimView::redacted(case)) };
    debug_assert!(in_a_transaction(conn), "an identity is read in the snapshot that decided it (D157)");
    let read = Event::new(AuditAction::IdentityRead, AuditOutcome::Success).by(principal).target("victim", row.id);
    let parts = IdentityParts::fetch(state, conn, ctx, row.id, &audit::read_events(read, row.organization_id)).await?;
    let identity = match parts.sealed {
        Some(sealed) => open_identity(&state.vault.opener_of(row.id, parts.key)?, row.id, &sealed)?,
        None => Identity::default(),
    };
    Ok(VictimView::disclosed(grant, case, IdentityPart { identity }))
}

/// Views for a page of the caller's own organisation's victims; identities for caseworkers, read
/// in one query and audited as one event naming the ids.
pub async fn list_views(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    rows: Vec<VictimRow>,
) -> ApiResult<Vec<VictimView>> {
    // Custody matters only to whoever reaches identities; for anyone else, no query.
    let ids: Vec<Uuid> =
        if policy::reaches_identities(principal.role) { rows.iter().map(|r| r.id).collect() } else { Vec::new() };
    let custody = custody::custody_of(conn, &ids, principal.user_id).await?;
    let grants: Vec<Option<IdentityGrant>> = rows
        .iter()
        .map(|r| redaction::sight(principal, r.id, r.organization_id, Relation::None, custody(r.id)).map(|s| s.grant()))
        .collect::<Result<_, _>>()?;
    let wanted: Vec<Uuid> = rows.iter().zip(&grants).filter(|(_, g)| g.is_some()).map(|(r, _)| r.id).collect();
    debug_assert!(wanted.is_empty() || in_a_transaction(conn), "identities are read in the snapshot that decided them");
    let mut sealed: std::collections::HashMap<Uuid, _> = if wanted.is_empty() {
        Default::default()
    } else {
        store::sealed_identities(conn, &wanted).await?.into_iter().collect()
    };
    let openers = state.vault.openers(&wanted).await?;
    let mut read = Vec::new();
    let mut views = Vec::with_capacity(rows.len());
    for (row, grant) in rows.iter().zip(grants) {
        let case = CaseFile::from(row);
        views.push(match grant {
            None => VictimView::redacted(case),
            Some(grant) => {
                let identity = match sealed.remove(&row.id) {
                    Some(s) => {
                        read.push(row.id);
                        open_identity(&openers.of(row.id), row.id, &s)?
                    }
                    None => Identity::default(),
                };
                VictimView::disclosed(grant, case, IdentityPart { identity })
            }
        });
    }
    if !read.is_empty() {
        let event = Event::new(AuditAction::IdentityRead, AuditOutcome::Success)
            .by(principal)
            .details(serde_json::json!({ "victim_ids": read }));
        // Lists and searches hold the caller's own organisation's victims only.
        audit::record_read(conn, ctx, event, principal.organization_id).await?;
    }
    Ok(views)
}

/// Views of records about victims (tasks, support-plan goals): each with its identity-grade part
/// where the caller holds a grant for its victim. `open` gives a record's part and whether anything
/// was stored in it; the records whose parts were read are audited as one event naming them under
/// `what`, in `owner`'s log and the caller's.
#[allow(clippy::too_many_arguments)]
pub async fn gated_views<T, R: Gated>(
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    owner: Uuid,
    what: &str,
    rows: &[T],
    grants: Vec<Option<IdentityGrant>>,
    record: impl Fn(&T) -> (Uuid, R),
    open: impl Fn(&T) -> ApiResult<(R::Part, bool)>,
) -> ApiResult<Vec<View<R>>> {
    let mut views = Vec::with_capacity(rows.len());
    let mut read = Vec::new();
    for (row, grant) in rows.iter().zip(grants) {
        let (id, r) = record(row);
        views.push(match grant {
            None => View::redacted(r),
            Some(grant) => {
                let (part, stored) = open(row)?;
                if stored {
                    read.push(id);
                }
                View::disclosed(grant, r, part)
            }
        });
    }
    if !read.is_empty() {
        let event = Event::new(AuditAction::IdentityRead, AuditOutcome::Success)
            .by(principal)
            .details(serde_json::json!({ what: read }));
        audit::record_read(conn, ctx, event, owner).await?;
    }
    Ok(views)
}

/// Locks a case for a change to its plan or tasks and judges the write again under the lock (a
/// concurrent hand-over may have restricted it). A closed case's plan and tasks are settled: 409.
/// Returns the custody the write was judged on.
pub async fn lock_open_case(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    victim: Uuid,
    org: Uuid,
) -> ApiResult<Custody> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;

    let custody = custody::lock(conn, victim, principal.user_id, org).await?;
    policy::write_victim(principal, org, custody).require()?;
    let status: CaseStatus =
        crate::db::schema::victims::table.find(victim).select(crate::db::schema::victims::status).first(conn).await?;
    if status.is_closed() {
        return Err(ApiError::Conflict("The case is closed: reopen it to change its plan or tasks.".into()));
    }
    Ok(custody)
}
