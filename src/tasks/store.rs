//! Tasks as stored: the filtered page, the assignee rule, changes under a version, and what
//! closing a case does to its open tasks.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::TaskRow;
use crate::db::schema::{case_assignments, tasks};
use crate::domain::case_vocab::{TaskKind, TaskStatus};
use crate::domain::policy::Custody;
use crate::error::{ApiError, ApiResult};
use crate::privacy::crypto::OptionalSealed;
use crate::victims::custody;

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<TaskRow>> {
    tasks::table.find(id).select(TaskRow::as_select()).first(conn).await.optional()
}

/// Whose tasks a list holds.
pub enum Scope {
    /// One case's, written (made or last changed) up to a time when one is given
    /// (`access::Visible::until`).
    Case(Uuid, Option<DateTime<Utc>>),
    /// An organisation's (`None`: every organisation's, for host auditors).
    Organization(Option<Uuid>),
}

/// The filters of a task list, checked.
pub struct Filters {
    pub assignee: Option<Uuid>,
    pub status: Option<TaskStatus>,
    pub kind: Option<TaskKind>,
    pub due_before: Option<NaiveDate>,
    /// `Some(true)`: only overdue tasks on this day; `Some(false)`: none of them.
    pub overdue: Option<(bool, NaiveDate)>,
    pub updated_since: Option<DateTime<Utc>>,
    pub limit: i64,
    pub after: Option<Uuid>,
}

/// A page of tasks in id order, and whether more follow.
pub async fn page(conn: &mut AsyncPgConnection, scope: Scope, f: &Filters) -> QueryResult<(Vec<TaskRow>, bool)> {
    let mut sql = tasks::table.select(TaskRow::as_select()).into_boxed();
    sql = match scope {
        Scope::Case(victim, None) => sql.filter(tasks::victim_id.eq(victim)),
        Scope::Case(victim, Some(until)) => sql.filter(tasks::victim_id.eq(victim)).filter(tasks::updated_at.le(until)),
        Scope::Organization(Some(org)) => sql.filter(tasks::organization_id.eq(org)),
        Scope::Organization(None) => sql,
    };
    if let Some(assignee) = f.assignee {
        sql = sql.filter(tasks::assignee_id.eq(assignee));
    }
    if let Some(status) = f.status {
        sql = sql.filter(tasks::status.eq(status));
    }
    if let Some(kind) = f.kind {
        sql = sql.filter(tasks::kind.eq(kind));
    }
    if let Some(day) = f.due_before {
        sql = sql.filter(tasks::due_on.lt(day));
    }
    match f.overdue {
        Some((true, today)) => sql = sql.filter(tasks::status.eq(TaskStatus::Open)).filter(tasks::due_on.lt(today)),
        Some((false, today)) => sql = sql.filter(tasks::status.ne(TaskStatus::Open).or(tasks::due_on.ge(today))),
        None => {}
    }
    if let Some(since) = f.updated_since {
        sql = sql.filter(tasks::updated_at.ge(since));
    }
    if let Some(after) = f.after {
        sql = sql.filter(tasks::id.gt(after));
    }
    let mut rows: Vec<TaskRow> = sql.order(tasks::id.asc()).limit(f.limit + 1).load(conn).await?;
    let more = rows.len() as i64 > f.limit;
    rows.truncate(f.limit as usize);
    Ok((rows, more))
}

/// A task's assignee must be able to do it: an enabled caseworker of the case's organisation, and
/// of a restricted case one of its assigned caseworkers (the notes are identity-grade). Refused 422
/// on `assignee_id`.
pub async fn check_assignee(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    victim: Uuid,
    custody: Custody,
    assignee: Uuid,
) -> ApiResult<()> {
    let refused = || ApiError::validation("assignee_id", "must be an enabled caseworker who works this case");
    if custody::not_caseworkers_of(conn, org, &[assignee]).await? > 0 {
        return Err(refused());
    }
    if custody.restricted {
        let assigned: bool = diesel::select(diesel::dsl::exists(case_assignments::table.find((victim, assignee))))
            .get_result(conn)
            .await?;
        if !assigned {
            return Err(refused());
        }
    }
    Ok(())
}

/// What a patch changes, resolved against the stored task.
pub struct Change {
    pub kind: Option<TaskKind>,
    pub due_on: Option<NaiveDate>,
    pub assignee: Option<Uuid>,
    /// The new status, when it changes.
    pub status: Option<TaskStatus>,
    /// New sealed notes (all `None`: removed), when they change.
    pub notes: Option<OptionalSealed>,
}

/// Applies `change` to version `version` of a task, as a new version; `None` when the version
/// moved on meanwhile.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    version: i32,
    change: Change,
    by: Uuid,
) -> QueryResult<Option<TaskRow>> {
    let (key_id, nonce, ciphertext) = match change.notes {
        Some((k, n, c)) => {
            (Some(tasks::notes_key_id.eq(k)), Some(tasks::notes_nonce.eq(n)), Some(tasks::notes_ciphertext.eq(c)))
        }
        None => (None, None, None),
    };
    // One of the two at most: the same column never appears twice in the statement.
    let done_now = (change.status == Some(TaskStatus::Done)).then(|| tasks::completed_at.eq(crate::db::now_nullable()));
    let undone =
        change.status.filter(|s| *s != TaskStatus::Done).map(|_| tasks::completed_at.eq(None::<DateTime<Utc>>));
    diesel::update(tasks::table.find(id).filter(tasks::version.eq(version)))
        .set((
            change.kind.map(|k| tasks::kind.eq(k)),
            change.due_on.map(|d| tasks::due_on.eq(d)),
            change.assignee.map(|a| tasks::assignee_id.eq(a)),
            change.status.map(|s| tasks::status.eq(s)),
            done_now,
            undone,
            key_id,
            nonce,
            ciphertext,
            tasks::version.eq(tasks::version + 1),
            tasks::updated_at.eq(diesel::dsl::now),
            tasks::updated_by.eq(by),
        ))
        .returning(TaskRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Cancels a case's open tasks, as new versions of them (syncing clients receive them again):
/// what closing the case does. Returns how many.
pub async fn cancel_open(conn: &mut AsyncPgConnection, victim: Uuid, by: Uuid) -> QueryResult<usize> {
    diesel::update(tasks::table.filter(tasks::victim_id.eq(victim)).filter(tasks::status.eq(TaskStatus::Open)))
        .set((
            tasks::status.eq(TaskStatus::Cancelled),
            tasks::version.eq(tasks::version + 1),
            tasks::updated_at.eq(diesel::dsl::now),
            tasks::updated_by.eq(by),
        ))
        .execute(conn)
        .await
}
