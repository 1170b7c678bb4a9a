//! The second factor: TOTP (RFC 6238, `totp-rs`: SHA-1, 6 digits, 30 s steps, one step of skew,
//! which every authenticator app supports) and ten single-use recovery codes. The secret is sealed
//! like an identity; recovery codes are stored as SHA-256. A code is accepted once (its time step
//! is remembered). Enrolling needs the password, not a session, so a caseworker whose organisation
//! requires a second factor can enrol before their first login; a caseworker's new factor then
//! waits for a second person's approval like a new password does (README, "Roles and what each sees").

use actix_web::{HttpRequest, HttpResponse, post, web};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Bytea, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use totp_rs::{Builder, Secret, Totp};
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::Principal;
use super::lockout::{self, Endpoint, Whose};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::config::Environment;
use crate::db::fixed::fixed;
use crate::db::schema::{organizations, recovery_codes, users};
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, RequestContext};
use crate::grants::{self, GrantKind};
use crate::privacy::crypto::{Purpose, Sealed};
use crate::state::AppState;

const ISSUER: &str = "Haven";
const RECOVERY_CODES: usize = 10;

/// Your email and password: enrolling needs them, not a session.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorStart {
    pub email: String,
    #[schema(write_only)]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SecondFactorSecret {
    /// The shared secret (base32), to type into an authenticator app. Shown only here.
    pub secret: String,
    /// The same as an `otpauth://` URI, for a QR code.
    pub otpauth_uri: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorConfirm {
    pub email: String,
    #[schema(write_only)]
    pub password: String,
    /// The current six-digit code from the app.
    #[schema(example = "492039")]
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes; each logs in once in place of an app code. Shown only here: keep
    /// them somewhere safe, apart from the phone.
    pub recovery_codes: Vec<String>,
    /// A caseworker's new second factor waits for a second person's approval before the account
    /// can log in again.
    pub awaiting_approval: bool,
}

/// Whether `role` in an organisation with `setting` must log in with a second factor.
pub fn required(state: &AppState, role: Role, setting: Option<bool>) -> bool {
    crate::domain::policy::reaches_identities(role) && setting.unwrap_or(state.settings.env == Environment::Production)
}

fn totp(secret: Vec<u8>, email: &str) -> ApiResult<Totp> {
    Builder::new()
        .with_secret(secret)
        .with_account_name(email.replace(':', "_"))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| ApiError::internal("totp", e))
}

fn now() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

fn code_hash(code: &str) -> Vec<u8> {
    let normalised: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
    Sha256::digest(normalised.as_bytes()).to_vec()
}

struct Holder {
    id: Uuid,
    organization_id: Uuid,
    email: String,
    role: Role,
    totp_active: bool,
    sealed: Option<Sealed>,
    /// The password hash that was checked: a reset meanwhile replaces it.
    password_hash: Option<String>,
}

/// The account of an email, or nothing but the lock of an email that has none (as at the login).
const HOLDER: &str = lockout::by_email!(
    "u.id, u.organization_id, u.email, u.role, u.disabled, u.password_hash, u.totp_active, u.totp_key_id, u.totp_nonce, u.totp_ciphertext"
);

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    id: Option<Uuid>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    organization_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    role: Option<Role>,
    #[diesel(sql_type = Nullable<Bool>)]
    disabled: Option<bool>,
    #[diesel(sql_type = Nullable<Text>)]
    password_hash: Option<String>,
    #[diesel(sql_type = Nullable<Bool>)]
    totp_active: Option<bool>,
    #[diesel(sql_type = Nullable<Text>)]
    totp_key_id: Option<String>,
    #[diesel(sql_type = Nullable<Bytea>)]
    totp_nonce: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Bytea>)]
    totp_ciphertext: Option<Vec<u8>>,
    #[diesel(embed)]
    lock: lockout::Lock,
}

/// Checks email and password like a login: throttled, locked and counted against the lockout
/// (`lockout`), unknown and wrong alike.
async fn holder(state: &AppState, ctx: &RequestContext, email: &str, password: String) -> ApiResult<Holder> {
    let password = Zeroizing::new(password);
    let account = email.trim().to_lowercase();
    let address = ctx.client_address.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    state.throttle.admit(&state.pool, address, &account).await?;
    if account.len() > 254 || password.len() > 1024 {
        return Err(ApiError::InvalidCredentials);
    }
    let found: Found = fixed(HOLDER)
        .bind::<Text, _>(account.clone())
        .bind::<Bytea, _>(state.throttle.shared.account_key(&account))
        .get_result(&mut *state.pool.get().await?)
        .await?;
    let known = match (found.id, found.organization_id, &found.email, found.role, found.disabled) {
        (Some(id), Some(organization_id), Some(email), Some(role), Some(disabled)) => {
            Some((Holder::new(id, organization_id, email.clone(), role, &found), disabled))
        }
        _ => None,
    };
    let whose = match &known {
        Some((h, _)) => Whose::Account { id: h.id, role: h.role, organization_id: h.organization_id },
        None => Whose::NoAccount(&account),
    };
    let lock = found.lock.until(known.is_some());
    lockout::refuse_while_locked(&state.pool, ctx, whose, Endpoint::SecondFactor, lock).await?;
    let matched = state.hasher.verify(password, found.password_hash).await?;
    let mut conn = state.pool.get().await?;
    let reason = match known {
        Some((holder, false)) if matched => {
            if lockout::overtaken(&mut conn, ctx, whose, Endpoint::SecondFactor, holder.id).await? {
                return Err(ApiError::InvalidCredentials);
            }
            drop(conn);
            state.throttle.succeeded(&state.pool, address, Some(&account)).await;
            return Ok(holder);
        }
        Some((_, true)) if matched => "disabled",
        Some(_) => "bad_password",
        None => "unknown_account",
    };
    // A disabled account's right password is counted too, as at the login (D12).
    let locked_now = lockout::count_failure(state, &mut conn, whose).await?;
    let event = lockout::refused(whose, Endpoint::SecondFactor, AuditOutcome::Failure, reason, locked_now);
    audit::record(&mut conn, ctx, event).await?;
    Err(ApiError::InvalidCredentials)
}

impl Holder {
    fn new(id: Uuid, organization_id: Uuid, email: String, role: Role, found: &Found) -> Holder {
        let sealed = match (&found.totp_key_id, &found.totp_nonce, &found.totp_ciphertext) {
            (Some(key_id), Some(nonce), Some(ciphertext)) => {
                Some(Sealed { key_id: key_id.clone(), nonce: nonce.clone(), ciphertext: ciphertext.clone() })
            }
            _ => None,
        };
        Holder {
            id,
            organization_id,
            email,
            role,
            totp_active: found.totp_active.unwrap_or(false),
            sealed,
            password_hash: found.password_hash.clone(),
        }
    }
}

/// Start enrolling a second factor (TOTP).
///
/// With your email and password (no session needed, so a caseworker whose organisation requires a
/// second factor can enrol before logging in). Returns a new secret for an authenticator app;
/// confirm it with a code at `/auth/second-factor/confirm`. An enrolled factor is replaced only
/// after an admin resets it. The password is checked as at the login: throttled, refused while the
/// account is locked (429), and a wrong one counts towards the same lockout.
#[utoipa::path(
    tag = "auth",
    request_body = SecondFactorStart,
    responses(
        (status = 200, description = "A new secret", body = SecondFactorSecret),
        (status = 401, response = crate::openapi::responses::CredentialsRefused),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 429, response = crate::openapi::responses::TooManyRequests),
    )
)]
#[post("/auth/second-factor")]
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<SecondFactorStart>,
) -> ApiResult<HttpResponse> {
    let ctx = RequestContext::of(&req, &state.settings);
    let SecondFactorStart { email, password } = body.0;
    let holder = holder(&state, &ctx, &email, password).await?;
    if holder.totp_active {
        return Err(ApiError::Conflict("A second factor is enrolled; an admin resets it before a new one.".into()));
    }
    let secret = Zeroizing::new(Secret::generate().to_vec());
    let totp = totp(secret.to_vec(), &holder.email)?;
    let sealed = state.identity_keys.seal(Purpose::SecondFactor, holder.id, &secret);
    // Judged again as it is written: a factor confirmed (or a reset) since the checks above keeps
    // this secret from replacing it (D153).
    let written = diesel::update(
        users::table
            .find(holder.id)
            .filter(users::totp_active.eq(false))
            .filter(users::password_hash.eq(&holder.password_hash)),
    )
    .set((
        users::totp_key_id.eq(sealed.key_id),
        users::totp_nonce.eq(sealed.nonce),
        users::totp_ciphertext.eq(sealed.ciphertext),
        users::totp_last_step.eq(None::<i64>),
    ))
    .execute(&mut *state.pool.get().await?)
    .await?;
    if written != 1 {
        return Err(ApiError::Conflict("The account changed while the secret was made; start again.".into()));
    }
    let answer = SecondFactorSecret {
        secret: totp.secret().to_base32(),
        otpauth_uri: totp.to_url().map_err(|e| ApiError::internal("totp url", e))?,
    };
    Ok(HttpResponse::Ok().insert_header(super::credential_answer::no_store()).json(answer))
}

/// Confirm a second factor with a code from the app.
///
/// Activates the factor and returns ten single-use recovery codes (shown only here). A caseworker's
/// new factor waits for a second person's approval before the account logs in again. The password
/// is checked as at `/auth/second-factor`.
#[utoipa::path(
    tag = "auth",
    request_body = SecondFactorConfirm,
    responses(
        (status = 200, description = "Enrolled", body = RecoveryCodes),
        (status = 401, response = crate::openapi::responses::CredentialsRefused),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 429, response = crate::openapi::responses::TooManyRequests),
    )
)]
#[post("/auth/second-factor/confirm")]
pub async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<SecondFactorConfirm>,
) -> ApiResult<HttpResponse> {
    let ctx = RequestContext::of(&req, &state.settings);
    let SecondFactorConfirm { email, password, code } = body.0;
    let holder = holder(&state, &ctx, &email, password).await?;
    let verified = holder.sealed.as_ref().map(|s| s.ciphertext.clone()).unwrap_or_default();
    let password_hash = holder.password_hash.clone();
    let sealed = match (&holder.sealed, holder.totp_active) {
        (Some(sealed), false) => sealed.clone(),
        (_, true) => return Err(ApiError::Conflict("A second factor is already enrolled.".into())),
        (None, _) => return Err(ApiError::Conflict("Start with POST /api/v1/auth/second-factor.".into())),
    };
    let secret = state
        .identity_keys
        .open(Purpose::SecondFactor, holder.id, &sealed)
        .map_err(|e| ApiError::internal("second factor", e))?;
    let step = totp(secret.to_vec(), &holder.email)?.check(code.trim(), now()).ok_or_else(|| {
        ApiError::validation("code", "is not the current code of this secret (check the phone's clock)")
    })?;
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let raw: [u8; 8] = rand::random();
            let text = data_encoding_free_base32(&raw);
            format!("{}-{}", &text[..5], &text[5..10])
        })
        .collect();
    let hashes: Vec<Vec<u8>> = codes.iter().map(|c| code_hash(c)).collect();
    let mut conn = state.pool.get().await?;
    let caseworker = crate::domain::policy::reaches_identities(holder.role);
    let subject = Principal {
        user_id: holder.id,
        organization_id: holder.organization_id,
        role: holder.role,
        session_id: Uuid::nil(),
        is_host: false,
    };
    let enrol = async move {
        (*conn)
            .transaction::<_, ApiError, _>(async move |conn: &mut AsyncPgConnection| {
                // The secret whose code was checked, and no other (a concurrent start may have
                // replaced it): of two confirmations, one wins. And under the password that was
                // checked: a reset meanwhile (D152) leaves the factor unconfirmed.
                let activated = diesel::update(
                    users::table
                        .find(holder.id)
                        .filter(users::totp_active.eq(false))
                        .filter(users::totp_ciphertext.eq(&verified))
                        .filter(users::password_hash.eq(&password_hash)),
                )
                .set((users::totp_active.eq(true), users::totp_last_step.eq(step as i64)))
                .execute(conn)
                .await?;
                if activated != 1 {
                    return Err(ApiError::Conflict(
                        "The secret or the password changed while you confirmed it; start again.".into(),
                    ));
                }
                diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(holder.id)))
                    .execute(conn)
                    .await?;
                let rows: Vec<_> = hashes
                    .iter()
                    .map(|h| (recovery_codes::user_id.eq(holder.id), recovery_codes::code_hash.eq(h)))
                    .collect();
                diesel::insert_into(recovery_codes::table).values(rows).execute(conn).await?;
                let event = Event::new(AuditAction::SecondFactorEnrolled, AuditOutcome::Success)
                    .by(&subject)
                    .target("user", holder.id);
                audit::record(conn, &ctx, event).await?;
                if !caseworker {
                    return Ok(false);
                }
                // A new account's or a password reset's own grant covers the factor enrolled with it;
                // otherwise this factor gets a grant of its own, never an older factor's.
                let covered = grants::pending_for(conn, holder.id)
                    .await?
                    .is_some_and(|g| matches!(g.kind, GrantKind::NewCaseworker | GrantKind::CredentialReset));
                if !covered {
                    grants::withdraw_pending(conn, &ctx, &subject, holder.id, true).await?;
                    grants::request(conn, &ctx, &subject, holder.organization_id, holder.id, GrantKind::SecondFactor)
                        .await?;
                }
                diesel::update(users::table.find(holder.id))
                    .set(users::awaiting_approval.eq(true))
                    .execute(conn)
                    .await?;
                super::sessions::revoke_user(conn, holder.id).await?;
                Ok(true)
            })
            .await
    };
    let awaiting_approval = super::session_cache::revoking(state.sessions.clone(), enrol).await?;
    Ok(HttpResponse::Ok()
        .insert_header(super::credential_answer::no_store())
        .json(RecoveryCodes { recovery_codes: codes, awaiting_approval }))
}

/// Crockford-style base32 of random bytes, without look-alike letters (no I, L, O, U).
fn data_encoding_free_base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut bits = 0u32;
    let mut width = 0;
    let mut out = String::new();
    for byte in bytes {
        bits = (bits << 8) | *byte as u32;
        width += 8;
        while width >= 5 {
            width -= 5;
            out.push(ALPHABET[((bits >> width) & 31) as usize] as char);
        }
    }
    out
}

/// What a login presents besides the password.
pub struct Presented<'a> {
    pub code: Option<&'a str>,
    pub recovery_code: Option<&'a str>,
}

/// A person's second factor as stored, with their organisation's requirement.
#[derive(Queryable)]
struct StoredFactor {
    active: bool,
    key_id: Option<String>,
    nonce: Option<Vec<u8>>,
    ciphertext: Option<Vec<u8>>,
    /// The organisation's requirement (`None`: the deployment's default for the role).
    setting: Option<bool>,
}

/// Checks the second factor of a login whose password matched, on the login's transaction. A code
/// is accepted once; a recovery code is spent. A wrong, replayed or spent one is
/// `InvalidCredentials`, which the login counts towards the lockout.
pub async fn check_login(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    user: Uuid,
    email: &str,
    role: Role,
    presented: &Presented<'_>,
) -> ApiResult<()> {
    let StoredFactor { active, key_id, nonce, ciphertext, setting } = users::table
        .inner_join(organizations::table)
        .filter(users::id.eq(user))
        .select((
            users::totp_active,
            users::totp_key_id,
            users::totp_nonce,
            users::totp_ciphertext,
            organizations::require_second_factor,
        ))
        .first(conn)
        .await?;
    if !active {
        return match required(state, role, setting) {
            true => Err(ApiError::SecondFactorEnrolmentRequired),
            false => Ok(()),
        };
    }
    if let Some(code) = presented.recovery_code {
        let spent = diesel::update(
            recovery_codes::table
                .filter(recovery_codes::user_id.eq(user))
                .filter(recovery_codes::code_hash.eq(code_hash(code)))
                .filter(recovery_codes::used_at.is_null()),
        )
        .set(recovery_codes::used_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
        return if spent == 1 { Ok(()) } else { Err(ApiError::InvalidCredentials) };
    }
    let Some(code) = presented.code else { return Err(ApiError::SecondFactorRequired) };
    let (Some(key_id), Some(nonce), Some(ciphertext)) = (key_id, nonce, ciphertext) else {
        return Err(ApiError::internal("second factor", "active without a secret"));
    };
    let secret = state
        .identity_keys
        .open(Purpose::SecondFactor, user, &Sealed { key_id, nonce, ciphertext })
        .map_err(|e| ApiError::internal("second factor", e))?;
    let step = totp(secret.to_vec(), email)?.check(code.trim(), now()).ok_or(ApiError::InvalidCredentials)? as i64;
    // Once per code: a step at or before the last accepted one is a replay.
    let accepted = diesel::update(
        users::table.find(user).filter(users::totp_last_step.is_null().or(users::totp_last_step.lt(step))),
    )
    .set(users::totp_last_step.eq(step))
    .execute(conn)
    .await?;
    if accepted == 1 { Ok(()) } else { Err(ApiError::InvalidCredentials) }
}
