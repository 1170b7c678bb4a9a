//! Append-only audit events (the database refuses UPDATE, DELETE and TRUNCATE on the table).
//! Events carry ids, codes and counts: never an identity value, never a password or an email
//! someone typed.

pub mod routes;

use diesel::prelude::*;
use diesel::sql_types::{Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::fixed::{Fixed, fixed};
use crate::domain::Role;
use crate::extract::RequestContext;
use crate::text_enum;

text_enum! {
    /// What happened.
    pub enum AuditAction {
        LoginSucceeded => "auth.login",
        LoginFailed => "auth.login_failed",
        Logout => "auth.logout",
        RefreshReused => "auth.refresh_reused",
        OrganizationCreated => "organization.create",
        OrganizationUpdated => "organization.update",
        UserCreated => "user.create",
        UserUpdated => "user.update",
        UserRoleChanged => "user.role_change",
        UserDisabled => "user.disable",
        UserEnabled => "user.enable",
        /// A reset (enrolment) token was issued; the password is void until the person sets a new
        /// one.
        UserPasswordReset => "user.password_reset",
        /// The person redeemed their enrolment or reset token and set their own password.
        EnrolmentRedeemed => "user.enrolment_redeem",
        PasswordChanged => "user.password_change",
        SecondFactorEnrolled => "user.second_factor_enrol",
        SecondFactorReset => "user.second_factor_reset",
        SecondFactorPolicySet => "organization.second_factor_policy",
        GrantRequested => "access_grant.request",
        GrantApproved => "access_grant.approve",
        GrantRefused => "access_grant.refuse",
        GrantWithdrawn => "access_grant.withdraw",
        AccessDenied => "access.denied",
        VictimCreated => "victim.create",
        VictimUpdated => "victim.update",
        /// Who works a case changed (its assigned caseworkers, its restriction).
        VictimAssigned => "victim.assign",
        VictimClosed => "victim.close",
        VictimReopened => "victim.reopen",
        /// A person's identity and identity-grade texts were erased (by request or schedule).
        VictimErased => "victim.erase",
        LegalHoldPlaced => "victim.legal_hold_place",
        LegalHoldLifted => "victim.legal_hold_lift",
        /// An organisation's retention schedule changed.
        RetentionSet => "organization.retention",
        IdentityRead => "victim.identity_read",
        /// Everything held about a person was exported for them (a read of all of it).
        SubjectAccess => "victim.subject_access",
        /// An organisation's cases were exported (with or without identities).
        CasesExported => "cases.export",
        /// Cases were imported from a file (or a dry run checked one).
        CasesImported => "cases.import",
        /// The organisation's CTDC contribution file was produced.
        CtdcExported => "cases.ctdc_export",
        VictimSearched => "victim.search",
        AssistanceCreated => "assistance.create",
        TaskCreated => "task.create",
        TaskUpdated => "task.update",
        SupportGoalCreated => "support_plan.create",
        SupportGoalUpdated => "support_plan.update",
        ReferralCreated => "referral.create",
        ReferralAccepted => "referral.accept",
        ReferralDeclined => "referral.decline",
        ReferralCompleted => "referral.complete",
        ReferralCancelled => "referral.cancel",
        ExternalReferralCreated => "external_referral.create",
        ExternalReferralUpdated => "external_referral.update",
        TransferCreated => "transfer.create",
        TransferAccepted => "transfer.accept",
        TransferDeclined => "transfer.decline",
        TransferCancelled => "transfer.cancel",
        WebhookCreated => "webhook.create",
        WebhookUpdated => "webhook.update",
        WebhookDeleted => "webhook.delete",
        ReportRun => "report.run",
        ReportAllowanceSet => "report.allowance_set",
    }
}

text_enum! {
    /// How it ended.
    pub enum AuditOutcome {
        Success => "success",
        Failure => "failure",
        Denied => "denied",
    }
}

/// One event to record. Build it with [`Event::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct Event {
    pub organization_id: Option<Uuid>,
    pub actor: Option<(Uuid, Role)>,
    pub action: AuditAction,
    pub target: Option<(&'static str, Uuid)>,
    pub outcome: AuditOutcome,
    pub details: serde_json::Value,
}

impl Event {
    pub fn new(action: AuditAction, outcome: AuditOutcome) -> Event {
        Event { organization_id: None, actor: None, action, target: None, outcome, details: serde_json::json!({}) }
    }

    /// Performed by `p`, filed in `p`'s organisation's log.
    pub fn by(mut self, p: &Principal) -> Event {
        self.actor = Some((p.user_id, p.role));
        self.organization_id = Some(p.organization_id);
        self
    }

    pub fn actor(mut self, user: Uuid, role: Role) -> Event {
        self.actor = Some((user, role));
        self
    }

    /// Filed in this organisation's log.
    pub fn in_org(mut self, org: Uuid) -> Event {
        self.organization_id = Some(org);
        self
    }

    pub fn target(mut self, kind: &'static str, id: Uuid) -> Event {
        self.target = Some((kind, id));
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Event {
        self.details = details;
        self
    }
}

/// The columns of an audit row, in the order [`bind_all`] gives their values: for statements that
/// write events beside other work (`victims::store::sealed_identity_recorded`).
macro_rules! audit_columns {
    () => {
        "organization_id, actor_user_id, actor_role, action, target_type, target_id, outcome, request_id, \
         client_address, details"
    };
}
pub(crate) use audit_columns;

/// Every column is bound (NULL rather than DEFAULT), so the statement text never changes and the
/// connection prepares it once: diesel's insert of a struct with `Option` fields writes DEFAULT
/// for a `None`, which makes it uncacheable, and this is the most frequent write of the service.
const INSERT_ONE: &str =
    concat!("INSERT INTO audit_events (", audit_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
const INSERT_TWO: &str = concat!(
    "INSERT INTO audit_events (",
    audit_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10), ($11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
);

/// Writes the event on `conn`; call it inside the transaction of the action it records, so the
/// action fails if its audit record cannot be written.
pub async fn record(conn: &mut impl crate::db::Runs, ctx: &RequestContext, event: Event) -> QueryResult<()> {
    bind(fixed(INSERT_ONE), ctx, event).execute(conn).await?;
    Ok(())
}

/// Records a read of identity-grade data (an identity, notes, a referral's reason) belonging to
/// `owner`'s organisation, as [`read_events`] names it. One statement, both or none; the data is
/// returned only after it succeeds.
pub async fn record_read(
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    event: Event,
    owner: Uuid,
) -> QueryResult<()> {
    record_all(conn, ctx, &read_events(event, owner)).await
}

/// The events of a read of `owner`'s identity-grade data: one in the reader's log (the event's
/// organisation) and, when the reader is from another organisation, one in the owner's too, so
/// its log shows which organisation outside it read the record (who, that organisation's log
/// says: `GET /audit-events` names only the caller's own people, D165). One or two, never more.
pub fn read_events(event: Event, owner: Uuid) -> Vec<Event> {
    match event.organization_id == Some(owner) {
        true => vec![event],
        false => vec![event.clone(), event.in_org(owner)],
    }
}

/// Writes several events in one statement: all of them or none. A read that must not happen
/// unrecorded (an identity) returns its data only after this succeeds, which needs no transaction.
pub async fn record_all(conn: &mut AsyncPgConnection, ctx: &RequestContext, events: &[Event]) -> QueryResult<()> {
    match events {
        [] => Ok(()),
        [one] => record(conn, ctx, one.clone()).await,
        [_, _] => {
            bind_all(fixed(INSERT_TWO), ctx, events).execute(conn).await?;
            Ok(())
        }
        more => {
            let more = more.to_vec();
            conn.transaction(async |conn| {
                for event in more {
                    record(conn, ctx, event).await?;
                }
                Ok(())
            })
            .await
        }
    }
}

/// The values of `events`, ten per event in [`audit_columns`]' order, bound after those already on
/// `statement`.
pub(crate) fn bind_all(statement: Fixed, ctx: &RequestContext, events: &[Event]) -> Fixed {
    events.iter().fold(statement, |statement, event| bind(statement, ctx, event.clone()))
}

/// The ten values of one event row, in `INSERT_ONE`'s column order.
fn bind(statement: Fixed, ctx: &RequestContext, event: Event) -> Fixed {
    statement
        .bind::<Nullable<SqlUuid>, _>(event.organization_id)
        .bind::<Nullable<SqlUuid>, _>(event.actor.map(|a| a.0))
        .bind::<Nullable<Text>, _>(event.actor.map(|a| a.1))
        .bind::<Text, _>(event.action)
        .bind::<Nullable<Text>, _>(event.target.map(|t| t.0))
        .bind::<Nullable<SqlUuid>, _>(event.target.map(|t| t.1))
        .bind::<Text, _>(event.outcome)
        .bind::<Nullable<Text>, _>(ctx.request_id.clone())
        .bind::<Nullable<Text>, _>(ctx.client_address.map(|a| a.to_string()))
        .bind::<Jsonb, _>(event.details)
}
