//! The SQL of report tables, from whitelisted fragments only: each dimension is an expression
//! and the joins it needs; callers' values are always bound parameters. A table is counted
//! exactly (a caseworker's own case load) or with each victim's contribution bounded (guarded
//! releases): a multi-valued dimension then keeps at most `Dimension::bound()` of a victim's
//! values, the ones with the smallest keyed hash of (victim, value), so every release and every
//! rollup rebuild keeps the same ones, and nobody without the key can tell which.

use chrono::NaiveDate;
use diesel::pg::Pg;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{Array, BigInt, Date, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::TableQuery;
use super::catalogue::Dimension;
use crate::error::ApiError;

/// Whose victims a run counts.
#[derive(Debug, Clone, Copy)]
pub enum Population {
    /// A caseworker's own organisation, every victim: their own case load, not a release.
    OwnOrganization(Uuid),
    /// Victims consenting to anonymised statistics, of organisations that share statistics,
    /// pooled: what any release to admins and partners counts. The caller's own organisation is
    /// left out: its staff know (or could plant) its records, and could subtract them.
    Pooled { caller: Uuid },
}

/// The framework's own filters, at month precision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub from: Option<NaiveDate>,
    pub to_exclusive: Option<NaiveDate>,
    pub operation: Option<String>,
}

/// One counted entry: a value per dimension (`None` = total over that dimension) and a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<Option<String>>,
    pub count: i64,
}

/// A counted row: up to three dimension values (NULL = total) and a count. Shared by the direct
/// count and the rollup read.
#[derive(diesel::QueryableByName)]
pub(super) struct Row {
    #[diesel(sql_type = Nullable<Text>)]
    d1: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    d2: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    d3: Option<String>,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Row {
    pub(super) fn into_entry(self, dims: usize) -> Entry {
        Entry { key: [self.d1, self.d2, self.d3].into_iter().take(dims).collect(), count: self.n }
    }
}

/// Exact counts, or counts with each victim's values bounded (and the key that chooses them).
#[derive(Debug, Clone, Copy)]
pub enum Counting<'k> {
    Exact,
    Bounded(&'k BoundingKey),
}

/// What the bounding key is derived for (changing it rebuilds every bounded rollup).
pub const BOUNDING_PURPOSE: &str = "haven/reports/contribution-bounds/v1";

/// The secret that chooses which of a victim's values count in guarded releases. Derived from
/// the blind-index key (`IdentityKeyring::derive`), so it needs no setting of its own.
#[derive(Clone)]
pub struct BoundingKey(String);

impl BoundingKey {
    pub fn new(secret: [u8; 32]) -> BoundingKey {
        BoundingKey(secret.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A short public fingerprint, part of the rollup shape name, so rollups built under another
    /// key are never read.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.0.as_bytes());
        digest[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for BoundingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoundingKey(<redacted>)")
    }
}

/// A join a dimension needs (each added once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    Citizenship,
    CitizenshipRegion,
    ExploitationRegion,
    RouteRecruitment,
    RecruitmentRegion,
    RouteTransit,
    TransitRegion,
    ExploitationType,
    Recruitment,
    Control,
    Assistance,
    Referrals,
    Closure,
    Figures,
}

/// `{key}` stands for the bound key's placeholder.
const HASH: &str = "sha256(convert_to({key} || v.id::text || '/' || x, 'UTF8'))";

/// A list-valued join: `unnest` of the list, or, bounded, of its `bound` values of smallest keyed
/// hash. Lists no longer than the bound (most of them) skip the hashing and sorting.
fn list_join(list: &str, bound: Option<u32>, name: &str, column: &str, counting: Counting) -> String {
    match (counting, bound) {
        (Counting::Bounded(_), Some(c)) => format!(
            "CROSS JOIN LATERAL (SELECT {list} AS l) AS {name}_l \
             CROSS JOIN LATERAL unnest(CASE WHEN cardinality({name}_l.l) <= {c} THEN {name}_l.l ELSE ARRAY(\
               SELECT x FROM (SELECT DISTINCT x FROM unnest({name}_l.l) AS u(x)) d ORDER BY {HASH} LIMIT {c}) END) AS {name}({column})"
        ),
        _ => format!("CROSS JOIN LATERAL unnest({list}) AS {name}({column})"),
    }
}

fn legs(kind: &str) -> String {
    format!(
        "ARRAY(SELECT DISTINCT leg->>'country' FROM jsonb_array_elements(v.route) leg WHERE leg->>'kind' = '{kind}')"
    )
}

impl Join {
    fn sql(self, counting: Counting) -> String {
        use Dimension as D;
        match self {
            Join::Citizenship => list_join(
                "CASE WHEN cardinality(v.citizenship) = 0 THEN ARRAY['unknown'] ELSE v.citizenship END",
                D::Citizenship.bound(),
                "cit",
                "code",
                counting,
            ),
            Join::CitizenshipRegion => "LEFT JOIN country_regions cr_cit ON cr_cit.country = cit.code".into(),
            Join::ExploitationRegion => "LEFT JOIN country_regions cr_exp ON cr_exp.country = v.country_of_exploitation".into(),
            Join::RouteRecruitment => list_join(
                &format!("coalesce(nullif({}, '{{}}'::text[]), ARRAY['unknown'])", legs("recruitment")),
                D::RecruitmentCountry.bound(),
                "rec",
                "code",
                counting,
            ),
            Join::RecruitmentRegion => "LEFT JOIN country_regions cr_rec ON cr_rec.country = rec.code".into(),
            // No legs at all: the route is unknown; legs but none in transit: a direct route.
            Join::RouteTransit => list_join(
                &format!(
                    "CASE WHEN jsonb_array_length(v.route) = 0 THEN ARRAY['unknown'] \
                     ELSE coalesce(nullif({}, '{{}}'::text[]), ARRAY['none']) END",
                    legs("transit")
                ),
                D::TransitCountry.bound(),
                "tr",
                "code",
                counting,
            ),
            Join::TransitRegion => "LEFT JOIN country_regions cr_tr ON cr_tr.country = tr.code".into(),
            Join::ExploitationType => list_join(
                "CASE WHEN cardinality(v.exploitation_types) = 0 THEN ARRAY['unknown'] ELSE v.exploitation_types END",
                D::ExploitationType.bound(),
                "et",
                "kind",
                counting,
            ),
            Join::Recruitment => list_join(
                "CASE WHEN cardinality(v.recruitment_methods) = 0 THEN ARRAY['unknown'] ELSE v.recruitment_methods END",
                D::RecruitmentMethod.bound(),
                "rm",
                "method",
                counting,
            ),
            Join::Control => list_join(
                "CASE WHEN cardinality(v.means_of_control) = 0 THEN ARRAY['unknown'] ELSE v.means_of_control END",
                D::MeansOfControl.bound(),
                "mc",
                "means",
                counting,
            ),
            Join::Assistance => match counting {
                Counting::Exact => "JOIN assistance_records a ON a.victim_id = v.id".into(),
                Counting::Bounded(_) => list_join(
                    "ARRAY(SELECT a0.kind FROM assistance_records a0 WHERE a0.victim_id = v.id)",
                    D::AssistanceKind.bound(),
                    "a",
                    "kind",
                    counting,
                ),
            },
            // Bounded: the victim's referrals of smallest keyed hash, whole rows, so service,
            // status and response time stay those of real referrals.
            Join::Referrals => match counting {
                Counting::Exact => "JOIN referrals r ON r.victim_id = v.id".into(),
                Counting::Bounded(_) => format!(
                    "CROSS JOIN LATERAL (SELECT r0.* FROM referrals r0 WHERE r0.victim_id = v.id \
                     ORDER BY sha256(convert_to({{key}} || r0.id::text, 'UTF8')) LIMIT {}) AS r",
                    D::ReferralService.bound().unwrap_or(1)
                ),
            },
            // The closure in force: the case's latest, not reopened (one row per victim at most).
            Join::Closure => "LEFT JOIN LATERAL (SELECT c0.reason, c0.closed_at FROM case_closures c0 \
                 WHERE c0.victim_id = v.id AND c0.reopened_at IS NULL ORDER BY c0.id DESC LIMIT 1) AS cl ON true"
                .into(),
            // The headline figures a victim counts towards (a victim counts once per figure).
            Join::Figures => "LEFT JOIN LATERAL unnest(array_remove(ARRAY[
                    CASE WHEN v.is_minor THEN 'minors' END,
                    CASE WHEN v.trafficking_status = 'actual' THEN 'confirmed_victims' END,
                    CASE WHEN EXISTS (SELECT 1 FROM assistance_records a WHERE a.victim_id = v.id) THEN 'assisted' END,
                    CASE WHEN EXISTS (SELECT 1 FROM referrals r WHERE r.victim_id = v.id) THEN 'referred' END,
                    CASE WHEN EXISTS (SELECT 1 FROM referrals r WHERE r.victim_id = v.id AND r.accepted_at IS NOT NULL) THEN 'referral_accepted' END,
                    CASE WHEN EXISTS (SELECT 1 FROM referrals r WHERE r.victim_id = v.id AND r.status = 'completed') THEN 'referral_completed' END
                 ], NULL)) AS fig(name) ON true"
                .into(),
        }
    }
}

const RESPONSE_BANDS: &str = "CASE WHEN coalesce(r.accepted_at, r.declined_at) IS NULL THEN 'no_response' \
     WHEN coalesce(r.accepted_at, r.declined_at) - r.created_at < interval '1 day' THEN 'under_1_day' \
     WHEN coalesce(r.accepted_at, r.declined_at) - r.created_at < interval '4 days' THEN '1_to_3_days' \
     WHEN coalesce(r.accepted_at, r.declined_at) - r.created_at < interval '8 days' THEN '4_to_7_days' \
     WHEN coalesce(r.accepted_at, r.declined_at) - r.created_at < interval '31 days' THEN '8_to_30_days' \
     ELSE 'over_30_days' END";

const CLOSURE_REASON: &str =
    "CASE WHEN NOT v.status IN ('closed', 'closed_referred') THEN 'open' ELSE coalesce(cl.reason, 'unknown') END";

const CASE_DURATION: &str = "CASE WHEN NOT v.status IN ('closed', 'closed_referred') THEN 'open' \
     WHEN cl.closed_at IS NULL THEN 'unknown' \
     WHEN cl.closed_at::date - v.identified_on < 91 THEN 'under_3_months' \
     WHEN cl.closed_at::date - v.identified_on < 183 THEN '3_to_6_months' \
     WHEN cl.closed_at::date - v.identified_on < 366 THEN '6_to_12_months' \
     WHEN cl.closed_at::date - v.identified_on < 731 THEN '1_to_2_years' ELSE 'over_2_years' END";

const AGE_BANDS: &str = "CASE WHEN v.age_at_identification IS NULL THEN (CASE WHEN v.is_minor THEN 'minor_age_unknown' ELSE 'unknown' END) \
     WHEN v.age_at_identification <= 8 THEN '0-8' WHEN v.age_at_identification <= 17 THEN '9-17' \
     WHEN v.age_at_identification <= 20 THEN '18-20' WHEN v.age_at_identification <= 23 THEN '21-23' \
     WHEN v.age_at_identification <= 26 THEN '24-26' WHEN v.age_at_identification <= 29 THEN '27-29' \
     WHEN v.age_at_identification <= 38 THEN '30-38' WHEN v.age_at_identification <= 47 THEN '39-47' ELSE '48+' END";

/// The SQL expression of a dimension (never NULL) and the joins it needs.
fn dimension_sql(d: Dimension) -> (&'static str, &'static [Join]) {
    use Dimension::*;
    match d {
        Citizenship => ("cit.code", &[Join::Citizenship]),
        CitizenshipSubregion => {
            ("coalesce(cr_cit.subregion, 'unknown')", &[Join::Citizenship, Join::CitizenshipRegion])
        }
        CitizenshipRegion => ("coalesce(cr_cit.region, 'unknown')", &[Join::Citizenship, Join::CitizenshipRegion]),
        CountryOfExploitation => ("coalesce(v.country_of_exploitation::text, 'unknown')", &[]),
        ExploitationSubregion => ("coalesce(cr_exp.subregion, 'unknown')", &[Join::ExploitationRegion]),
        ExploitationRegion => ("coalesce(cr_exp.region, 'unknown')", &[Join::ExploitationRegion]),
        RecruitmentCountry => ("rec.code", &[Join::RouteRecruitment]),
        RecruitmentSubregion => {
            ("coalesce(cr_rec.subregion, 'unknown')", &[Join::RouteRecruitment, Join::RecruitmentRegion])
        }
        RecruitmentRegion => ("coalesce(cr_rec.region, 'unknown')", &[Join::RouteRecruitment, Join::RecruitmentRegion]),
        TransitCountry => ("tr.code", &[Join::RouteTransit]),
        TransitSubregion => (
            "CASE WHEN tr.code IN ('none', 'unknown') THEN tr.code ELSE coalesce(cr_tr.subregion, 'unknown') END",
            &[Join::RouteTransit, Join::TransitRegion],
        ),
        TransitRegion => (
            "CASE WHEN tr.code IN ('none', 'unknown') THEN tr.code ELSE coalesce(cr_tr.region, 'unknown') END",
            &[Join::RouteTransit, Join::TransitRegion],
        ),
        ExploitationType => ("et.kind", &[Join::ExploitationType]),
        LabourSector => ("coalesce(v.labour_sector::text, 'unknown')", &[]),
        Gender => ("v.gender", &[]),
        AgeBand => (AGE_BANDS, &[]),
        MinorOrAdult => ("CASE WHEN v.is_minor THEN 'minor' ELSE 'adult' END", &[]),
        MigrantStatus => ("coalesce(v.migrant_status, 'unknown')", &[]),
        RecruitmentMethod => ("rm.method", &[Join::Recruitment]),
        MeansOfControl => ("mc.means", &[Join::Control]),
        RecruiterRelation => ("coalesce(v.recruiter_relation, 'unknown')", &[]),
        TraffickingStatus => ("v.trafficking_status", &[]),
        IdentifiedBy => ("coalesce(v.identified_by, 'unknown')", &[]),
        IdentifiedMonth => ("to_char(v.identified_on, 'YYYY-MM')", &[]),
        IdentifiedQuarter => ("to_char(v.identified_on, 'YYYY-\"Q\"Q')", &[]),
        IdentifiedYear => ("to_char(v.identified_on, 'YYYY')", &[]),
        AssistanceKind => ("a.kind", &[Join::Assistance]),
        ReferralService => ("r.service", &[Join::Referrals]),
        ReferralStatus => ("r.status", &[Join::Referrals]),
        ReferralResponseTime => (RESPONSE_BANDS, &[Join::Referrals]),
        ClosureReason => (CLOSURE_REASON, &[Join::Closure]),
        CaseDuration => (CASE_DURATION, &[Join::Closure]),
        Figure => ("coalesce(fig.name, 'none_of_these')", &[Join::Figures]),
    }
}

/// The pieces of a table's statement, with parameters numbered from `first`: the bounding key
/// (when bounded), then one `text[]` per fixed filter. Bind them with [`TableSql::bind`].
pub(super) struct TableSql {
    /// `d1, d2, d3` (NULL past the table's dimensions).
    pub select: String,
    pub joins: String,
    /// ` AND ...` per filter.
    pub restrictions: String,
    /// `d1, ...` for `CUBE (...)`.
    pub group: String,
    /// The first parameter number after the table's own.
    pub next: usize,
}

pub(super) fn table_sql(table: &TableQuery, counting: Counting, first: usize) -> Result<TableSql, ApiError> {
    let dims = &table.dimensions;
    if dims.is_empty() || dims.len() > 3 {
        return Err(ApiError::Internal("a report table has 1 to 3 dimensions".into()));
    }
    let (key, mut next) = match counting {
        Counting::Exact => (String::new(), first),
        Counting::Bounded(_) => (format!("${first}::text"), first + 1),
    };
    let mut joins: Vec<Join> = Vec::new();
    for join in dims.iter().flat_map(|d| dimension_sql(*d).1.iter().copied()) {
        if !joins.contains(&join) {
            joins.push(join);
        }
    }
    let select: Vec<String> = (0..3)
        .map(|i| match dims.get(i) {
            Some(d) => format!("({})::text AS d{}", dimension_sql(*d).0, i + 1),
            None => format!("NULL::text AS d{}", i + 1),
        })
        .collect();
    let mut restrictions = String::new();
    for filter in &table.filters {
        restrictions.push_str(&format!(" AND {}", filter.field.sql().replace("{}", &format!("${next}::text[]"))));
        next += 1;
    }
    Ok(TableSql {
        select: select.join(", "),
        joins: joins.iter().map(|j| j.sql(counting).replace("{key}", &key)).collect::<Vec<_>>().join(" "),
        restrictions,
        group: (1..=dims.len()).map(|i| format!("d{i}")).collect::<Vec<_>>().join(", "),
        next,
    })
}

impl TableSql {
    /// Binds the key (when bounded) and the filters' values, in the order `table_sql` numbered them.
    pub fn bind<'a>(
        query: BoxedSqlQuery<'a, Pg, diesel::query_builder::SqlQuery>,
        table: &TableQuery,
        counting: Counting,
    ) -> BoxedSqlQuery<'a, Pg, diesel::query_builder::SqlQuery> {
        let mut query = match counting {
            Counting::Exact => query,
            Counting::Bounded(key) => query.bind::<Text, _>(key.0.clone()),
        };
        for filter in &table.filters {
            query = query.bind::<Array<Text>, _>(filter.values.clone());
        }
        query
    }
}

/// Counts of distinct victims for every grouping set of the table's dimensions, straight from
/// the records (the rollups give the same from pre-aggregated partitions; tests compare them).
pub async fn count_direct(
    conn: &mut AsyncPgConnection,
    table: &TableQuery,
    counting: Counting<'_>,
    population: Population,
    filters: &Filters,
) -> Result<Vec<Entry>, ApiError> {
    let parts = table_sql(table, counting, 5)?;
    let scope = match population {
        Population::OwnOrganization(_) => "v.organization_id = $1",
        Population::Pooled { .. } => {
            "v.organization_id <> $1 AND v.consent_anonymised_statistics \
             AND v.organization_id IN (SELECT id FROM organizations WHERE shares_statistics)"
        }
    };
    let sql = format!(
        "SELECT {select}, count(DISTINCT v.id) AS n FROM victims v {joins} \
         WHERE {scope} AND ($2::date IS NULL OR v.identified_on >= $2) AND ($3::date IS NULL OR v.identified_on < $3) \
         AND ($4::text IS NULL OR v.operation = $4){restrictions} GROUP BY CUBE ({group})",
        select = parts.select,
        joins = parts.joins,
        restrictions = parts.restrictions,
        group = parts.group,
    );
    let org: Uuid = match population {
        Population::OwnOrganization(org) | Population::Pooled { caller: org } => org,
    };
    let query = diesel::sql_query(sql)
        .into_boxed()
        .bind::<SqlUuid, _>(org)
        .bind::<Nullable<Date>, _>(filters.from)
        .bind::<Nullable<Date>, _>(filters.to_exclusive)
        .bind::<Nullable<Text>, _>(filters.operation.clone());
    let rows: Vec<Row> = TableSql::bind(query, table, counting).load(conn).await?;
    Ok(rows.into_iter().map(|r| r.into_entry(table.dimensions.len())).collect())
}
