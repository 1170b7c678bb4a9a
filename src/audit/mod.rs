//! Append-only audit events (the database refuses UPDATE, DELETE and TRUNCATE on the table).
//! Events carry ids, codes and counts: never an identity value, never a password or an email
//! someone typed.

pub mod routes;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::schema::audit_events;
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
        /// A reset (enrolment) token was issued; the password is void until the person sets a new one.
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
        IdentityRead => "victim.identity_read",
        VictimSearched => "victim.search",
        AssistanceCreated => "assistance.create",
        ReferralCreated => "referral.create",
        ReferralAccepted => "referral.accept",
        ReferralDeclined => "referral.decline",
        ReferralCompleted => "referral.complete",
        ReferralCancelled => "referral.cancel",
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
        Event {
            organization_id: None,
            actor: None,
            action,
            target: None,
            outcome,
            details: serde_json::json!({}),
        }
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

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct NewAuditEvent<'a> {
    organization_id: Option<Uuid>,
    actor_user_id: Option<Uuid>,
    actor_role: Option<Role>,
    action: AuditAction,
    target_type: Option<&'a str>,
    target_id: Option<Uuid>,
    outcome: AuditOutcome,
    request_id: Option<&'a str>,
    client_address: Option<String>,
    details: &'a serde_json::Value,
}

/// Writes the event on `conn`; call it inside the transaction of the action it records, so the
/// action fails if its audit record cannot be written.
pub async fn record(conn: &mut AsyncPgConnection, ctx: &RequestContext, event: Event) -> QueryResult<()> {
    let row = NewAuditEvent {
        organization_id: event.organization_id,
        actor_user_id: event.actor.map(|a| a.0),
        actor_role: event.actor.map(|a| a.1),
        action: event.action,
        target_type: event.target.map(|t| t.0),
        target_id: event.target.map(|t| t.1),
        outcome: event.outcome,
        request_id: ctx.request_id.as_deref(),
        client_address: ctx.client_address.map(|a| a.to_string()),
        details: &event.details,
    };
    diesel::insert_into(audit_events::table).values(row).execute(conn).await?;
    Ok(())
}
