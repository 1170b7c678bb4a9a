//! Report rollups (see migrations 4 and 5): a table's distinct-victim counts per partition (month,
//! org, consent, operation), built on first use and rebuilt partition by partition when triggers
//! mark them dirty. A run sums partitions only once every rollup is up to date (its read, sent
//! beside the idle check, is kept only when the check finds nothing to do: D161), so counts
//! are exact and never stale, and read a few thousand pre-aggregated rows instead of scanning
//! victims. A table has two rollups: exact (caseworkers' own case load) and bounded (the counts
//! guarded releases measure, each victim's values bounded under the current key), which also has
//! a pooled form.

use chrono::NaiveDate;
use diesel::QueryResult;
use diesel::sql_types::{Array, BigInt, Date, Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::TableQuery;
use super::catalogue::Dimension;
use super::counting::{BoundingKey, Counting, Entry, Filters, Population, Row, TableSql, table_sql};
use super::filters::{Filter, FilterField};
use crate::db::fixed::fixed;
use crate::error::ApiError;

/// Serialises rollup maintenance (one builder at a time; readers of built rollups never wait).
const MAINTENANCE_LOCK: i64 = 0x4841_5645_4e52; // "HAVENR"

/// A table and how it is counted: what a rollup holds.
#[derive(Debug, Clone)]
pub struct Shape<'a> {
    pub table: &'a TableQuery,
    pub bounded: bool,
}

impl Shape<'_> {
    /// A stable name: dimensions and fixed filters, and for bounded counts the key's fingerprint
    /// (rollups built under another key are never read, and are dropped at start).
    pub fn id(&self, key: &BoundingKey) -> String {
        let name = self.table.signature();
        if self.bounded { format!("b{}:{name}", key.fingerprint()) } else { name }
    }

    fn counting<'k>(&self, key: &'k BoundingKey) -> Counting<'k> {
        if self.bounded { Counting::Bounded(key) } else { Counting::Exact }
    }
}

fn filters_json(table: &TableQuery) -> serde_json::Value {
    serde_json::Value::Array(
        table.filters.iter().map(|f| serde_json::json!({ "field": f.field.as_str(), "values": f.values })).collect(),
    )
}

fn table_from(dims: &[String], filters: &serde_json::Value) -> Option<TableQuery> {
    let dimensions = dims.iter().map(|d| d.parse::<Dimension>().ok()).collect::<Option<Vec<_>>>()?;
    let filters = filters
        .as_array()?
        .iter()
        .map(|f| {
            Some(Filter {
                field: f["field"].as_str()?.parse::<FilterField>().ok()?,
                values: f["values"].as_array()?.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(TableQuery { dimensions, filters })
}

/// (Re)builds the rollup rows of `shape`, for the given partitions or all of them.
async fn build(
    conn: &mut AsyncPgConnection,
    id: &str,
    shape: &Shape<'_>,
    key: &BoundingKey,
    partitions: Option<(&[Uuid], &[NaiveDate])>,
) -> Result<(), ApiError> {
    let counting = shape.counting(key);
    let parts = table_sql(shape.table, counting, 2)?;
    let n = shape.table.dimensions.len();
    let after = parts.next;
    let only = if partitions.is_some() {
        format!(
            " AND (v.organization_id, date_trunc('month', v.identified_on)::date) IN \
             (SELECT * FROM unnest(${after}::uuid[], ${}::date[]))",
            after + 1
        )
    } else {
        String::new()
    };
    let sql = format!(
        "INSERT INTO report_rollups (shape, key, month, organization_id, consent, operation, n) \
         SELECT $1, (ARRAY[d1, d2, d3])[1:{n}], m, org, consent, op, n FROM ( \
           SELECT {select}, date_trunc('month', v.identified_on)::date AS m, v.organization_id AS org, \
                  v.consent_anonymised_statistics AS consent, v.operation AS op, count(DISTINCT v.id) AS n \
           FROM victims v {joins} WHERE TRUE{restrictions}{only} \
           GROUP BY m, org, consent, op, CUBE ({group})) s",
        select = parts.select,
        joins = parts.joins,
        restrictions = parts.restrictions,
        group = parts.group,
    );
    let mut query =
        TableSql::bind(diesel::sql_query(sql).into_boxed().bind::<Text, _>(id.to_owned()), shape.table, counting);
    if let Some((orgs, months)) = partitions {
        query = query.bind::<Array<SqlUuid>, _>(orgs.to_vec()).bind::<Array<Date>, _>(months.to_vec());
    }
    query.execute(conn).await?;
    Ok(())
}

/// (Re)builds the pooled rows of a bounded `shape`, for the given months or all of them, by
/// summing the organisations' rows built in the same transaction: so subtracting a caller's own
/// rows from them cancels exactly (organisations hold disjoint victims).
async fn build_pooled(conn: &mut AsyncPgConnection, id: &str, months: Option<&[NaiveDate]>) -> Result<(), ApiError> {
    let only = if months.is_some() { " AND r.month = ANY($2::date[])" } else { "" };
    let sql = format!(
        "INSERT INTO report_rollups_pooled (shape, key, month, operation, n) \
         SELECT r.shape, r.key, r.month, r.operation, sum(r.n) FROM report_rollups r \
         JOIN organizations o ON o.id = r.organization_id \
         WHERE r.shape = $1 AND r.consent AND o.shares_statistics{only} \
         GROUP BY r.shape, r.key, r.month, r.operation"
    );
    let mut query = diesel::sql_query(sql).into_boxed().bind::<Text, _>(id.to_owned());
    if let Some(months) = months {
        query = query.bind::<Array<Date>, _>(months.to_vec());
    }
    query.execute(conn).await?;
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Dirty {
    #[diesel(sql_type = SqlUuid)]
    organization_id: Uuid,
    #[diesel(sql_type = Date)]
    month: NaiveDate,
}

#[derive(diesel::QueryableByName)]
struct StoredShape {
    #[diesel(sql_type = Text)]
    shape: String,
    #[diesel(sql_type = Array<Text>)]
    dims: Vec<String>,
    #[diesel(sql_type = Jsonb)]
    filters: serde_json::Value,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    bounded: bool,
}

#[derive(diesel::QueryableByName)]
struct Idle {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    idle: bool,
}

/// Whether every rollup is current and this shape built: the usual case, checked without the
/// lock. A change that commits after this check is as if it came after the report. An upkeep under
/// way elsewhere still shows its dirty rows (its delete is not committed), so a run then waits for
/// it in `rebuild`.
pub(super) async fn is_idle(conn: &mut impl crate::db::Runs, id: &str) -> Result<bool, ApiError> {
    let idle: Idle = fixed(
        "SELECT NOT EXISTS (SELECT 1 FROM report_rollup_dirty) \
           AND EXISTS (SELECT 1 FROM report_rollup_shapes WHERE shape = $1) AS idle",
    )
    .bind::<Text, _>(id.to_owned())
    .get_result(conn)
    .await?;
    Ok(idle.idle)
}

/// Deletes the dirty markers and returns the partitions they name, each once, in order. There is
/// one marker per writing transaction and partition, so a bulk load leaves about a million (the
/// seed of a million victims did): they are made distinct in the database, and what reaches the
/// service is bounded by organisations x months, not by writes (docs/DECISIONS.md D128).
pub async fn take_dirty(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(Uuid, NaiveDate)>> {
    let dirty: Vec<Dirty> = fixed(
        "WITH taken AS (DELETE FROM report_rollup_dirty RETURNING organization_id, month) \
         SELECT DISTINCT organization_id, month FROM taken ORDER BY organization_id, month",
    )
    .load(conn)
    .await?;
    Ok(dirty.into_iter().map(|d| (d.organization_id, d.month)).collect())
}

/// Brings every rollup up to date and builds this shape's if it is new. On the primary.
pub async fn maintain(conn: &mut AsyncPgConnection, shape: &Shape<'_>, key: &BoundingKey) -> Result<(), ApiError> {
    if is_idle(conn, &shape.id(key)).await? {
        return Ok(());
    }
    rebuild(conn, shape, key).await
}

async fn rebuild(conn: &mut AsyncPgConnection, shape: &Shape<'_>, key: &BoundingKey) -> Result<(), ApiError> {
    let id = shape.id(key);
    // Read committed, whatever the database's default: each rebuild must see what committed
    // before it (the markers it deleted included).
    conn.build_transaction().read_committed().run(async |conn: &mut AsyncPgConnection| {
        fixed("SELECT pg_advisory_xact_lock($1)").bind::<BigInt, _>(MAINTENANCE_LOCK).execute(conn).await?;
        let partitions = take_dirty(conn).await?;
        if !partitions.is_empty() {
            let orgs: Vec<Uuid> = partitions.iter().map(|p| p.0).collect();
            let months: Vec<NaiveDate> = partitions.iter().map(|p| p.1).collect();
            diesel::sql_query(
                "DELETE FROM report_rollups WHERE (organization_id, month) IN (SELECT * FROM unnest($1::uuid[], $2::date[]))",
            )
            .bind::<Array<SqlUuid>, _>(orgs.clone())
            .bind::<Array<Date>, _>(months.clone())
            .execute(conn)
            .await?;
            let mut dirty_months = months.clone();
            dirty_months.sort();
            dirty_months.dedup();
            diesel::sql_query("DELETE FROM report_rollups_pooled WHERE month = ANY($1::date[])")
                .bind::<Array<Date>, _>(dirty_months.clone())
                .execute(conn)
                .await?;
            let stored: Vec<StoredShape> = diesel::sql_query("SELECT shape, dims, filters, bounded FROM report_rollup_shapes")
                .load(conn)
                .await?;
            for s in stored {
                let Some(table) = table_from(&s.dims, &s.filters) else {
                    return Err(ApiError::Internal(format!("unreadable rollup shape {}", s.shape)));
                };
                let other = Shape {
                    table: &table,
                    bounded: s.bounded,
                };
                if other.id(key) != s.shape {
                    continue; // built under another bounding key: never read, dropped by `warm`
                }
                build(conn, &s.shape, &other, key, Some((&orgs, &months))).await?;
                if s.bounded {
                    build_pooled(conn, &s.shape, Some(&dirty_months)).await?;
                }
            }
        }
        let dims: Vec<String> = shape.table.dimensions.iter().map(|d| d.as_str().to_owned()).collect();
        let created = diesel::sql_query(
            "INSERT INTO report_rollup_shapes (shape, dims, filters, bounded) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind::<Text, _>(&id)
        .bind::<Array<Text>, _>(dims)
        .bind::<Jsonb, _>(filters_json(shape.table))
        .bind::<diesel::sql_types::Bool, _>(shape.bounded)
        .execute(conn)
        .await?;
        if created == 1 {
            build(conn, &id, shape, key, None).await?;
            if shape.bounded {
                build_pooled(conn, &id, None).await?;
            }
        }
        Ok(())
    })
    .await
}

/// `maintain` for a request: the idle check on the request's connection, and any rebuild in a task
/// of its own, so that a request that gives up (its deadline, a closed connection) does not cancel
/// an upkeep half done, which would roll back and leave the next request to start over. The task
/// takes the request's connection and hands it back when done (or to the pool, if the request is
/// gone): a request never waits for a second connection of a pool it already holds one of (D131).
pub(super) async fn upkeep(
    mut conn: crate::db::Conn,
    table: &TableQuery,
    bounded: bool,
    key: &std::sync::Arc<BoundingKey>,
) -> Result<crate::db::Conn, ApiError> {
    if is_idle(&mut conn, &Shape { table, bounded }.id(key)).await? {
        return Ok(conn);
    }
    let (table, key) = (table.clone(), key.clone());
    actix_web::rt::spawn(
        async move { rebuild(&mut conn, &Shape { table: &table, bounded }, &key).await.map(|()| conn) },
    )
    .await
    .map_err(|e| ApiError::internal("rollup upkeep", e))?
}

/// A caseworker's own organisation, exact.
const READ_OWN: &str = "SELECT r.key[1] AS d1, r.key[2] AS d2, r.key[3] AS d3, sum(r.n)::bigint AS n FROM report_rollups r \
     WHERE r.shape = $1 AND r.organization_id = $2 AND ($3::date IS NULL OR r.month >= $3) AND ($4::date IS NULL OR r.month < $4) \
     AND ($5::text IS NULL OR r.operation = $5) GROUP BY r.key";

/// The pooled months, minus the caller's own consenting victims when its organisation shares.
const READ_POOLED: &str = "SELECT key[1] AS d1, key[2] AS d2, key[3] AS d3, sum(n)::bigint AS n FROM ( \
       SELECT r.key, r.n FROM report_rollups_pooled r WHERE r.shape = $1 AND ($3::date IS NULL OR r.month >= $3) \
         AND ($4::date IS NULL OR r.month < $4) AND ($5::text IS NULL OR r.operation = $5) \
       UNION ALL \
       SELECT r.key, -r.n FROM report_rollups r WHERE r.shape = $1 AND r.organization_id = $2 AND r.consent \
         AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = $2 AND o.shares_statistics) \
         AND ($3::date IS NULL OR r.month >= $3) AND ($4::date IS NULL OR r.month < $4) AND ($5::text IS NULL OR r.operation = $5) \
     ) t GROUP BY key HAVING sum(n) > 0";

/// The counts of a shape, summed from its rollup (up to date: see `replica::upkept_read`): a
/// caseworker's own organisation from the exact rollup, a pooled population from the bounded
/// one. Fixed statements, prepared once per connection.
pub async fn read(
    conn: &mut impl crate::db::Runs,
    shape: &Shape<'_>,
    key: &BoundingKey,
    population: Population,
    filters: &Filters,
) -> Result<Vec<Entry>, ApiError> {
    let (sql, org) = match population {
        Population::OwnOrganization(org) => (READ_OWN, org),
        Population::Pooled { caller } => (READ_POOLED, caller),
    };
    let rows: Vec<Row> = fixed(sql)
        .bind::<Text, _>(shape.id(key))
        .bind::<SqlUuid, _>(org)
        .bind::<Nullable<Date>, _>(filters.from)
        .bind::<Nullable<Date>, _>(filters.to_exclusive)
        .bind::<Nullable<Text>, _>(filters.operation.clone())
        .load(conn)
        .await?;
    let n = shape.table.dimensions.len();
    let mut entries: Vec<Entry> = rows.into_iter().map(|r| r.into_entry(n)).collect();
    if !entries.iter().any(|e| e.key.iter().all(Option::is_none)) {
        // Like a CUBE over no rows: the grand total exists, and is zero.
        entries.push(Entry { key: vec![None; n], count: 0 });
    }
    Ok(entries)
}

/// Drops rollups built under another bounding key, then builds (or refreshes) both rollups of
/// every report at its default parameters, so the first request after a start does not pay for
/// them. Run in the background at start.
pub async fn warm(pool: &crate::db::Pool, registry: &super::Registry, key: &BoundingKey) {
    if let Err(e) = drop_foreign(pool, key).await {
        tracing::warn!(error = %e, "could not drop rollups of an earlier bounding key");
    }
    for plugin in &registry.plugins {
        let Ok(table) = plugin.table(&std::collections::HashMap::new()) else {
            continue;
        };
        for bounded in [true, false] {
            let result = match pool.get().await {
                Ok(mut conn) => maintain(&mut conn, &Shape { table: &table, bounded }, key).await,
                Err(e) => Err(ApiError::from(e)),
            };
            if let Err(e) = result {
                tracing::warn!(report = plugin.id(), error = %e, "could not prepare report rollups");
            }
        }
    }
    tracing::info!("report rollups ready");
}

async fn drop_foreign(pool: &crate::db::Pool, key: &BoundingKey) -> Result<(), ApiError> {
    let mut conn = pool.get().await?;
    let prefix = format!("b{}:%", key.fingerprint());
    (*conn)
        .transaction::<_, ApiError, _>(async |conn: &mut AsyncPgConnection| {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<BigInt, _>(MAINTENANCE_LOCK)
                .execute(conn)
                .await?;
            for table in ["report_rollups", "report_rollups_pooled", "report_rollup_shapes"] {
                diesel::sql_query(format!(
                    "DELETE FROM {table} WHERE shape IN (SELECT shape FROM report_rollup_shapes WHERE bounded AND shape NOT LIKE $1)"
                ))
                .bind::<Text, _>(&prefix)
                .execute(conn)
                .await?;
            }
            Ok(())
        })
        .await
}
