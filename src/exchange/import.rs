//! Reading HTCDS files into an organisation's cases: every row checked first, then all of them
//! written in one transaction, or none (D114). The HTTP handler (`routes`) and `haven import`
//! both call [`run`].

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::plan;
use super::sheet::{self, Format};
use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::Pool;
use crate::db::schema::{transfers, victims};
use crate::domain::case_vocab::ClosureReason;
use crate::domain::policy::{self, Custody};
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestContext;
use crate::privacy::identity::{self, Identity};
use crate::privacy::vault::Vault;
use crate::victims::model::{CaseFile, ValidVictim, VictimRow};
use crate::victims::{access, consent, custody, store};

/// One problem with one row: the spreadsheet's own row number (1 is the first row of the file) and
/// the column, never the cell's content.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowIssue {
    pub row: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub message: String,
}

/// What an import did, or (a dry run) would do.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Rows read (blank rows and IOM's row of field labels are not counted).
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    /// Rows that match their case as it stands: importing the same file again changes nothing.
    pub unchanged: usize,
    /// Headers that name no HTCDS or Haven column; their cells are not read.
    pub ignored_columns: Vec<String>,
    /// Every row error; an import with any writes nothing.
    pub errors: Vec<RowIssue>,
    /// What was assumed where a row lacked something (an identification date, a status).
    pub warnings: Vec<RowIssue>,
}

/// A row's case, ready to be written.
struct Planned {
    row: usize,
    input: ValidVictim,
    closure: Option<ClosureReason>,
}

/// What a planned row does to the case it names.
enum Step {
    Create(Uuid),
    Update(Box<VictimRow>),
    Unchanged,
}

/// The principal `haven import` acts as: an enabled caseworker whose access is approved.
pub async fn caseworker(pool: &Pool, email: &crate::domain::Email) -> ApiResult<Option<Principal>> {
    use crate::db::schema::{organizations, users};
    let mut conn = pool.get().await?;
    let found: Option<(Uuid, Uuid, String)> = users::table
        .inner_join(organizations::table.on(organizations::id.eq(users::organization_id)))
        .filter(users::email.eq(email.as_str()))
        .filter(users::role.eq(crate::domain::Role::Caseworker))
        .filter(users::disabled.eq(false))
        .filter(users::awaiting_approval.eq(false))
        .filter(users::password_hash.is_not_null())
        .select((users::id, users::organization_id, organizations::kind))
        .first(&mut conn)
        .await
        .optional()?;
    Ok(found.map(|(user_id, organization_id, kind)| Principal {
        user_id,
        organization_id,
        role: crate::domain::Role::Caseworker,
        session_id: Uuid::nil(),
        is_host: kind == "host",
    }))
}

static IMPORTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Checks and (unless `dry_run`, and only without errors) writes a file's cases into the caller's
/// organisation.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    pool: &Pool,
    vault: &Vault,
    principal: &Principal,
    ctx: &RequestContext,
    format: Format,
    bytes: &[u8],
    dry_run: bool,
    progress: &indicatif::ProgressBar,
) -> ApiResult<ImportReport> {
    policy::exchange_cases(principal).require()?;
    // One import at a time in a process: each may hold a file's rows, its plan and its cases' locks
    // (`sheet::Limits` bounds one), and imports are rare. A caller waits, within its deadline.
    let turn = IMPORTING.acquire().await.map_err(|e| ApiError::internal("import", e))?;
    let org = principal.organization_id;
    let mut report = ImportReport { dry_run, ..Default::default() };
    // Reading a workbook is work for a blocking thread, not for the server's executor.
    let owned = bytes.to_vec();
    // The turn goes with the read and comes back: a request dropped at its deadline leaves the read
    // running, which keeps the turn until it ends.
    let (rows, _turn) = tokio::task::spawn_blocking(move || (sheet::read(format, &owned), turn))
        .await
        .map_err(|e| ApiError::internal("import", e))?;
    let rows = rows.map_err(|m| ApiError::validation("body", m))?;
    let parsed = plan::parse(vault.keys(), org, &rows, &mut report);
    let mut conn = pool.get().await?;
    // Judged and read in one snapshot (D157): a dry run's counts compare the file with identities
    // the caller may see, as they stood when their custody was judged.
    let steps = access::one_snapshot(&mut conn)
        .run::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            against_stored(vault, conn, principal, ctx, parsed, &mut report).await
        })
        .await?;
    for (_, step) in &steps {
        match step {
            Step::Create(_) => report.created += 1,
            Step::Update(_) => report.updated += 1,
            Step::Unchanged => report.unchanged += 1,
        }
    }
    let event = Event::new(AuditAction::CasesImported, AuditOutcome::Success).by(principal).details(json!({
        "dry_run": dry_run, "rows": report.rows, "created": report.created, "updated": report.updated,
        "unchanged": report.unchanged, "errors": report.errors.len(),
    }));
    if dry_run || !report.errors.is_empty() {
        audit::record(&mut conn, ctx, event).await?;
        return Ok(report);
    }
    (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            progress.set_length(steps.len() as u64);
            for (p, step) in &steps {
                write(vault, conn, ctx, principal, p, step).await?;
                progress.inc(1);
            }
            audit::record(conn, ctx, event).await?;
            Ok(())
        })
        .await?;
    Ok(report)
}

/// Plans each parsed row against the organisation's stored cases: which it creates, updates or
/// leaves, and which it refuses (into `report`). Stored identities are opened, and their reading
/// recorded, to compare the file's identity cells with them.
async fn against_stored(
    vault: &Vault,
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    ctx: &RequestContext,
    mut parsed: Vec<plan::Parsed>,
    report: &mut ImportReport,
) -> ApiResult<Vec<(Planned, Step)>> {
    let org = principal.organization_id;

    // An id from the file names the case when it is one of this organisation's; any other id (a
    // case of the organisation the file came from, or none) becomes a stable id of its own here, so
    // importing the same file again finds the same cases, and no id reveals another's case.
    let given: Vec<Uuid> = parsed.iter().filter_map(|p| p.given).collect();
    let from_cells: HashSet<usize> = parsed.iter().filter(|p| p.given.is_none()).map(|p| p.row).collect();
    let own_given: HashSet<Uuid> = victims::table
        .filter(victims::id.eq_any(&given))
        .filter(victims::organization_id.eq(org))
        .select(victims::id)
        .load::<Uuid>(conn)
        .await?
        .into_iter()
        .collect();
    // A case this organisation handed over, named by the id its own earlier export wrote, is
    // refused as the derived id of one is below: made again here under an id of its own, it would
    // bring back an identity that is now the new owner's alone, or that the new owner erased.
    let foreign: Vec<Uuid> = given.iter().copied().filter(|id| !own_given.contains(id)).collect();
    let handed_over: HashSet<Uuid> = transfers::table
        .filter(transfers::victim_id.eq_any(&foreign))
        .filter(transfers::from_organization_id.eq(org))
        .filter(transfers::status.eq("accepted"))
        .select(transfers::victim_id)
        .load::<Uuid>(conn)
        .await?
        .into_iter()
        .collect();
    let mut rows_handed_over = HashSet::new();
    for p in &mut parsed {
        if let Some(id) = p.given.filter(|id| !own_given.contains(id)) {
            if handed_over.contains(&id) {
                rows_handed_over.insert(p.row);
            }
            p.given = None;
        }
    }
    let ids: Vec<Uuid> = parsed.iter().map(|p| p.given.unwrap_or(p.derived)).collect();
    let ids = away_from_hidden(vault, conn, principal, &parsed, &from_cells, ids).await?;
    let found: Vec<VictimRow> =
        victims::table.filter(victims::id.eq_any(&ids)).select(VictimRow::as_select()).load(conn).await?;
    // A derived id of this organisation's that another now holds: a case it has transferred away.
    let moved: HashSet<Uuid> = found.iter().filter(|r| r.organization_id != org).map(|r| r.id).collect();
    let existing: HashMap<Uuid, VictimRow> =
        found.into_iter().filter(|r| r.organization_id == org).map(|r| (r.id, r)).collect();
    let custody = custody::custody_of(conn, &existing.keys().copied().collect::<Vec<_>>(), principal.user_id).await?;
    // The stored identities the file's identity cells apply to, in one query.
    let wanted: Vec<Uuid> = parsed
        .iter()
        .zip(&ids)
        .filter(|(p, id)| p.doc.contains_key("identity") && existing.contains_key(id))
        .filter(|(_, id)| policy::write_victim(principal, org, custody(**id)).require().is_ok())
        .map(|(_, id)| *id)
        .collect();
    let mut sealed: HashMap<Uuid, _> = store::sealed_identities(conn, &wanted).await?.into_iter().collect();
    let openers = vault.openers(&wanted).await?;
    // The file's cases whose identity was erased and not reopened since (D154), in one query.
    let erased_rows: Vec<Uuid> = existing.values().filter(|r| r.erased_at.is_some()).map(|r| r.id).collect();
    let erased = crate::victims::erasure::erased_among(conn, &erased_rows).await?;
    let mut seen = HashSet::new();
    let mut read = Vec::new();
    let mut steps = Vec::with_capacity(parsed.len());
    for (p, id) in parsed.into_iter().zip(ids) {
        if !seen.insert(id) {
            report.errors.push(plan::issue(
                p.row,
                Some("hvn_CaseId"),
                "names a case an earlier row of the file already names",
            ));
            continue;
        }
        if moved.contains(&id) || rows_handed_over.contains(&p.row) {
            report.errors.push(plan::issue(p.row, None, "its case has been transferred to another organisation"));
            continue;
        }
        let Some(row) = existing.get(&id) else {
            match plan::new_case(&p, report) {
                Ok((input, closure)) => steps.push((Planned { row: p.row, input, closure }, Step::Create(id))),
                Err(errors) => report.errors.extend(errors),
            }
            continue;
        };
        if p.doc.contains_key("identity") && erased.contains(&id) {
            report.errors.push(plan::issue(
                p.row,
                None,
                "its case's identity was erased: no identity is recorded on it again unless it is reopened",
            ));
            continue;
        }
        let may_write = policy::write_victim(principal, org, custody(id)).require().is_ok();
        let identity = match (p.doc.contains_key("identity"), may_write) {
            (false, _) => None,
            (true, false) => {
                report.errors.push(plan::issue(
                    p.row,
                    Some("hvn_CaseId"),
                    "names a restricted case you are not assigned to",
                ));
                continue;
            }
            (true, true) => match sealed.remove(&id) {
                Some(sealed) => {
                    read.push(id);
                    let opened = identity::open(&openers.of(id), id, &sealed);
                    Some(opened.map_err(|e| ApiError::internal("identity", e))?.unwrap_or_default())
                }
                None => Some(Identity::default()),
            },
        };
        let input = match plan::changed_case(&p, row, identity.clone()) {
            Ok(input) => input,
            Err(errors) => {
                report.errors.extend(errors);
                continue;
            }
        };
        let mut current = CaseFile::from(row).as_input();
        if input.consent.recorded_at.is_none() {
            current.consent.recorded_at = None;
        }
        let unchanged = plan::comparable(&input) == plan::comparable(&current) && input.identity == identity;
        // A row naming one of the organisation's cases by id comes from its own export: it changes
        // the case only from the version it was written at, as a PATCH only with `If-Match`, so an
        // old file cannot undo what was recorded since (a consent withdrawn, above all).
        if !unchanged && p.given.is_some() && p.version != Some(row.version) {
            let message = match p.version {
                Some(v) => format!(
                    "its case changed since this file was exported (version {v}, now {}): export it again and make the change there",
                    row.version
                ),
                None => "changes a case without the version it was exported at (hvn_Version): export it again and make the change there".to_owned(),
            };
            report.errors.push(plan::issue(p.row, Some("hvn_Version"), message));
            continue;
        }
        let step = match (unchanged, may_write) {
            (true, _) => Step::Unchanged,
            (false, true) => Step::Update(Box::new(row.clone())),
            (false, false) => {
                report.errors.push(plan::issue(
                    p.row,
                    Some("hvn_CaseId"),
                    "names a restricted case you are not assigned to",
                ));
                continue;
            }
        };
        steps.push((Planned { row: p.row, input, closure: None }, step));
    }
    if !read.is_empty() {
        // Stored identities were opened to apply the file's identity cells to them.
        let event = Event::new(AuditAction::IdentityRead, AuditOutcome::Success)
            .by(principal)
            .details(json!({ "victim_ids": read, "import": "htcds" }));
        audit::record(conn, ctx, event).await?;
    }
    Ok(steps)
}

/// A row without any id is found by a digest of its cells, identity cells included. Where that
/// finds a case whose identity the caller may not read (restricted to others, erased, another
/// organisation's), saying so would confirm a guessed identity to a colleague (D175): such a row is
/// a new case instead, under an id derived from the one it met, exactly as a row that met nothing
/// would be. The id met may be hidden too (a case the caller made from the same row and then
/// erased, or restricted to another): the rounds follow that chain, always four of one query each,
/// so a match costs the statements a miss costs, and a chain longer than that ends in a random id,
/// so it is never refused (a refusal would tell a chain one link longer from another).
async fn away_from_hidden(
    vault: &Vault,
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    parsed: &[plan::Parsed],
    from_cells: &HashSet<usize>,
    mut ids: Vec<Uuid>,
) -> ApiResult<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Met {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        organization_id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        erased: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        restricted: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        assigned: bool,
    }
    let facts = format!(
        "SELECT v.id, v.organization_id, {erased} AS erased, \
         EXISTS (SELECT 1 FROM restricted_cases r WHERE r.victim_id = v.id) AS restricted, \
         EXISTS (SELECT 1 FROM case_assignments a WHERE a.victim_id = v.id AND a.user_id = $2) AS assigned \
         FROM victims v WHERE v.id = ANY($1)",
        erased = crate::victims::erasure::ERASED
    );
    // Every row named by id: nothing is found by its cells (whether a row has an id is the file's).
    if from_cells.is_empty() {
        return Ok(ids);
    }
    let org = principal.organization_id;
    let mut stepped = vec![false; ids.len()];
    for _ in 0..4 {
        let asked: Vec<Uuid> =
            parsed.iter().zip(&ids).filter(|(p, _)| from_cells.contains(&p.row)).map(|(_, id)| *id).collect();
        let met: Vec<Met> = diesel::sql_query(&facts)
            .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&asked)
            .bind::<diesel::sql_types::Uuid, _>(principal.user_id)
            .load(conn)
            .await?;
        let hidden: HashSet<Uuid> = met
            .iter()
            .filter(|m| {
                let custody = Custody { restricted: m.restricted, assigned: m.assigned };
                m.erased || policy::write_victim(principal, m.organization_id, custody).require().is_err()
            })
            .map(|m| m.id)
            .collect();
        for ((p, id), stepped) in parsed.iter().zip(ids.iter_mut()).zip(stepped.iter_mut()) {
            *stepped = from_cells.contains(&p.row) && hidden.contains(id);
            if *stepped {
                *id = plan::derived_id(vault.keys(), org, &json!({ "beside": *id }));
            }
        }
    }
    // Stepped in the last round, to an id no round looked at: a new case whose id nothing derives.
    for (id, stepped) in ids.iter_mut().zip(&stepped) {
        if *stepped {
            *id = Uuid::new_v4();
        }
    }
    Ok(ids)
}

async fn write(
    vault: &Vault,
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    principal: &Principal,
    p: &Planned,
    step: &Step,
) -> ApiResult<()> {
    let org = principal.organization_id;
    let identity = p.input.identity.as_ref();
    match step {
        Step::Unchanged => Ok(()),
        Step::Create(id) => {
            let digest = crate::idempotency::digest(vault.keys(), &serde_json::to_value(&*p.input).unwrap_or_default());
            let new =
                store::NewVictim { id: *id, organization_id: org, user_id: principal.user_id, input: &p.input, digest };
            let (row, created) = crate::idempotency::create_once(conn, &new).await?;
            if !created {
                return Ok(()); // a concurrent import of the same file wrote it first
            }
            if let Some(identity) = identity {
                let sealed = identity::seal(&vault.sealer(*id).await?, *id, identity);
                store::store_identity(conn, *id, org, sealed).await?;
            }
            custody::assign_creator(conn, *id, org, principal.user_id).await?;
            consent::record(conn, None, &row, principal.user_id).await?;
            let event = Event::new(AuditAction::VictimCreated, AuditOutcome::Success)
                .by(principal)
                .target("victim", *id)
                .details(
                    json!({ "case_number": row.case_number, "identity": identity.is_some(), "import_row": p.row }),
                );
            audit::record(conn, ctx, event).await?;
            if let Some(reason) = p.closure {
                close(conn, &row, reason, principal.user_id).await?;
                let event = Event::new(AuditAction::VictimClosed, AuditOutcome::Success)
                    .by(principal)
                    .target("victim", *id)
                    .details(json!({ "reason": reason, "import_row": p.row }));
                audit::record(conn, ctx, event).await?;
            }
            Ok(())
        }
        Step::Update(before) => {
            let id = before.id;
            let custody = custody::lock(conn, id, principal.user_id, org).await?;
            policy::write_victim(principal, org, custody).require()?;
            // Erased since the file was read: judged again under the lock.
            if identity.is_some() && crate::victims::erasure::erased(conn, id).await? {
                return Err(crate::victims::erasure::refused_on_erased());
            }
            let updated =
                store::update(conn, id, before.version, principal.user_id, &p.input).await?.ok_or_else(|| {
                    ApiError::Conflict("A case changed while the file was imported: import it again.".into())
                })?;
            if let Some(identity) = identity {
                let sealed = identity::seal(&vault.sealer(id).await?, id, identity);
                store::store_identity(conn, id, org, sealed).await?;
            }
            consent::record(conn, Some(before), &updated, principal.user_id).await?;
            consent::announce_withdrawal(conn, before, &updated).await?;
            let event = Event::new(AuditAction::VictimUpdated, AuditOutcome::Success)
                .by(principal)
                .target("victim", id)
                .details(json!({ "version": updated.version, "import_row": p.row }));
            audit::record(conn, ctx, event).await?;
            Ok(())
        }
    }
}

async fn close(conn: &mut AsyncPgConnection, row: &VictimRow, reason: ClosureReason, by: Uuid) -> ApiResult<()> {
    let (status, _) = crate::victims::closure::record_closure(conn, row.id, row.organization_id, reason, by).await?;
    diesel::update(victims::table.find(row.id))
        .set((
            victims::status.eq(status),
            victims::version.eq(victims::version + 1),
            victims::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
