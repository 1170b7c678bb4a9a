//! Queries for victims and their identities.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use diesel::pg::{Pg, PgQueryBuilder};
use diesel::prelude::*;
use diesel::query_builder::{QueryBuilder, QueryFragment};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::model::{ValidVictim, VictimRow};
use crate::audit;
use crate::db::Runs;
use crate::db::fixed::{Named, fixed, named};
use crate::db::schema::{case_counters, referrals, transfers, victim_identities, victims};
use crate::domain::case_vocab::ReferralStatus;
use crate::domain::policy::{self, Custody, LIVE, Relation};
use crate::extract::RequestContext;
use crate::idempotency::CreateOnce;
use crate::privacy::crypto::Sealed;
use crate::privacy::identity::StoredIdentity;

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<VictimRow>> {
    victims::table.find(id).select(VictimRow::as_select()).first(conn).await.optional()
}

/// The victim, how it is referred to `org` and its custody as it concerns `user` (restricted,
/// assigned to them), in one query, if the victim is a candidate for the caller's sight: its
/// organisation's, referred to it, or any (`org` none: host auditors). The policy
/// (`policy::victim_sight`) still decides; this filter only makes a record the caller cannot see
/// cost what an unknown id costs, so response times do not reveal which ids exist (README, "Roles
/// and what each sees"): neither is read, decoded or sent. This is the one query of a victim's
/// referrals to an organisation; `policy::relation` reads them.
pub async fn find_in_scope(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    org: Option<Uuid>,
    user: Uuid,
) -> QueryResult<Option<(VictimRow, Relation, Custody)>> {
    // Texts written once per process, each a statement of its own type: prepared once per
    // connection, found again by its type and read by position. This is the hottest read of the
    // service; diesel-async writes a DSL query's text again on every call (D145), and finding each
    // of forty-four columns by name cost more than decoding them (D149).
    let rows = match org {
        Some(org) => in_scope::<OfOrganization>(conn, id, org, user).await?,
        None => in_scope::<Anywhere>(conn, id, Uuid::nil(), user).await?,
    };
    // One row per live referral to the caller (or one with none).
    let Some((case_file, _, _, restricted, assigned)) = <[_]>::first(&rows) else { return Ok(None) };
    let custody = Custody { restricted: restricted.is_some(), assigned: assigned.is_some() };
    let referrals = rows.iter().filter_map(|(_, status, identity_shared, ..)| status.zip(*identity_shared));
    let relation = policy::relation(referrals, case_file.consent_share_with_referral_partners);
    Ok(rows.into_iter().next().map(|(case_file, ..)| (case_file, relation, custody)))
}

/// The case file ($1), exactly `VictimRow`'s columns as diesel writes them, with its live referrals
/// to the caller's organisation ($2, statuses $3), whether it is restricted and whether the caller
/// ($4) is assigned to it.
type InScopeRow = (
    diesel::dsl::AsSelect<VictimRow, Pg>,
    diesel::sql_types::Nullable<diesel::sql_types::Text>,
    diesel::sql_types::Nullable<diesel::sql_types::Bool>,
    diesel::sql_types::Nullable<diesel::sql_types::Uuid>,
    diesel::sql_types::Nullable<diesel::sql_types::Uuid>,
);
/// A row of it: the case file, a referral's status and whether it shares the identity, and
/// whether the case is restricted and the caller assigned (non-null).
type InScope = (VictimRow, Option<ReferralStatus>, Option<bool>, Option<Uuid>, Option<Uuid>);

async fn in_scope<N: Named<Row = InScopeRow>>(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    caller: Uuid,
    user: Uuid,
) -> QueryResult<Vec<InScope>> {
    named::<N>()
        .bind::<diesel::sql_types::Uuid, _>(id)
        .bind::<diesel::sql_types::Uuid, _>(caller)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&LIVE[..])
        .bind::<diesel::sql_types::Uuid, _>(user)
        .load(conn)
        .await
}

/// A caller of an organisation ($2): its own victims, or those referred to it.
struct OfOrganization;
impl Named for OfOrganization {
    type Row = InScopeRow;
    fn sql() -> &'static str {
        static SQL: LazyLock<String> =
            LazyLock::new(|| in_scope_sql(" AND (victims.organization_id = $2 OR r.victim_id IS NOT NULL)"));
        &SQL
    }
}

/// A host auditor: any victim.
struct Anywhere;
impl Named for Anywhere {
    type Row = InScopeRow;
    fn sql() -> &'static str {
        static SQL: LazyLock<String> = LazyLock::new(|| in_scope_sql(""));
        &SQL
    }
}

fn in_scope_sql(filter: &str) -> String {
    format!(
        "SELECT {}, r.status, r.identity_shared, x.victim_id, a.user_id FROM victims \
         LEFT JOIN referrals r ON r.victim_id = victims.id AND r.to_organization_id = $2 AND r.status = ANY($3) \
         LEFT JOIN restricted_cases x ON x.victim_id = victims.id \
         LEFT JOIN case_assignments a ON a.victim_id = victims.id AND a.user_id = $4 \
         WHERE victims.id = $1{filter}",
        victim_columns()
    )
}

/// `"victims"."id", "victims"."organization_id", ...`: what the DSL selects for a `VictimRow`, in
/// the order `AsSelect<VictimRow>` reads them.
fn victim_columns() -> String {
    let mut out = PgQueryBuilder::default();
    VictimRow::as_select().to_sql(&mut out, &Pg).expect("a column list is always written");
    out.finish()
}

/// The latest accepted transfer of the victim's case from `org`, if any, and when it was handed
/// over: whether `org` is a former owner (`Relation::FormerOwner`), and up to when it sees the
/// case's records (D165). Asked for every id the caller's scope does not hold, so an unknown id
/// and a hidden one cost alike; reads no case file.
pub async fn handed_over_by(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    org: Uuid,
) -> QueryResult<Option<(Uuid, DateTime<Utc>)>> {
    transfers::table
        .filter(transfers::victim_id.eq(id))
        .filter(transfers::from_organization_id.eq(org))
        // Written out, as the partial index `transfers_by_victim` states it, so that a generic plan
        // of the statement may use it.
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("transfers.status = 'accepted'"))
        .filter(transfers::decided_at.is_not_null())
        .order(transfers::decided_at.desc())
        .select((transfers::id, transfers::decided_at.assume_not_null()))
        .first(conn)
        .await
        .optional()
}

/// The case file as the accepted transfer `transfer` handed it over (D166): the row it kept, read
/// back as a row of `victims` (a migration that adds a column to `victims` gives the kept copies a
/// value for it).
pub async fn case_file_kept(conn: &mut AsyncPgConnection, transfer: Uuid) -> QueryResult<Option<VictimRow>> {
    // Not a fixed statement: `victims.*` would be planned once per connection, and a column added
    // by a later migration would fail the cached plan of a process still running.
    diesel::sql_query(
        "SELECT victims.* FROM transfers t \
         CROSS JOIN LATERAL jsonb_populate_record(NULL::victims, t.case_file) AS victims WHERE t.id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(transfer)
    .get_result(conn)
    .await
    .optional()
}

/// Every case file of the victim that an accepted transfer kept for the organisation that handed
/// it over (D166): (transfer, that organisation, the case file), oldest first.
pub async fn handed_over(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Vec<(Uuid, Uuid, VictimRow)>> {
    #[derive(QueryableByName)]
    struct Kept {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        transfer_id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        read_by: Uuid,
        #[diesel(embed)]
        case_file: VictimRow,
    }
    let kept: Vec<Kept> = diesel::sql_query(
        "SELECT victims.*, t.id AS transfer_id, t.from_organization_id AS read_by FROM transfers t \
         CROSS JOIN LATERAL jsonb_populate_record(NULL::victims, t.case_file) AS victims \
         WHERE t.victim_id = $1 AND t.status = 'accepted' ORDER BY t.decided_at, t.id",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .load(conn)
    .await?;
    Ok(kept.into_iter().map(|k| (k.transfer_id, k.read_by, k.case_file)).collect())
}

/// How the victim is referred to `org` as it stands now, its referrals to `org` held for share
/// until the transaction ends (after the case's own lock, the order a referral's moves take): a
/// write on the strength of a referral is judged again under it, and no move of that referral
/// commits in between.
pub async fn relation_locked(conn: &mut AsyncPgConnection, id: Uuid, org: Uuid) -> QueryResult<Relation> {
    let referred: Vec<(ReferralStatus, bool)> = referrals::table
        .filter(referrals::victim_id.eq(id))
        .filter(referrals::to_organization_id.eq(org))
        .filter(referrals::status.eq_any(LIVE))
        .select((referrals::status, referrals::identity_shared))
        .for_share()
        .load(conn)
        .await?;
    let consent: bool =
        victims::table.find(id).select(victims::consent_share_with_referral_partners).first(conn).await?;
    Ok(policy::relation(referred, consent))
}

/// The organisation that holds a victim, if it exists (for filing a refusal in its audit log).
pub async fn owner_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Uuid>> {
    victims::table.find(id).select(victims::organization_id).first(conn).await.optional()
}

pub async fn next_case_number(conn: &mut impl Runs, org: Uuid) -> QueryResult<i32> {
    diesel::insert_into(case_counters::table)
        .values((case_counters::organization_id.eq(org), case_counters::last_number.eq(1)))
        .on_conflict(case_counters::organization_id)
        .do_update()
        .set(case_counters::last_number.eq(case_counters::last_number + 1))
        .returning(case_counters::last_number)
        .get_result(conn)
        .await
}

/// The columns of a case file from validated input (identity excluded).
macro_rules! case_columns {
    ($input:expr) => {{
        let i: &$crate::victims::model::ValidVictim = $input;
        (
            victims::status.eq(i.status),
            victims::trafficking_status.eq(i.trafficking_status),
            victims::identified_on.eq(i.identified_on),
            victims::identified_in.eq(i.identified_in),
            victims::identified_by.eq(i.identified_by),
            victims::operation.eq(i.operation.clone()),
            victims::gender.eq(i.gender),
            victims::age_at_identification.eq(i.age_at_identification),
            victims::is_minor.eq(i.is_minor.unwrap_or(false)),
            victims::citizenship.eq(i.citizenship.clone()),
            victims::migrant_status.eq(i.migrant_status),
            victims::country_of_exploitation.eq(i.country_of_exploitation),
            (
                victims::exploitation_types.eq(i.exploitation_types.clone()),
                victims::labour_sector.eq(i.labour_sector.clone()),
                victims::recruitment_methods.eq(i.recruitment_methods.clone()),
                victims::means_of_control.eq(i.means_of_control.clone()),
                victims::recruiter_relation.eq(i.recruiter_relation),
                victims::route.eq(serde_json::to_value(&i.route).unwrap_or_default()),
                victims::consent_services.eq(i.consent.services),
                victims::consent_share_with_referral_partners.eq(i.consent.share_with_referral_partners),
                victims::consent_anonymised_statistics.eq(i.consent.anonymised_statistics),
                victims::consent_recorded_at.eq(i.consent.recorded_at.or_else(|| Some(chrono::Utc::now()))),
            ),
            (
                victims::consent_method.eq(i.consent.method),
                victims::sex_exploitation_types.eq(i.sex_exploitation_types.clone()),
                victims::recruitment_platforms.eq(i.recruitment_platforms.clone()),
                victims::exploitation_platforms.eq(i.exploitation_platforms.clone()),
                victims::perpetrator_roles.eq(i.perpetrator_roles.clone()),
                victims::age_when_trafficked.eq(i.age_when_trafficked),
                victims::primary_language.eq(i.primary_language),
                victims::secondary_language.eq(i.secondary_language),
            ),
        )
    }};
}

pub(crate) use case_columns;

/// A new case file, created once however often the client retries (`idempotency`).
pub struct NewVictim<'a> {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub input: &'a ValidVictim,
    pub digest: Vec<u8>,
}

impl CreateOnce for NewVictim<'_> {
    type Row = VictimRow;

    async fn find(&self, conn: &mut AsyncPgConnection) -> QueryResult<Option<VictimRow>> {
        find(conn, self.id).await
    }

    /// The organisation's next case number and the case file, pipelined: the insert reads the
    /// number the counter's update has just written in this transaction, so the counter, which
    /// every create of the organisation waits for, is held one round trip less (D133).
    async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<Option<VictimRow>> {
        let shared: &AsyncPgConnection = conn;
        let (mut counter, mut case) = (shared, shared);
        let taken = case_counters::table
            .filter(case_counters::organization_id.eq(self.organization_id))
            .select(case_counters::last_number)
            .single_value()
            .assume_not_null();
        let insert = diesel::insert_into(victims::table)
            .values((
                victims::id.eq(self.id),
                victims::organization_id.eq(self.organization_id),
                victims::case_number.eq(taken),
                victims::create_digest.eq(&self.digest),
                victims::created_by.eq(self.user_id),
                victims::updated_by.eq(self.user_id),
                case_columns!(self.input),
            ))
            .on_conflict(victims::id)
            .do_nothing()
            .returning(VictimRow::as_returning())
            .get_result(&mut case);
        // Sent in this order (biased: the counter's future is polled first). Were the insert ever
        // to go first, it would read the number of the create before it and fail on the unique
        // case number (or on a null for an organisation's first case): loudly, never a duplicate.
        let (number, row) = tokio::join!(biased; next_case_number(&mut counter, self.organization_id), insert);
        number?;
        row.optional()
    }

    /// A retry comes from the client of the person who created the case: anyone else meets 409
    /// whatever they send, so a retry cannot serve to guess a case's content.
    fn is_retry_of(&self, existing: &VictimRow) -> bool {
        existing.organization_id == self.organization_id
            && existing.created_by == self.user_id
            && existing.create_digest == self.digest
    }
}

pub async fn delete_identity(conn: &mut AsyncPgConnection, victim: Uuid) -> QueryResult<()> {
    diesel::delete(victim_identities::table.find(victim)).execute(conn).await?;
    Ok(())
}

/// Writes a new version of the case file if `version` is still current; `None` when stale.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    version: i32,
    user: Uuid,
    input: &ValidVictim,
) -> QueryResult<Option<VictimRow>> {
    diesel::update(victims::table.find(id).filter(victims::version.eq(version)))
        .set((
            case_columns!(input),
            victims::version.eq(victims::version + 1),
            victims::updated_at.eq(diesel::dsl::now),
            victims::updated_by.eq(user),
        ))
        .returning(VictimRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// The sealed document and blind indexes of an identity: the one list of these columns, for
/// writing a new identity and rewriting one (a document number removed clears its index).
#[derive(Clone, Insertable, AsChangeset)]
#[diesel(table_name = victim_identities, treat_none_as_null = true)]
pub struct SealedColumns {
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
    name_index: Vec<Vec<u8>>,
    document_index: Option<Vec<u8>>,
}

impl From<StoredIdentity> for SealedColumns {
    fn from(stored: StoredIdentity) -> SealedColumns {
        let Sealed { key_id, nonce, ciphertext } = stored.sealed;
        SealedColumns {
            key_id,
            nonce,
            ciphertext,
            name_index: stored.name_index,
            document_index: stored.document_index,
        }
    }
}

/// A new identity row.
#[derive(Clone, Insertable)]
#[diesel(table_name = victim_identities)]
pub struct NewIdentity {
    pub victim_id: Uuid,
    pub organization_id: Uuid,
    #[diesel(embed)]
    pub sealed: SealedColumns,
}

/// A stored identity as read back: whose it is and its sealed document.
#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = victim_identities)]
pub struct SealedIdentity {
    pub victim_id: Uuid,
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl From<SealedIdentity> for Sealed {
    fn from(row: SealedIdentity) -> Sealed {
        Sealed { key_id: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext }
    }
}

pub async fn store_identity(conn: &mut impl Runs, victim: Uuid, org: Uuid, stored: StoredIdentity) -> QueryResult<()> {
    let sealed = SealedColumns::from(stored);
    diesel::insert_into(victim_identities::table)
        .values(NewIdentity { victim_id: victim, organization_id: org, sealed: sealed.clone() })
        .on_conflict(victim_identities::victim_id)
        .do_update()
        .set((sealed, victim_identities::updated_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn sealed_identity(conn: &mut AsyncPgConnection, victim: Uuid) -> QueryResult<Option<Sealed>> {
    let row = victim_identities::table.find(victim).select(SealedIdentity::as_select()).first(conn).await.optional()?;
    Ok(row.map(Sealed::from))
}

/// A victim's sealed identity, read by the statement that records the read: `events` (one or two,
/// `audit::read_events`) are inserted exactly when the identity is there to return, in the same
/// snapshot as the read, and the identity comes back only once they are written and, outside a
/// transaction, committed (D136). One round trip where a read and then an insert took two.
pub async fn sealed_identity_recorded(
    conn: &mut AsyncPgConnection,
    ctx: &RequestContext,
    victim: Uuid,
    events: &[audit::Event],
) -> QueryResult<Option<Sealed>> {
    macro_rules! read_recorded {
        ($values:literal) => {
            concat!(
                "WITH sealed AS (SELECT victim_id, key_id, nonce, ciphertext FROM victim_identities WHERE victim_id = $1), \
                 recorded AS (INSERT INTO audit_events (",
                audit::audit_columns!(),
                ") SELECT e.* FROM (VALUES ",
                $values,
                ") AS e WHERE EXISTS (SELECT 1 FROM sealed)) \
                 SELECT victim_id, key_id, nonce, ciphertext FROM sealed"
            )
        };
    }
    const ONE: &str = read_recorded!("($2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
    const TWO: &str = read_recorded!(
        "($2, $3, $4, $5, $6, $7, $8, $9, $10, $11), ($12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
    );
    let sql = match events.len() {
        1 => ONE,
        2 => TWO,
        _ => return Err(diesel::result::Error::QueryBuilderError("an identity read records one or two events".into())),
    };
    let statement = audit::bind_all(fixed(sql).bind::<diesel::sql_types::Uuid, _>(victim), ctx, events);
    // `load`, not `get_result`: it waits for the end of the statement, and outside a transaction for
    // its commit, before the identity is handed on; `get_result` returns with the first row.
    let rows: Vec<SealedIdentity> = statement.load(conn).await?;
    Ok(rows.into_iter().next().map(Sealed::from))
}

pub async fn sealed_identities(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<(Uuid, Sealed)>> {
    let rows: Vec<SealedIdentity> = victim_identities::table
        .filter(victim_identities::victim_id.eq_any(ids))
        .select(SealedIdentity::as_select())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|row| (row.victim_id, Sealed::from(row))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row is read by position: the four columns after the case file must be, in this order,
    /// what `find_in_scope` takes them for. Swapped, "restricted" and "assigned" would trade
    /// places, and an unassigned caseworker would read a restricted identity.
    #[test]
    fn the_scope_texts_select_what_the_row_reads() {
        for sql in [OfOrganization::sql(), Anywhere::sql()] {
            let expected = format!(
                "SELECT {}, r.status, r.identity_shared, x.victim_id, a.user_id FROM victims ",
                victim_columns()
            );
            assert!(sql.starts_with(&expected), "{sql}");
            assert!(
                sql.contains("LEFT JOIN restricted_cases x ON") && sql.contains("LEFT JOIN case_assignments a ON"),
                "{sql}"
            );
        }
    }
}
