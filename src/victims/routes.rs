use actix_web::{HttpResponse, get, http::header, patch, post, web};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::access::{self, Visible};
use super::filters::VictimQuery;
use super::model::{CaseFile, IdentityPart, ValidVictim, VictimInput, VictimRow, VictimView};
use super::{consent, custody, store};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::changes::{self, Forget, LeaveReason};
use crate::db::schema::{case_assignments, victims};
use crate::domain::policy::{self, Custody, Relation};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IfMatch, RequestContext, etag, from_value};
use crate::pagination::{self, Page};
use crate::privacy::identity::{self, Identity};
use crate::privacy::redaction;
use crate::state::AppState;

fn respond(status: actix_web::http::StatusCode, version: i32, view: &VictimView) -> HttpResponse {
    HttpResponse::build(status).insert_header((header::ETAG, etag(version))).json(view)
}

/// Create a victim's case file (caseworkers).
///
/// The client may choose the id. Repeating a create with the same id and body returns the stored
/// record (200); the same id with another body is a conflict (409). The identity is encrypted
/// before it is stored.
#[utoipa::path(
    tag = "victims",
    request_body(content = VictimInput, example = json!({
        "trafficking_status": "actual", "identified_on": "2026-10-14", "identified_in": "SEN", "identified_by": "ngo",
        "operation": "OP-SENTINEL-2026", "gender": "woman", "age_at_identification": 24, "citizenship": ["PER"],
        "migrant_status": "irregular_migrant", "country_of_exploitation": "SEN", "exploitation_types": ["forced_criminality"],
        "labour_sector": "J", "recruitment_methods": ["deceptive_job_offer"], "means_of_control": ["debt_bondage"],
        "recruiter_relation": "friend_or_acquaintance",
        "route": [{"kind": "recruitment", "country": "PER", "month": "2026-03"}, {"kind": "transit", "country": "BRA"},
                  {"kind": "exploitation", "country": "SEN", "month": "2026-05"}],
        "consent": {"services": true, "share_with_referral_partners": true, "anonymised_statistics": true},
        "identity": {"given_names": "Ana María", "family_names": "Quispe Mamani", "date_of_birth": "2002-02-03"}
    })),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = VictimView, headers(("ETag" = String, description = "Version"))),
        (status = 200, description = "Already created with this body (a retry)", body = VictimView),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/victims")]
pub async fn create_victim(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    policy::write_victim(&principal, principal.organization_id, Custody::CREATOR).require()?;
    let digest = crate::idempotency::digest(&state.identity_keys, &body.0);
    let input = ValidVictim::try_from(from_value::<VictimInput>(body.0)?).map_err(ApiError::Validation)?;
    if input.status.is_closed() {
        return Err(ApiError::Conflict(
            "A case is recorded open and closed with POST /victims/{id}/close, with its reason.".into(),
        ));
    }
    let id = input.id.unwrap_or_else(Uuid::now_v7);
    let org = principal.organization_id;
    let mut conn = state.pool.get().await?;
    let new = store::NewVictim { id, organization_id: org, user_id: principal.user_id, input: &input, digest };
    // The victim's data key is stored (and committed, in the vault) while the transaction looks for
    // an earlier create, and before it writes: a case file never commits sealed under a key that
    // did not (D133).
    let key = async {
        match input.identity.is_some() {
            true => state.vault.sealer_for_new(id).await.map(Some),
            false => Ok(None),
        }
    };
    let (row, created) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let (row, created, sealer) = crate::idempotency::create_once_with(conn, &new, key).await?;
            if !created {
                return Ok((row, false));
            }
            let sealed = match (&input.identity, sealer) {
                (Some(i), Some(sealer)) => Some(identity::seal(&sealer, id, i)),
                _ => None,
            };
            let event = Event::new(AuditAction::VictimCreated, AuditOutcome::Success)
                .by(&principal)
                .target("victim", id)
                .details(serde_json::json!({ "case_number": row.case_number, "identity": input.identity.is_some() }));
            // Four writes that need only the case file, pipelined: one round trip, and the case
            // counter taken by the insert is held that much less. All four are awaited, and the
            // first failure in the order they were sent is the one reported (the later ones only
            // say that the transaction was aborted).
            let shared: &AsyncPgConnection = conn;
            let (mut a, mut b, mut c, mut d) = (shared, shared, shared, shared);
            let (identity_stored, assigned, consent_recorded, audited) = tokio::join!(
                biased;
                async {
                    match sealed {
                        Some(sealed) => store::store_identity(&mut a, id, org, sealed).await,
                        None => Ok(()),
                    }
                },
                // Its creator works the case until someone reassigns it.
                custody::assign_creator(&mut b, id, org, principal.user_id),
                consent::record(&mut c, None, &row, principal.user_id),
                audit::record(&mut d, &ctx, event),
            );
            identity_stored?;
            assigned?;
            consent_recorded?;
            audited?;
            Ok((row, true))
        })
        .await?;
    let status = crate::idempotency::status(created);
    if created {
        // The creator gets back the identity it has just sent: that is no read of a stored
        // identity, so no second audited transaction.
        let sight = redaction::sight(&principal, row.id, row.organization_id, Relation::None, Custody::CREATOR)?;
        let view = match sight.grant() {
            Some(grant) => {
                let identity = input.identity.clone().unwrap_or_default();
                VictimView::disclosed(grant, CaseFile::from(&row), IdentityPart { identity })
            }
            None => VictimView::redacted(CaseFile::from(&row)),
        };
        return Ok(respond(status, row.version, &view));
    }
    // A retry finds the case as it stands now, as a read would: restricted, transferred or erased
    // meanwhile, it shows what the caller may see of it now, decided and read in one snapshot.
    let (version, view) = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let Visible { row, sight, .. } = access::load_visible(&state, conn, &ctx, &principal, row.id).await?;
            let view = access::view_of(&state, conn, &ctx, &principal, &row, sight).await?;
            Ok((row.version, view))
        })
        .await?;
    Ok(respond(status, version, &view))
}

/// Read a victim's case file.
///
/// Caseworkers of the owning organisation (of a restricted case, its assigned caseworkers), and of
/// an organisation it was referred to with the identity shared, get the identity (each such read is
/// audited). Admins and auditors get the case file without identity; partners get 403; records of
/// other organisations are 404.
#[utoipa::path(
    tag = "victims",
    params(("id" = Uuid, Path, description = "Victim id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The case file as you may see it", body = VictimView, headers(("ETag" = String, description = "Version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/victims/{id}")]
pub async fn get_victim(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    // This is the service's hottest read. For a case file, one round trip; for an identity, four:
    // the snapshot's start, the record, its data key beside the statement that reads its sealed
    // identity and writes the audit event (D136), and the commit (D157).
    let read = async |conn: &mut AsyncPgConnection| -> ApiResult<_> {
        let Visible { row, sight, .. } = access::load_visible(&state, conn, &ctx, &principal, id).await?;
        let view = access::view_of(&state, conn, &ctx, &principal, &row, sight).await?;
        Ok((row.version, view))
    };
    let (version, view) = match policy::reaches_identities(principal.role) {
        true => access::one_snapshot(&mut conn).run(read).await?,
        // Nobody else reads anything of the identity's: one statement needs no transaction.
        false => read(&mut conn).await?,
    };
    Ok(respond(actix_web::http::StatusCode::OK, version, &view))
}

fn minor_contradicts_age(document: &Value) -> bool {
    match (
        document.get("age_at_identification").and_then(Value::as_i64),
        document.get("is_minor").and_then(Value::as_bool),
    ) {
        (Some(age), Some(minor)) => minor != (age < 18),
        _ => false,
    }
}

/// RFC 7396 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            let map = target.as_object_mut().expect("object");
            for (key, value) in fields {
                if value.is_null() {
                    map.remove(key);
                } else {
                    merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Update a victim's case file (caseworkers of the owning organisation; of a restricted case, its
/// assigned caseworkers).
///
/// The body is a JSON merge patch (RFC 7396) of the case file: fields given replace, `null`
/// removes, absent fields stay. `identity` patches the identity the same way. Requires `If-Match`.
/// Changing the age alone derives `is_minor` again; a patch that sets `is_minor` against the
/// recorded age is refused 409 (send both, or the age alone).
#[utoipa::path(
    tag = "victims",
    params(
        ("id" = Uuid, Path, description = "Victim id"),
        ("If-Match" = String, Header, description = "ETag of the version you read, e.g. \"3\" (a list of them, or `*` for whatever version exists)"),
    ),
    // The schema (`VictimPatch`, derived from `VictimInput`) is filled in by `openapi::merge_patch`.
    request_body(description = "A JSON merge patch (RFC 7396) of the case file (sent as `application/merge-patch+json`; `application/json` is accepted too)", content(("application/merge-patch+json"))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = VictimView, headers(("ETag" = String, description = "New version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 412, response = crate::openapi::responses::PreconditionFailed),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 428, response = crate::openapi::responses::PreconditionRequired),
    )
)]
#[patch("/victims/{id}")]
pub async fn update_victim(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let patch = body.0;
    let Some(fields) = patch.as_object() else {
        return Err(ApiError::validation("body", "must be a JSON object (a merge patch)"));
    };
    if fields.contains_key("id") {
        return Err(ApiError::validation("id", "cannot be changed"));
    }
    // The patch as sent, against the schema the document publishes for it (`VictimPatch`), like
    // every typed body. Merging alone would let a key that is no field pass when its value is
    // `null` (it removes nothing), and the keys go into the audit event as the fields changed:
    // a name typed as a key would reach the admins and auditors who read it.
    let problems = crate::openapi::validate::problems("VictimPatch", &patch)?;
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let Visible { row, custody, .. } = access::load_visible(&state, &mut conn, &ctx, &principal, id).await?;
    policy::write_victim(&principal, row.organization_id, custody).require()?;
    let version = if_match.against(row.version)?;
    let changed: Vec<String> = fields.keys().cloned().collect();
    let (updated, view) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            // Judged again under the case's lock: a concurrent hand-over may have restricted it.
            let custody = custody::lock(conn, id, principal.user_id, row.organization_id).await?;
            policy::write_victim(&principal, row.organization_id, custody).require()?;
            let mut base = CaseFile::from(&row).as_input();
            if fields.get("age_at_identification").is_some_and(|a| !a.is_null()) && !fields.contains_key("is_minor") {
                base.is_minor = None;
            }
            if let Some(consent) = fields.get("consent") {
                // New consent, recorded now unless the client says when it was given, and given
                // however the client says (not how the consent it replaces was).
                if consent.get("recorded_at").is_none() {
                    base.consent.recorded_at = None;
                }
                if consent.get("method").is_none() {
                    base.consent.method = None;
                }
            }
            let touches_identity = fields.contains_key("identity");
            // Before a key is asked for: the vault would make a new one for an erased case.
            if fields.get("identity").is_some_and(|i| !i.is_null()) && super::erasure::erased(conn, id).await? {
                return Err(super::erasure::refused_on_erased());
            }
            // Under the case's lock, so an erasure waiting for it destroys whatever this seals.
            let sealer = match touches_identity {
                true => Some(state.vault.sealer(id).await?),
                false => None,
            };
            if let Some(sealer) = &sealer {
                base.identity = match store::sealed_identity(conn, id).await? {
                    Some(sealed) => Some(access::open_identity(sealer, id, &sealed)?),
                    None => Some(Identity::default()),
                };
            }
            let mut merged = serde_json::to_value(&base).map_err(|e| ApiError::internal("patch", e))?;
            merge_patch(&mut merged, &patch);
            // Valid in itself, but against what is recorded: a conflict with the stored state, not
            // an invalid request (a patch that contradicts itself is refused 422 below).
            let gives_both = fields.contains_key("age_at_identification") && fields.contains_key("is_minor");
            if !gives_both && minor_contradicts_age(&merged) {
                return Err(ApiError::Conflict(
                    "is_minor contradicts the recorded age_at_identification (under 18 is a minor): send both, or the age alone."
                        .into(),
                ));
            }
            let input = ValidVictim::try_from(from_value::<VictimInput>(merged)?).map_err(ApiError::Validation)?;
            if input.status != row.status && (input.status.is_closed() || row.status.is_closed()) {
                return Err(ApiError::Conflict(
                    "A case is closed with POST /victims/{id}/close and reopened with /reopen, each with its reason."
                        .into(),
                ));
            }
            let updated = store::update(conn, id, version, principal.user_id, &input)
                .await?
                .ok_or(ApiError::PreconditionFailed)?;
            consent::record(conn, Some(&row), &updated, principal.user_id).await?;
            match (&sealer, &input.identity) {
                (Some(sealer), Some(identity)) => {
                    store::store_identity(conn, id, row.organization_id, identity::seal(sealer, id, identity)).await?
                }
                (Some(_), None) => {
                    if crate::retention::routes::held(conn, id).await? {
                        return Err(ApiError::Conflict(
                            "A legal hold stands on this case: its identity cannot be removed until it is lifted.".into(),
                        ));
                    }
                    store::delete_identity(conn, id).await?;
                    // Removed: every client that holds it, here and at receivers, deletes its copy.
                    // Only the identity: the notes, reasons and plan texts stay on the server and
                    // are served as before, so a client must keep them (D160).
                    let (removed, why) = (Forget::IdentityOnly, LeaveReason::IdentityRemoved);
                    changes::for_holders(conn, row.organization_id, id, removed, why).await?;
                }
                (None, _) => {}
            }
            consent::announce_withdrawal(conn, &row, &updated).await?;
            let event = Event::new(AuditAction::VictimUpdated, AuditOutcome::Success)
                .by(&principal)
                .target("victim", id)
                .details(serde_json::json!({ "fields": changed, "version": updated.version }));
            audit::record(conn, &ctx, event).await?;
            let sight = redaction::sight(&principal, id, updated.organization_id, Relation::None, custody)?;
            let view = access::view_of(&state, conn, &ctx, &principal, &updated, sight).await?;
            Ok((updated, view))
        })
        .await?;
    Ok(respond(actix_web::http::StatusCode::OK, updated.version, &view))
}

/// List victims of your organisation (host auditors: all), in a stable order.
///
/// Caseworkers get identities (the read is audited, one event per page); admins and auditors get
/// case files without identities; partners get 403.
#[utoipa::path(
    tag = "victims",
    params(VictimQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of case files", body = Page<VictimView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/victims")]
pub async fn list_victims(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    query: ApiQuery<VictimQuery>,
) -> ApiResult<HttpResponse> {
    let scope = policy::victim_list_scope(&principal)?;
    let f = query.0.parse()?;
    let mut sql = victims::table.select(VictimRow::as_select()).into_boxed();
    if let Some(org) = scope {
        sql = sql.filter(victims::organization_id.eq(org));
    }
    if let Some(status) = f.status {
        sql = sql.filter(victims::status.eq(status));
    }
    if let Some(ts) = f.trafficking_status {
        sql = sql.filter(victims::trafficking_status.eq(ts));
    }
    if let Some(kind) = f.exploitation_type {
        sql = sql.filter(victims::exploitation_types.contains(vec![kind]));
    }
    if let Some(c) = f.citizenship {
        sql = sql.filter(victims::citizenship.contains(vec![c]));
    }
    if let Some(c) = f.country_of_exploitation {
        sql = sql.filter(victims::country_of_exploitation.eq(c));
    }
    if let Some(op) = f.operation {
        sql = sql.filter(victims::operation.eq(op));
    }
    if f.assigned_to_me {
        let mine = case_assignments::table
            .filter(case_assignments::user_id.eq(principal.user_id))
            .select(case_assignments::victim_id);
        sql = sql.filter(victims::id.eq_any(mine));
    }
    if let Some(from) = f.identified_from {
        sql = sql.filter(victims::identified_on.ge(from));
    }
    if let Some(to) = f.identified_to {
        sql = sql.filter(victims::identified_on.le(to));
    }
    if let Some(since) = f.updated_since {
        sql = sql.filter(victims::updated_at.ge(since));
    }
    if let Some(after) = f.after {
        sql = sql.filter(victims::id.gt(after));
    }
    let limit = f.limit;
    let mut conn = state.pool.get().await?;
    let page = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let rows: Vec<VictimRow> = sql.order(victims::id.asc()).limit(limit + 1).load(conn).await?;
            let more = rows.len() as i64 > limit;
            let rows: Vec<VictimRow> = rows.into_iter().take(limit as usize).collect();
            let next_cursor = if more { rows.last().map(|r| pagination::encode(&r.id)) } else { None };
            let items = access::list_views(&state, conn, &ctx, &principal, rows).await?;
            Ok(Page { items, next_cursor })
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}
