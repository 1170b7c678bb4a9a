//! The host organisation and its first admin: `haven bootstrap`, or generated in local mode.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use rand::Rng;

use crate::auth::PasswordHasher;
use crate::db::Pool;
use crate::db::schema::organizations;
use crate::domain::{CountryCode, Email, NewPassword, OrganizationKind, Role};
use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("this deployment is already bootstrapped: a host organisation exists")]
    AlreadyDone,
    #[error("{0}")]
    Invalid(String),
    #[error("database: {0}")]
    Database(String),
}

impl From<ApiError> for BootstrapError {
    fn from(e: ApiError) -> Self {
        BootstrapError::Database(e.to_string())
    }
}

impl From<diesel::result::Error> for BootstrapError {
    fn from(e: diesel::result::Error) -> Self {
        if crate::db::is_unique_violation(&e) {
            BootstrapError::Invalid(
                "an account with this email or an organisation with this name already exists".into(),
            )
        } else {
            BootstrapError::Database(e.to_string())
        }
    }
}

pub async fn host_exists(pool: &Pool) -> Result<bool, BootstrapError> {
    let mut conn = pool.get().await.map_err(|e| BootstrapError::Database(e.to_string()))?;
    let count: i64 = organizations::table
        .filter(organizations::kind.eq(OrganizationKind::Host))
        .count()
        .get_result(&mut conn)
        .await?;
    Ok(count > 0)
}

/// Creates the host organisation and its first admin, in one transaction.
pub async fn bootstrap(
    pool: &Pool,
    hasher: &PasswordHasher,
    org_name: &str,
    country: Option<CountryCode>,
    email: &Email,
    password: &NewPassword,
) -> Result<(), BootstrapError> {
    let name =
        crate::orgs::parse_name(org_name).map_err(|m| BootstrapError::Invalid(format!("organisation name {m}")))?;
    if host_exists(pool).await? {
        return Err(BootstrapError::AlreadyDone);
    }
    let hash = hasher.hash(password.expose()).await?;
    let mut conn = pool.get().await.map_err(|e| BootstrapError::Database(e.to_string()))?;
    let email = email.as_str().to_owned();
    (*conn)
        .transaction::<_, BootstrapError, _>(async move |conn: &mut diesel_async::AsyncPgConnection| {
            let org =
                crate::orgs::insert(conn, &name, OrganizationKind::Host, country.as_ref().map(|c| c.as_str()), false)
                    .await?;
            crate::users::insert(conn, org.id, &email, Role::Admin, crate::users::NewCredential::Password(Some(&hash)))
                .await?;
            Ok(())
        })
        .await
}

/// Adds a host admin who sets their own password at the console: a confirmed credential, so a
/// second person from the start (caseworker access needs one, README "Roles and what each sees"). For operators,
/// who hold the server and its database anyway.
pub async fn add_host_admin(
    pool: &Pool,
    hasher: &PasswordHasher,
    email: &Email,
    password: &NewPassword,
) -> Result<(), BootstrapError> {
    let mut conn = pool.get().await.map_err(|e| BootstrapError::Database(e.to_string()))?;
    let host: Option<uuid::Uuid> = organizations::table
        .filter(organizations::kind.eq(OrganizationKind::Host))
        .select(organizations::id)
        .first(&mut conn)
        .await
        .optional()?;
    let host = host.ok_or_else(|| {
        BootstrapError::Invalid("no host organisation yet: run `haven bootstrap --org NAME --email E` first".into())
    })?;
    let hash = hasher.hash(password.expose()).await?;
    crate::users::insert(
        &mut conn,
        host,
        email.as_str(),
        Role::Admin,
        crate::users::NewCredential::Password(Some(&hash)),
    )
    .await?;
    Ok(())
}

/// A host admin who lost their password (`haven recover-admin`): the password is voided, a lockout
/// lifted, the sessions ended, and a single-use enrolment token issued, in one transaction with
/// its audit event (filed in the host organisation's log, no actor: the command line). Only host
/// admins: every other account is reset by an admin through the API, under the two-person rule.
/// The new credential counts as issued, not confirmed (it names the account itself as its
/// issuer), so the recovered admin cannot be the second person of an access grant: whoever ran
/// the command could otherwise hold two independent-looking admins. An account with an access
/// grant pending is refused: that grant is decided through the API first.
pub async fn recover_host_admin(
    pool: &Pool,
    email: &Email,
    ttl_hours: u64,
) -> Result<crate::auth::enrolments::EnrolmentToken, BootstrapError> {
    use crate::audit::{self, AuditAction, AuditOutcome, Event};
    use crate::auth::enrolments::{self, Purpose};
    use crate::db::schema::users;
    let mut conn = pool.get().await.map_err(|e| BootstrapError::Database(e.to_string()))?;
    let email = email.as_str().to_owned();
    (*conn)
        .transaction::<_, BootstrapError, _>(async move |conn: &mut diesel_async::AsyncPgConnection| {
            // Locked, so a promotion cannot be approved between this check and the reset; for no
            // key update, as every reset, so a logout meanwhile can still name the account (D152).
            let account: Option<(uuid::Uuid, uuid::Uuid, Role)> = users::table
                .filter(users::email.eq(&email))
                .select((users::id, users::organization_id, users::role))
                .for_no_key_update()
                .first(conn)
                .await
                .optional()?;
            let found = match account {
                Some((id, org, role)) => {
                    let kind: OrganizationKind =
                        organizations::table.find(org).select(organizations::kind).first(conn).await?;
                    Some((id, org, role, kind))
                }
                None => None,
            };
            let (id, org) = match found {
                Some((id, org, Role::Admin, OrganizationKind::Host)) => (id, org),
                Some(_) => {
                    return Err(BootstrapError::Invalid(
                        "only host admins are recovered here; an admin of the account's organisation resets the others \
                         (POST /api/v1/users/{id}/reset)"
                            .into(),
                    ));
                }
                None => return Err(BootstrapError::Invalid("no account with this email".into())),
            };
            if crate::grants::pending_for(conn, id).await?.is_some() {
                return Err(BootstrapError::Invalid(
                    "this account has an access grant pending: approve or refuse it through the API first".into(),
                ));
            }
            diesel::update(users::table.find(id).filter(users::role.eq(Role::Admin)))
                .set((
                    users::password_hash.eq(None::<String>),
                    users::failed_logins.eq(0),
                    users::locked_until.eq(None::<chrono::DateTime<chrono::Utc>>),
                    users::credential_issued_by.eq(Some(id)),
                    users::version.eq(users::version + 1),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            crate::auth::sessions::revoke_user(conn, id).await?;
            let token = enrolments::issue(conn, id, Purpose::Reset, id, ttl_hours).await?;
            let event = Event::new(AuditAction::UserPasswordReset, AuditOutcome::Success)
                .in_org(org)
                .target("user", id)
                .details(serde_json::json!({ "via": "command_line", "expires_at": token.expires_at }));
            audit::record(conn, &crate::extract::RequestContext::none(), event).await?;
            Ok(token)
        })
        .await
}

pub const LOCAL_ADMIN_EMAILS: [&str; 2] = ["admin@haven.local", "second-admin@haven.local"];

/// In local mode with an empty database: creates a host organisation and two admins (two people
/// run a deployment: the second approves what the first requests) with generated passwords, and
/// returns the credentials to show once.
pub async fn ensure_local_admin(pool: &Pool, hasher: &PasswordHasher) -> Result<Vec<(String, String)>, BootstrapError> {
    if host_exists(pool).await? {
        return Ok(Vec::new());
    }
    let mut shown = Vec::new();
    for (i, address) in LOCAL_ADMIN_EMAILS.into_iter().enumerate() {
        let password: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(24).map(char::from).collect();
        let parsed = NewPassword::parse(password.clone(), address).map_err(BootstrapError::Invalid)?;
        let email = Email::parse(address).expect("valid");
        match i {
            0 => bootstrap(pool, hasher, "Local host organisation", None, &email, &parsed).await?,
            _ => add_host_admin(pool, hasher, &email, &parsed).await?,
        }
        shown.push((address.to_owned(), password));
    }
    Ok(shown)
}
