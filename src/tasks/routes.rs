use actix_web::{HttpResponse, get, http::header, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use uuid::Uuid;

use super::store::{self, Change, Filters, Scope};
use super::{NewTask, Task, TaskInput, TaskPatch, TaskRow, TaskView};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::domain::case_vocab::{TaskKind, TaskStatus};
use crate::domain::policy::{self, Relation};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IfMatch, RequestContext, etag, from_value};
use crate::idempotency::CreateOnce;
use crate::pagination::{self, Page};
use crate::privacy::crypto::{Purpose, Sealed};
use crate::privacy::redaction::{self, IdentityGrant, NotesPart, Sight};
use crate::privacy::staff::StaffSight;
use crate::privacy::vault::Opens;
use crate::state::AppState;
use crate::victims::access::{self, CaseRecord, Visible};
use crate::victims::custody;
use crate::victims::filters::AssignedTo;

/// Which tasks to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// `me`: only the tasks assigned to you.
    #[param(inline)]
    pub assigned_to: Option<AssignedTo>,
    pub status: Option<TaskStatus>,
    pub kind: Option<TaskKind>,
    /// Due before this day.
    pub due_before: Option<NaiveDate>,
    /// `true`: only open tasks past their due date (UTC); `false`: no such task.
    pub overdue: Option<bool>,
    /// Changed at or after this time (for client sync).
    pub updated_since: Option<DateTime<Utc>>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

impl TaskQuery {
    fn parse(self, caller: Uuid) -> ApiResult<Filters> {
        Ok(Filters {
            assignee: (self.assigned_to == Some(AssignedTo::Me)).then_some(caller),
            status: self.status,
            kind: self.kind,
            due_before: self.due_before,
            overdue: self.overdue.map(|o| (o, super::today())),
            updated_since: self.updated_since,
            limit: pagination::limit(self.limit)?,
            after: pagination::decode(self.cursor.as_deref())?,
        })
    }
}

/// Add a task to a case (caseworkers who may write it; not on a closed case).
///
/// The task starts `open`, assigned to `assignee_id` or to you.
#[utoipa::path(
    tag = "tasks",
    params(("id" = Uuid, Path, description = "Victim id")),
    request_body = TaskInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = TaskView, headers(("ETag" = String, description = "Version"))),
        (status = 200, description = "Already created with this body (a retry)", body = TaskView, headers(("ETag" = String, description = "Version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[post("/victims/{id}/tasks")]
pub async fn create_task(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    body: ApiJson<Value>,
) -> ApiResult<HttpResponse> {
    let victim_id = id.into_inner();
    let digest = crate::idempotency::digest(&state.identity_keys, &body.0);
    let input: TaskInput = from_value(body.0)?;
    policy::refuse_partners(&principal)?;
    let mut conn = state.pool.get().await?;
    let Visible { row: victim, custody, .. } =
        access::load_visible(&state, &mut conn, &ctx, &principal, victim_id).await?;
    policy::write_victim(&principal, victim.organization_id, custody).require()?;
    let id = input.id.unwrap_or_else(Uuid::now_v7);
    let assignee = input.assignee_id.unwrap_or(principal.user_id);
    let sealed = match &input.notes {
        Some(n) => Some(state.vault.sealer(victim_id).await?.seal(Purpose::TaskNotes, id, n.as_bytes())),
        None => None,
    };
    let (notes_key_id, notes_nonce, notes_ciphertext) = Sealed::columns(sealed);
    let new = NewTask {
        id,
        victim_id,
        organization_id: victim.organization_id,
        kind: input.kind,
        due_on: input.due_on,
        assignee_id: assignee,
        notes_key_id,
        notes_nonce,
        notes_ciphertext,
        create_digest: digest,
        created_by: principal.user_id,
        updated_by: principal.user_id,
    };
    let (row, created, custody) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let custody = access::lock_open_case(conn, &principal, victim_id, victim.organization_id).await?;
            // A retry is answered with what it created, whoever is assignable now.
            if new.find(conn).await?.is_none() {
                store::check_assignee(conn, victim.organization_id, victim_id, custody, assignee).await?;
            }
            let (row, created) = crate::idempotency::create_once(conn, &new).await?;
            if created {
                let event = Event::new(AuditAction::TaskCreated, AuditOutcome::Success)
                    .by(&principal)
                    .target("victim", victim_id)
                    .details(serde_json::json!({ "task_id": row.id, "kind": row.kind, "assignee_id": assignee }));
                audit::record(conn, &ctx, event).await?;
            }
            Ok((row, created, custody))
        })
        .await?;
    let sight = redaction::sight(&principal, victim_id, victim.organization_id, Relation::None, custody)?;
    let staff = StaffSight::of(&mut conn, &principal, Task::staff(&row)).await?;
    let task = Task::of(&row, super::today(), &staff);
    let view = match sight.grant() {
        Some(grant) => TaskView::disclosed(grant, task, NotesPart { notes: input.notes }),
        None => TaskView::redacted(task),
    };
    Ok(crate::idempotency::answer(created).insert_header((header::ETAG, etag(row.version))).json(view))
}

/// List a case's tasks, a page at a time in a stable order (by id).
///
/// Whoever may read the case file sees its tasks; notes only those who may see the identity
/// (reading them is audited, one event per page).
#[utoipa::path(
    tag = "tasks",
    params(("id" = Uuid, Path, description = "Victim id"), TaskQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the case's tasks", body = Page<TaskView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/victims/{id}/tasks")]
pub async fn list_case_tasks(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    query: ApiQuery<TaskQuery>,
) -> ApiResult<HttpResponse> {
    let filters = query.0.parse(principal.user_id)?;
    policy::refuse_partners(&principal)?;
    let id = id.into_inner();
    let mut conn = state.pool.get().await?;
    let page = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let Visible { row: victim, sight, until, .. } =
                access::load_visible(&state, conn, &ctx, &principal, id).await?;
            let (rows, more) = store::page(conn, Scope::Case(victim.id, until), &filters).await?;
            let grants = vec![sight.grant(); rows.len()];
            let items = views(&state, conn, &ctx, &principal, &rows, grants, victim.organization_id).await?;
            Ok(page(items, &rows, more))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// List your organisation's tasks (host auditors: all), a page at a time in a stable order (by
/// id): with `assigned_to=me&overdue=true`, what you have left undone.
///
/// Notes only for caseworkers who may see the case's identity (reading them is audited, one event
/// per page).
#[utoipa::path(
    tag = "tasks",
    params(TaskQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of tasks", body = Page<TaskView>),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 422, response = crate::openapi::responses::Invalid),
    )
)]
#[get("/tasks")]
pub async fn list_tasks(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    query: ApiQuery<TaskQuery>,
) -> ApiResult<HttpResponse> {
    let filters = query.0.parse(principal.user_id)?;
    let scope = policy::victim_list_scope(&principal)?;
    let mut conn = state.pool.get().await?;
    let page = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let (rows, more) = store::page(conn, Scope::Organization(scope), &filters).await?;
            let victims: Vec<Uuid> = if policy::reaches_identities(principal.role) {
                rows.iter().map(|r| r.victim_id).collect()
            } else {
                Vec::new()
            };
            let custody = custody::custody_of(conn, &victims, principal.user_id).await?;
            let grants = rows
                .iter()
                .map(|r| {
                    redaction::sight(&principal, r.victim_id, r.organization_id, Relation::None, custody(r.victim_id))
                        .map(|s| s.grant())
                })
                .collect::<ApiResult<Vec<_>>>()?;
            let items = views(&state, conn, &ctx, &principal, &rows, grants, principal.organization_id).await?;
            Ok(page(items, &rows, more))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

fn page(items: Vec<TaskView>, rows: &[TaskRow], more: bool) -> Page<TaskView> {
    let next_cursor = if more { rows.last().map(|r| pagination::encode(&r.id)) } else { None };
    Page { items, next_cursor }
}

/// The views of `rows`, with notes where the caller holds a grant for the task's victim.
async fn views(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    rows: &[TaskRow],
    grants: Vec<Option<IdentityGrant>>,
    owner: Uuid,
) -> ApiResult<Vec<TaskView>> {
    let today = super::today();
    let staff = StaffSight::of(conn, principal, rows.iter().flat_map(Task::staff)).await?;
    let victims: Vec<Uuid> = rows.iter().map(|r| r.victim_id).collect();
    let openers = state.vault.openers(&victims).await?;
    let open = |row: &TaskRow| {
        let notes = openers.of(row.victim_id).open_text(
            Purpose::TaskNotes,
            row.id,
            (&row.notes_key_id, &row.notes_nonce, &row.notes_ciphertext),
        )?;
        let stored = notes.is_some();
        Ok((NotesPart { notes }, stored))
    };
    access::gated_views(
        conn,
        ctx,
        principal,
        owner,
        "task_notes",
        rows,
        grants,
        |r| (r.id, Task::of(r, today, &staff)),
        open,
    )
    .await
}

/// A task and the case it belongs to, as the caller may see it (404 for a task of a case they may
/// not see).
async fn load_task(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    id: Uuid,
) -> ApiResult<(TaskRow, Visible)> {
    policy::refuse_partners(principal)?;
    let visible = access::load_record_case(state, conn, ctx, principal, CaseRecord::Task, id).await?;
    let task = store::find(conn, id).await?.filter(|t| t.victim_id == visible.row.id && visible.holds(t.updated_at));
    Ok((task.ok_or(ApiError::NotFound)?, visible))
}

/// The answer for one task: its view (notes read audited) and `ETag`.
async fn one(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    row: &TaskRow,
    sight: Sight,
) -> ApiResult<HttpResponse> {
    let mut items =
        views(state, conn, ctx, principal, std::slice::from_ref(row), vec![sight.grant()], row.organization_id).await?;
    let view = items.pop().ok_or_else(|| ApiError::Internal("no view of a task".into()))?;
    Ok(HttpResponse::Ok().insert_header((header::ETAG, etag(row.version))).json(view))
}

/// Read a task (whoever may read its case).
#[utoipa::path(
    tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The task", body = TaskView, headers(("ETag" = String, description = "Version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
#[get("/tasks/{id}")]
pub async fn get_task(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let mut conn = state.pool.get().await?;
    access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let (task, visible) = load_task(&state, conn, &ctx, &principal, id).await?;
            one(&state, conn, &ctx, &principal, &task, visible.sight).await
        })
        .await
}

/// Change a task: mark it done or cancelled (or open again), move its due date, hand it to a
/// colleague, rewrite its notes (caseworkers who may write the case; not on a closed case).
///
/// Requires `If-Match` with the version last read.
#[utoipa::path(
    tag = "tasks",
    params(
        ("id" = Uuid, Path, description = "Task id"),
        ("If-Match" = String, Header, description = "ETag of the version you read, e.g. \"3\" (a list of them, or `*` for whatever version exists)"),
    ),
    request_body = TaskPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = TaskView, headers(("ETag" = String, description = "New version"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
        (status = 404, response = crate::openapi::responses::NotFound),
        (status = 409, response = crate::openapi::responses::Conflict),
        (status = 412, response = crate::openapi::responses::PreconditionFailed),
        (status = 422, response = crate::openapi::responses::Invalid),
        (status = 428, response = crate::openapi::responses::PreconditionRequired),
    )
)]
#[patch("/tasks/{id}")]
pub async fn update_task(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: ApiJson<TaskPatch>,
) -> ApiResult<HttpResponse> {
    let patch = body.0;
    let mut conn = state.pool.get().await?;
    let (task, Visible { row: victim, custody, .. }) =
        load_task(&state, &mut conn, &ctx, &principal, id.into_inner()).await?;
    policy::write_victim(&principal, victim.organization_id, custody).require()?;
    let version = if_match.against(task.version)?;
    let notes = match patch.notes {
        Some(Some(n)) => {
            let sealer = state.vault.sealer(task.victim_id).await?;
            Some(Sealed::columns(Some(sealer.seal(Purpose::TaskNotes, task.id, n.as_bytes()))))
        }
        Some(None) => Some(Sealed::columns(None)),
        None => None,
    };
    let mut fields = Vec::new();
    for (name, given) in [
        ("kind", patch.kind.is_some()),
        ("due_on", patch.due_on.is_some()),
        ("assignee_id", patch.assignee_id.is_some()),
        ("status", patch.status.is_some()),
        ("notes", notes.is_some()),
    ] {
        if given {
            fields.push(name);
        }
    }
    // Whoever is named is judged, the current assignee too: a 200 for "unchanged" beside a 422 for
    // anyone not assignable would confirm an assignee the caller is not shown (another
    // organisation's, on a task that came with a transferred case). A task opened again needs
    // someone who can do it now.
    let reopened = patch.status == Some(TaskStatus::Open) && task.status != TaskStatus::Open;
    let judged = patch.assignee_id.or(reopened.then_some(task.assignee_id));
    let change = Change {
        kind: patch.kind,
        due_on: patch.due_on,
        assignee: patch.assignee_id.filter(|a| *a != task.assignee_id),
        status: patch.status.filter(|s| *s != task.status),
        notes,
    };
    let (updated, custody) = (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            let custody = access::lock_open_case(conn, &principal, victim.id, victim.organization_id).await?;
            if let Some(assignee) = judged {
                store::check_assignee(conn, victim.organization_id, victim.id, custody, assignee).await?;
            }
            let status = change.status;
            let updated = store::update(conn, task.id, version, change, principal.user_id)
                .await?
                .ok_or(ApiError::PreconditionFailed)?;
            let event = Event::new(AuditAction::TaskUpdated, AuditOutcome::Success)
                .by(&principal)
                .target("victim", victim.id)
                .details(serde_json::json!({ "task_id": task.id, "fields": fields, "status": status }));
            audit::record(conn, &ctx, event).await?;
            Ok((updated, custody))
        })
        .await?;
    let sight = redaction::sight(&principal, victim.id, victim.organization_id, Relation::None, custody)?;
    one(&state, &mut conn, &ctx, &principal, &updated, sight).await
}
