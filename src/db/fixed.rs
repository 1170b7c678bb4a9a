//! Statements whose text never changes, prepared once per connection and reused.
//!
//! diesel's `sql_query` marks itself unsafe to cache, so diesel-async parses and plans it again on
//! every call: one more round trip per statement. A `Fixed` statement has a `'static` text with
//! `$1`, `$2`, ... placeholders, so the connection's statement cache keys it by that text and its
//! bind types. Use it for hot statements whose SQL is a constant; `sql_query` stays right for
//! statements assembled at run time. Every `$n` in the text is a placeholder, in an SQL comment
//! too: a comment names its values in words.

use std::marker::PhantomData;

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

trait Bind: Send + Sync {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

struct Value<ST, T>(T, PhantomData<fn() -> ST>);

impl<ST: 'static, T> Bind for Value<ST, T>
where
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg> + Send + Sync,
{
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.0)
    }
}

/// A statement with a constant text; load rows with `QueryableByName` types, like `sql_query`.
pub struct Fixed {
    sql: &'static str,
    binds: Vec<Box<dyn Bind>>,
}

/// A statement whose placeholders `$1..$n` take the values given with [`Fixed::bind`], in order.
pub fn fixed(sql: &'static str) -> Fixed {
    Fixed { sql, binds: Vec::new() }
}

impl Fixed {
    pub fn bind<ST: 'static, T>(mut self, value: T) -> Fixed
    where
        Pg: HasSqlType<ST>,
        T: ToSql<ST, Pg> + Send + Sync + 'static,
    {
        self.binds.push(Box::new(Value::<ST, T>(value, PhantomData)));
        self
    }
}

impl QueryId for Fixed {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Fixed {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for Fixed {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Each `$n` becomes diesel's own placeholder for the n-th value (a value used twice is
        // sent twice); the rest of the text goes through unchanged.
        let mut rest = self.sql;
        // diesel-async writes the whole text again on every call (and three walks over it), for a
        // `Named` statement too; the find_in_scope texts run to three kilobytes.
        while let Some(at) = memchr::memchr(b'$', rest.as_bytes()) {
            let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                out.push_sql(&rest[..=at]);
                rest = &rest[at + 1..];
                continue;
            }
            out.push_sql(&rest[..at]);
            let n: usize = rest[at + 1..at + 1 + digits].parse().map_err(|_| bad_placeholder(self.sql))?;
            let bind = self.binds.get(n.wrapping_sub(1)).ok_or_else(|| bad_placeholder(self.sql))?;
            bind.walk(&mut out)?;
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

/// A statement known by a type of its own, for the hottest reads: the connection's cache finds its
/// prepared statement by that type, where a [`Fixed`] one is found by hashing and comparing its
/// whole text, and its rows are read by position into `Queryable` types and tuples, where
/// `QueryableByName` looks each column up by name. For the case-file read's forty-four columns,
/// the two were 9% of the service's instructions per request (docs/DECISIONS.md D149).
pub trait Named: 'static {
    /// The SQL types of a row's columns, in the order the text selects them.
    type Row;
    /// The text, `$n` placeholders as in [`fixed`]. One type, one text: the type is the
    /// statement's only key in the cache.
    fn sql() -> &'static str;
}

/// The statement `N` names, with its values.
pub struct NamedStatement<N> {
    inner: Fixed,
    named: PhantomData<fn() -> N>,
}

pub fn named<N: Named>() -> NamedStatement<N> {
    NamedStatement { inner: fixed(N::sql()), named: PhantomData }
}

impl<N: Named> NamedStatement<N> {
    /// As [`Fixed::bind`]; each statement is bound with the same types on every call.
    pub fn bind<ST: 'static, T>(self, value: T) -> NamedStatement<N>
    where
        Pg: HasSqlType<ST>,
        T: ToSql<ST, Pg> + Send + Sync + 'static,
    {
        NamedStatement { inner: self.inner.bind::<ST, T>(value), named: PhantomData }
    }
}

impl<N: Named> QueryId for NamedStatement<N> {
    type QueryId = N;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<N: Named> Query for NamedStatement<N> {
    type SqlType = N::Row;
}

impl<N: Named> QueryFragment<Pg> for NamedStatement<N> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.inner.walk_ast(out)
    }
}

fn bad_placeholder(sql: &str) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(format!("a placeholder of a fixed statement has no value: {sql}").into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::{BigInt, Text};

    #[test]
    fn placeholders_become_binds_in_order() {
        let query = fixed("SELECT $2::text, $1::bigint, $2::text, '$' AS d")
            .bind::<BigInt, _>(7i64)
            .bind::<Text, _>("a".to_owned());
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(sql.starts_with("SELECT $1::text, $2::bigint, $3::text, '$' AS d"), "{sql}");
        assert!(sql.contains("[\"a\", 7, \"a\"]"), "{sql}");
    }

    #[test]
    fn a_missing_value_is_an_error_not_a_panic() {
        let query = fixed("SELECT $3");
        let mut builder = diesel::pg::PgQueryBuilder::default();
        assert!(query.to_sql(&mut builder, &Pg).is_err());
    }
}
