//! A case's tasks: follow-ups with a kind, a due date, an assignee, a status and identity-grade
//! notes (sealed, shown only to caseworkers entitled to the victim's identity). Tasks are seen by
//! whoever sees the case, and written by whoever may write it (`policy::write_victim`).

pub mod routes;
mod store;

pub use store::cancel_open;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::tasks;
use crate::domain::case_vocab::{TaskKind, TaskStatus};
use crate::privacy::redaction::{Gated, NotesPart, View};
use crate::privacy::staff::StaffSight;

/// A task as a client creates it; it starts `open`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    /// Client-chosen id; repeating a create with the same id and body returns the task.
    #[serde(default)]
    pub id: Option<Uuid>,
    pub kind: TaskKind,
    /// The day it is due; from the next day (UTC) an open task is overdue.
    pub due_on: NaiveDate,
    /// An enabled caseworker of the case's organisation (of a restricted case, one assigned to
    /// it); you when absent.
    #[serde(default)]
    pub assignee_id: Option<Uuid>,
    /// Identity-grade free text: encrypted, shown only to caseworkers who may see the identity.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub notes: Option<String>,
}

/// Changes to a task; at least one field. `status: done` records when it was done; `notes: null`
/// removes the notes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct TaskPatch {
    #[serde(default)]
    #[schema(value_type = TaskKind)]
    pub kind: Option<TaskKind>,
    #[serde(default)]
    #[schema(value_type = NaiveDate)]
    pub due_on: Option<NaiveDate>,
    #[serde(default)]
    #[schema(value_type = Uuid)]
    pub assignee_id: Option<Uuid>,
    #[serde(default)]
    #[schema(value_type = TaskStatus)]
    pub status: Option<TaskStatus>,
    /// Replaces the notes; `null` removes them.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub notes: Option<Option<String>>,
}

/// A new task, created once however often the client retries (`idempotency`).
#[derive(Insertable)]
#[diesel(table_name = tasks)]
pub struct NewTask {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub organization_id: Uuid,
    pub kind: TaskKind,
    pub due_on: NaiveDate,
    pub assignee_id: Uuid,
    pub notes_key_id: Option<String>,
    pub notes_nonce: Option<Vec<u8>>,
    pub notes_ciphertext: Option<Vec<u8>>,
    pub create_digest: Vec<u8>,
    pub created_by: Uuid,
    pub updated_by: Uuid,
}

crate::create_once_by_id!(NewTask => TaskRow, tasks);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tasks)]
pub struct TaskRow {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub organization_id: Uuid,
    pub kind: TaskKind,
    pub due_on: NaiveDate,
    pub assignee_id: Uuid,
    pub status: TaskStatus,
    pub completed_at: Option<DateTime<Utc>>,
    pub notes_key_id: Option<String>,
    pub notes_nonce: Option<Vec<u8>>,
    pub notes_ciphertext: Option<Vec<u8>>,
    pub version: i32,
    pub create_digest: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub created_by: Uuid,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Uuid,
}

/// A task without notes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Task {
    pub id: Uuid,
    pub victim_id: Uuid,
    pub kind: TaskKind,
    pub due_on: NaiveDate,
    /// The caseworker it is assigned to; absent for other organisations' callers but host auditors
    /// (who works a case is its organisation's to know).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<Uuid>,
    pub status: TaskStatus,
    /// Open and past its due date (UTC).
    pub overdue: bool,
    /// When it was marked done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The task's version, also its `ETag` (send it as `If-Match` to change the task).
    pub version: i32,
    pub created_at: DateTime<Utc>,
    /// Who added it; absent for other organisations' callers but host auditors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<Uuid>,
    /// The last change (for client sync). An erasure of its text does not move it: the
    /// erasure's tombstone (`GET /changes`) tells clients, and a change sent with the version
    /// before it is refused (412) until the record is fetched again.
    pub updated_at: DateTime<Utc>,
}

impl Gated for Task {
    type Part = NotesPart;

    const VIEW: &'static str = "TaskView";
    const VIEW_DESCRIPTION: &'static str =
        "A task as one caller may see it: with notes (caseworkers entitled to the identity) or without.";
    const DISCLOSED: &'static str = "TaskWithNotes";
    const DISCLOSED_DESCRIPTION: &'static str = "A task with its notes, for callers holding an identity grant.";

    fn victim_id(&self) -> Uuid {
        self.victim_id
    }
}

/// A task as one caller may see it.
pub type TaskView = View<Task>;

/// Whether a task is overdue on `today`: open, and due before it.
pub fn is_overdue(status: TaskStatus, due_on: NaiveDate, today: NaiveDate) -> bool {
    status == TaskStatus::Open && due_on < today
}

/// Today in UTC, the calendar by which tasks fall due.
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

impl Task {
    /// The staff a task names, for the `StaffSight` its view is built with.
    pub fn staff(r: &TaskRow) -> [Uuid; 2] {
        [r.assignee_id, r.created_by]
    }

    pub fn of(r: &TaskRow, today: NaiveDate, staff: &StaffSight) -> Task {
        Task {
            id: r.id,
            victim_id: r.victim_id,
            kind: r.kind,
            due_on: r.due_on,
            assignee_id: staff.show(r.assignee_id),
            status: r.status,
            overdue: is_overdue(r.status, r.due_on, today),
            completed_at: r.completed_at,
            version: r.version,
            created_at: r.created_at,
            created_by: staff.show(r.created_by),
            updated_at: r.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_overdue_from_the_day_after_it_is_due_while_open() {
        let due = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let next = due.succ_opt().unwrap();
        assert!(!is_overdue(TaskStatus::Open, due, due), "due today is not overdue");
        assert!(is_overdue(TaskStatus::Open, due, next));
        assert!(!is_overdue(TaskStatus::Done, due, next));
        assert!(!is_overdue(TaskStatus::Cancelled, due, next));
    }
}
