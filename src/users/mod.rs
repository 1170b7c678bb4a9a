//! Staff accounts: the model, its public view, and the handlers in `routes`.

pub mod reset;
pub mod routes;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::users;
use crate::domain::Role;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub awaiting_approval: bool,
    #[diesel(select_expression = users::password_hash.is_not_null())]
    #[diesel(select_expression_type = diesel::dsl::IsNotNull<users::password_hash>)]
    pub password_set: bool,
}

/// A staff account as the API shows it (never the password hash or login counters).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub organization_id: Uuid,
    #[schema(format = "email", example = "amina.diallo@example.org")]
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    /// Set while the account is locked after repeated failed logins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login_at: Option<DateTime<Utc>>,
    /// Whether the person has set their password (with their enrolment or reset token).
    pub password_set: bool,
    /// Set while the account's caseworker access waits for a second person's approval: it cannot
    /// log in until then.
    pub awaiting_approval: bool,
    /// Optimistic-concurrency version; send it back as `If-Match: "<version>"` to update.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        let locked_until = u.locked_until.filter(|t| *t > Utc::now());
        UserView {
            id: u.id,
            organization_id: u.organization_id,
            email: u.email,
            role: u.role,
            disabled: u.disabled,
            locked_until,
            last_login_at: u.last_login_at,
            password_set: u.password_set,
            awaiting_approval: u.awaiting_approval,
            version: u.version,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table.find(id).select(User::as_select()).first(conn).await.optional()
}

/// How a new account gets its password.
pub enum NewCredential<'a> {
    /// A hash of a password the person chose (bootstrap) or that nobody can use (`None`: seeded
    /// accounts, or test fixtures given a known hash).
    Password(Option<&'a str>),
    /// None yet: the person sets it with the enrolment token `issued_by` receives. A caseworker
    /// also waits for a second person's approval.
    Enrolment { issued_by: Uuid, awaiting_approval: bool },
}

/// Inserts a user; the caller has checked the policy.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    email: &str,
    role: Role,
    credential: NewCredential<'_>,
) -> QueryResult<User> {
    let (hash, issued_by, awaiting) = match credential {
        NewCredential::Password(hash) => (hash, None, false),
        NewCredential::Enrolment { issued_by, awaiting_approval } => (None, Some(issued_by), awaiting_approval),
    };
    diesel::insert_into(users::table)
        .values((
            users::id.eq(Uuid::now_v7()),
            users::organization_id.eq(organization_id),
            users::email.eq(email),
            users::password_hash.eq(hash),
            users::role.eq(role),
            users::credential_issued_by.eq(issued_by),
            users::awaiting_approval.eq(awaiting),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}
