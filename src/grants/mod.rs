//! Access grants: the two-person rule for identity access (README, "Roles and what each sees"). A new caseworker, a
//! promotion to caseworker, re-enabling a caseworker and completing a caseworker's reset each wait,
//! as a pending grant, for a second person to approve; until then the account reads no identity.
//! The rules of who may approve are in `domain::policy`; this module stores grants and applies them.

pub mod routes;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::{access_grants, users};
use crate::domain::Role;
use crate::domain::policy::OrgStaff;
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestContext;

crate::text_enum! {
    /// What a grant gives.
    pub enum GrantKind {
        /// A new caseworker account, usable once the person has set their password.
        NewCaseworker => "new_caseworker",
        /// An existing account becomes a caseworker.
        Promotion => "promotion",
        /// A disabled caseworker is enabled again.
        ReEnable => "re_enable",
        /// A caseworker's reset password, usable once the person has set it.
        CredentialReset => "credential_reset",
        /// A caseworker's new or reset second factor, usable once the person has enrolled it.
        SecondFactor => "second_factor",
    }
}

crate::text_enum! {
    pub enum GrantStatus {
        Pending => "pending",
        Approved => "approved",
        /// Refused by a possible approver.
        Refused => "refused",
        /// Withdrawn by the person who requested it.
        Withdrawn => "withdrawn",
    }
}

/// What of a credential an account holds: a password, an active second factor.
pub type Held = (bool, bool);

/// [`Held`], selected beside a grant (or alone, from `users`).
pub fn held() -> (diesel::dsl::IsNotNull<users::password_hash>, users::totp_active) {
    (users::password_hash.is_not_null(), users::totp_active)
}

impl GrantKind {
    /// Whether the person has set what the approver confirms they hold: their password, and for
    /// `second_factor` their factor too. Every approval waits for it: a promotion or a re-enabling
    /// too, or an admin who created an account and kept its unused enrolment token could have it
    /// promoted, approved, and then set its password themselves (D162).
    pub fn credential_set(self, (password, factor): Held) -> bool {
        password && (factor || self != GrantKind::SecondFactor)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = access_grants)]
pub struct Grant {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub kind: GrantKind,
    pub requested_by: Uuid,
    pub requested_at: DateTime<Utc>,
    pub status: GrantStatus,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

/// A grant as the API shows it: ids of the people, never anything about victims.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// The account that gains caseworker access.
    pub user_id: Uuid,
    pub kind: GrantKind,
    pub status: GrantStatus,
    pub requested_by: Uuid,
    pub requested_at: DateTime<Utc>,
    /// Whether the person has set their password (and, for `second_factor`, their factor), as
    /// the account is now: approval waits for it.
    pub credential_set: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl GrantView {
    pub fn new(g: Grant, credential_set: bool) -> GrantView {
        GrantView {
            credential_set,
            id: g.id,
            organization_id: g.organization_id,
            user_id: g.user_id,
            kind: g.kind,
            status: g.status,
            requested_by: g.requested_by,
            requested_at: g.requested_at,
            decided_by: g.decided_by,
            decided_at: g.decided_at,
            reason: g.reason,
        }
    }
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<(Grant, bool)>> {
    let found: Option<(Grant, Held)> = access_grants::table
        .inner_join(users::table)
        .filter(access_grants::id.eq(id))
        .select((Grant::as_select(), held()))
        .first(conn)
        .await
        .optional()?;
    Ok(found.map(|(grant, held)| {
        let set = grant.kind.credential_set(held);
        (grant, set)
    }))
}

pub async fn pending_for(conn: &mut AsyncPgConnection, user: Uuid) -> QueryResult<Option<Grant>> {
    access_grants::table
        .filter(access_grants::user_id.eq(user))
        .filter(access_grants::status.eq(GrantStatus::Pending))
        .select(Grant::as_select())
        .first(conn)
        .await
        .optional()
}

/// Files a pending grant, audited with the requester named. Call inside the transaction of the
/// change that needs it.
pub async fn request(
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    by: &Principal,
    org: Uuid,
    user: Uuid,
    kind: GrantKind,
) -> ApiResult<Grant> {
    let grant = diesel::insert_into(access_grants::table)
        .values((
            access_grants::id.eq(Uuid::now_v7()),
            access_grants::organization_id.eq(org),
            access_grants::user_id.eq(user),
            access_grants::kind.eq(kind),
            access_grants::requested_by.eq(by.user_id),
        ))
        .returning(Grant::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                ApiError::Conflict(
                    "A grant for this account is already waiting for a decision; decide it first.".into(),
                )
            } else {
                e.into()
            }
        })?;
    let event = Event::new(AuditAction::GrantRequested, AuditOutcome::Success)
        .by(by)
        .in_org(org)
        .target("user", user)
        .details(serde_json::json!({ "grant": grant.id, "kind": kind }));
    audit::record(conn, ctx, event).await?;
    Ok(grant)
}

/// Everyone who issued `user`'s credential, that issuer's issuer, and so on.
pub async fn issuer_chain(conn: &mut AsyncPgConnection, user: Uuid) -> QueryResult<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Link {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let links: Vec<Link> =
        diesel::sql_query(include_str!("issuer_chain.sql")).bind::<SqlUuid, _>(user).load(conn).await?;
    Ok(links.into_iter().map(|l| l.id).collect())
}

/// The organisation's admins, as the policy needs them.
pub async fn staff(conn: &mut AsyncPgConnection, org: Uuid) -> QueryResult<OrgStaff> {
    let disabled: Vec<bool> = users::table
        .filter(users::organization_id.eq(org))
        .filter(users::role.eq(Role::Admin))
        .select(users::disabled)
        .load(conn)
        .await?;
    Ok(OrgStaff { admins: disabled.len() as i64, enabled_admins: disabled.iter().filter(|d| !**d).count() as i64 })
}

/// Withdraws whatever grant waits for `user` (a reset or a demotion makes it moot: what it would
/// confirm has changed). A second factor that waited for it is removed, unless `keep_factor` (the
/// factor being confirmed replaces it). Returns the grant, if there was one.
pub async fn withdraw_pending(
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    by: &Principal,
    user: Uuid,
    keep_factor: bool,
) -> ApiResult<Option<Grant>> {
    let Some(grant) = pending_for(conn, user).await? else { return Ok(None) };
    diesel::update(access_grants::table.find(grant.id))
        .set((
            access_grants::status.eq(GrantStatus::Withdrawn),
            access_grants::decided_by.eq(by.user_id),
            access_grants::decided_at.eq(diesel::dsl::now),
            access_grants::reason.eq("superseded by a later change to the account"),
        ))
        .execute(conn)
        .await?;
    let event = Event::new(AuditAction::GrantWithdrawn, AuditOutcome::Success)
        .by(by)
        .in_org(grant.organization_id)
        .target("user", user)
        .details(serde_json::json!({ "grant": grant.id, "kind": grant.kind, "requested_by": grant.requested_by }));
    audit::record(conn, ctx, event).await?;
    if grant.kind == GrantKind::SecondFactor && !keep_factor {
        crate::auth::second_factor_store::remove(conn, user).await?;
    }
    Ok(Some(grant))
}

/// Gives what an approved grant gives; the account's sessions end so its tokens carry the change.
/// The approver has confirmed that the person holds their own credential, so whoever issued it no
/// longer counts as controlling it: the account may itself approve later grants of the issuer's.
/// No enrolment token outlives that confirmation: one not yet redeemed is another credential,
/// confirmed by nobody.
pub(crate) async fn apply(conn: &mut AsyncPgConnection, grant: &Grant) -> QueryResult<()> {
    let target = users::table.find(grant.user_id);
    let bump = (
        users::version.eq(users::version + 1),
        users::updated_at.eq(diesel::dsl::now),
        users::credential_issued_by.eq(None::<Uuid>),
    );
    match grant.kind {
        // A factor's approver confirms in person too; a factor reset names its admin as issuer
        // (so that admin cannot approve), and the confirmation ends that.
        GrantKind::NewCaseworker | GrantKind::CredentialReset | GrantKind::SecondFactor => {
            diesel::update(target).set((users::awaiting_approval.eq(false), bump)).execute(conn).await?;
        }
        GrantKind::Promotion => {
            diesel::update(target).set((users::role.eq(Role::Caseworker), bump)).execute(conn).await?;
            // A factor enrolled as another role was never approved for a caseworker: enrol anew.
            crate::auth::second_factor_store::remove(conn, grant.user_id).await?;
        }
        GrantKind::ReEnable => {
            diesel::update(target).set((users::disabled.eq(false), bump)).execute(conn).await?;
        }
    }
    crate::auth::enrolments::supersede(conn, grant.user_id).await?;
    crate::auth::sessions::revoke_user(conn, grant.user_id).await
}

/// Undoes what waiting for a refused or withdrawn grant held: a credential set for it is void, and
/// so is a token not yet redeemed (the account stays unusable until a new reset is issued and
/// approved).
pub(crate) async fn void(conn: &mut AsyncPgConnection, grant: &Grant) -> QueryResult<()> {
    match grant.kind {
        GrantKind::NewCaseworker | GrantKind::CredentialReset => {
            diesel::update(users::table.find(grant.user_id))
                .set((users::password_hash.eq(None::<String>), users::version.eq(users::version + 1)))
                .execute(conn)
                .await?;
            crate::auth::enrolments::supersede(conn, grant.user_id).await?;
        }
        GrantKind::SecondFactor => crate::auth::second_factor_store::remove(conn, grant.user_id).await?,
        // A token issued with the request (D164) confirms nothing once the request is refused.
        GrantKind::Promotion | GrantKind::ReEnable => crate::auth::enrolments::supersede(conn, grant.user_id).await?,
    }
    Ok(())
}
