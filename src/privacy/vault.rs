//! The key vault: each victim's own data key, wrapped by the deployment's identity keys, kept in a
//! database of its own (`HAVEN_KEY_VAULT_URL`).
//!
//! Why a database of its own: erasure destroys a victim's data key, and that must reach every
//! backup of the case data. A key stored beside the data would be restored with it, and the
//! deployment keys would unwrap it again; a key held apart dies once, in one place, and every
//! backup of the case database is left with bytes nobody can open (D116).

use std::collections::HashMap;
use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::crypto::{CryptoError, DataKey, IdentityKeyring, Purpose, Sealed, VICTIM_KEY_PREFIX, refused};
use crate::db::{DbSetupError, Pool};
use crate::error::{ApiError, ApiResult};

diesel::table! {
    victim_keys (victim_id) {
        victim_id -> Uuid,
        key_id -> Uuid,
        wrap_key_id -> Text,
        wrap_nonce -> Bytea,
        wrapped_key -> Bytea,
        created_at -> Timestamptz,
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS victim_keys (
    victim_id uuid PRIMARY KEY,
    key_id uuid NOT NULL,
    wrap_key_id text NOT NULL,
    wrap_nonce bytea NOT NULL,
    wrapped_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)";

/// Creates the vault's one table if it is missing. Blocking, like the migrations.
pub fn prepare(url: &str) -> Result<(), DbSetupError> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|e| DbSetupError::Migrations(format!("cannot connect to the key vault: {e}")))?;
        conn.batch_execute(SCHEMA).map_err(|e| DbSetupError::Migrations(format!("key vault: {e}")))
    })
    .join()
    .unwrap_or_else(|_| Err(DbSetupError::Migrations("key vault thread panicked".into())))
}

/// Which PostgreSQL cluster `url` is on (its system identifier): two databases with the same one
/// share every physical backup, whatever their URLs say.
pub fn cluster_of(url: &str) -> Result<String, DbSetupError> {
    #[derive(diesel::QueryableByName)]
    struct System {
        #[diesel(sql_type = diesel::sql_types::Text)]
        system: String,
    }
    let url = url.to_owned();
    std::thread::spawn(move || {
        use diesel::{Connection, RunQueryDsl};
        use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|e| DbSetupError::Migrations(format!("cannot connect to tell the cluster: {e}")))?;
        let query = diesel::sql_query("SELECT system_identifier::text AS system FROM pg_control_system()");
        RunQueryDsl::get_result::<System>(query, &mut conn)
            .map(|s| s.system)
            .map_err(|e| DbSetupError::Migrations(format!("cannot tell the cluster: {e}")))
    })
    .join()
    .unwrap_or_else(|_| Err(DbSetupError::Migrations("cluster check thread panicked".into())))
}

/// victim id, data key id, and the wrapping: deployment key id, nonce, ciphertext.
type WrappedRow = (Uuid, Uuid, String, Vec<u8>, Vec<u8>);

/// A victim's data key as stored, still wrapped by a deployment key: nothing can be read with it
/// until [`Vault::opener_of`] unwraps it.
pub struct WrappedKey(WrappedRow);

fn wrapped((_, _, key_id, nonce, ciphertext): WrappedRow) -> Sealed {
    Sealed { key_id, nonce, ciphertext }
}

const COLUMNS: (
    victim_keys::victim_id,
    victim_keys::key_id,
    victim_keys::wrap_key_id,
    victim_keys::wrap_nonce,
    victim_keys::wrapped_key,
) = (
    victim_keys::victim_id,
    victim_keys::key_id,
    victim_keys::wrap_key_id,
    victim_keys::wrap_nonce,
    victim_keys::wrapped_key,
);

#[derive(Clone)]
pub struct Vault {
    pool: Pool,
    keys: Arc<IdentityKeyring>,
}

impl Vault {
    pub fn new(pool: Pool, keys: Arc<IdentityKeyring>) -> Vault {
        Vault { pool, keys }
    }

    pub fn keys(&self) -> &IdentityKeyring {
        &self.keys
    }

    fn unwrap(&self, victim: Uuid, row: WrappedRow) -> ApiResult<DataKey> {
        let id = row.1;
        self.keys.unwrap_data_key(victim, id, &wrapped(row)).map_err(|e| ApiError::internal("victim data key", e))
    }

    async fn find(&self, conn: &mut AsyncPgConnection, victim: Uuid) -> ApiResult<Option<WrappedRow>> {
        Ok(victim_keys::table.find(victim).select(COLUMNS).first(conn).await.optional()?)
    }

    /// What writes a victim's values: their data key, made on first use.
    pub async fn sealer(&self, victim: Uuid) -> ApiResult<VictimSealer<'_>> {
        let mut conn = self.pool.get().await?;
        match self.find(&mut conn, victim).await? {
            Some(row) => Ok(VictimSealer { keys: &self.keys, data_key: self.unwrap(victim, row)? }),
            None => self.make(&mut conn, victim).await,
        }
    }

    /// What writes the values of a victim being created: a new data key, stored without looking
    /// first (a create's victim has none, but for a retry's), so making it is one statement.
    /// Committed when this returns: a case file sealed under it may only commit after it (D133).
    pub async fn sealer_for_new(&self, victim: Uuid) -> ApiResult<VictimSealer<'_>> {
        let mut conn = self.pool.get().await?;
        self.make(&mut conn, victim).await
    }

    async fn make(&self, conn: &mut AsyncPgConnection, victim: Uuid) -> ApiResult<VictimSealer<'_>> {
        let (fresh, wrapping) = self.keys.new_data_key(victim);
        let inserted = diesel::insert_into(victim_keys::table)
            .values((
                victim_keys::victim_id.eq(victim),
                victim_keys::key_id.eq(fresh.id()),
                victim_keys::wrap_key_id.eq(&wrapping.key_id),
                victim_keys::wrap_nonce.eq(&wrapping.nonce),
                victim_keys::wrapped_key.eq(&wrapping.ciphertext),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        let data_key = match inserted {
            1 => fresh,
            // Another request made the key first (or this is a retry's): use theirs.
            _ => {
                let row = self.find(conn, victim).await?.ok_or(ApiError::Unavailable)?;
                self.unwrap(victim, row)?
            }
        };
        Ok(VictimSealer { keys: &self.keys, data_key })
    }

    /// What reads one victim's values.
    pub async fn opener(&self, victim: Uuid) -> ApiResult<VictimOpener<'_>> {
        let wrapped = self.wrapped(victim).await?;
        self.opener_of(victim, wrapped)
    }

    /// A victim's data key as the vault holds it, wrapped: fetched beside other reads, and opened
    /// with `opener_of`.
    pub async fn wrapped(&self, victim: Uuid) -> ApiResult<Option<WrappedKey>> {
        let mut conn = self.pool.get().await?;
        Ok(self.find(&mut conn, victim).await?.map(WrappedKey))
    }

    /// What reads one victim's values, from their data key fetched with `wrapped`.
    pub fn opener_of(&self, victim: Uuid, wrapped: Option<WrappedKey>) -> ApiResult<VictimOpener<'_>> {
        let data_key = match wrapped {
            // Unwrapping checks the key was wrapped for this victim.
            Some(WrappedKey(row)) => Some(self.unwrap(victim, row)?),
            None => None,
        };
        Ok(VictimOpener { keys: &self.keys, data_key })
    }

    /// What reads many victims' values, fetched in one query.
    pub async fn openers(&self, victims: &[Uuid]) -> ApiResult<Openers<'_>> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<WrappedRow> =
            victim_keys::table.filter(victim_keys::victim_id.eq_any(victims)).select(COLUMNS).load(&mut conn).await?;
        let mut data_keys = HashMap::with_capacity(rows.len());
        for row in rows {
            let victim = row.0;
            data_keys.insert(victim, self.unwrap(victim, row)?);
        }
        Ok(Openers { keys: &self.keys, data_keys })
    }

    /// Destroys a victim's data key; `true` when there was one.
    pub async fn destroy(&self, victim: Uuid) -> ApiResult<bool> {
        let mut conn = self.pool.get().await?;
        let deleted = diesel::delete(victim_keys::table.find(victim)).execute(&mut conn).await?;
        Ok(deleted == 1)
    }

    /// Wraps every data key not under the current deployment key again (`haven rekey`), in
    /// batches; returns how many. The values sealed under the data keys do not change.
    pub async fn rewrap(&self, mut progress: impl FnMut(u64)) -> ApiResult<u64> {
        let mut conn = self.pool.get().await?;
        let current = self.keys.current_key_id().to_owned();
        let mut done = 0u64;
        loop {
            let rows: Vec<WrappedRow> = victim_keys::table
                .filter(victim_keys::wrap_key_id.ne(&current))
                .select(COLUMNS)
                .order(victim_keys::victim_id)
                .limit(500)
                .load(&mut conn)
                .await?;
            if rows.is_empty() {
                return Ok(done);
            }
            for row in rows {
                let victim = row.0;
                let old = wrapped(row);
                let raw: Zeroizing<Vec<u8>> = self
                    .keys
                    .open(Purpose::DataKey, victim, &old)
                    .map_err(|e| ApiError::internal(&format!("data key of {victim}"), e))?;
                let new = self.keys.seal(Purpose::DataKey, victim, &raw);
                // Guarded by the old nonce: a key destroyed or rewrapped meanwhile is left alone.
                diesel::update(victim_keys::table.find(victim).filter(victim_keys::wrap_nonce.eq(&old.nonce)))
                    .set((
                        victim_keys::wrap_key_id.eq(&new.key_id),
                        victim_keys::wrap_nonce.eq(&new.nonce),
                        victim_keys::wrapped_key.eq(&new.ciphertext),
                    ))
                    .execute(&mut conn)
                    .await?;
                done += 1;
                progress(1);
            }
        }
    }

    /// How many data keys are not under the current deployment key.
    pub async fn stale(&self) -> ApiResult<u64> {
        let mut conn = self.pool.get().await?;
        let n: i64 = victim_keys::table
            .filter(victim_keys::wrap_key_id.ne(self.keys.current_key_id()))
            .count()
            .get_result(&mut conn)
            .await?;
        Ok(n as u64)
    }
}

/// Opens a value of a victim whose data key is `data_key` (none: erased, or never made). A value
/// sealed under another data key of theirs (one since destroyed) was erased. Values
/// stored before data keys existed, under a deployment key, still open until `haven rekey` moves
/// them under the victim's key.
fn open(
    keys: &IdentityKeyring,
    data_key: Option<&DataKey>,
    purpose: Purpose,
    record: Uuid,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if !sealed.key_id.starts_with(VICTIM_KEY_PREFIX) {
        return keys.open(purpose, record, sealed);
    }
    match data_key {
        Some(key) if key.sealed_it(&sealed.key_id) => key.open(purpose, record, sealed),
        // Its key was destroyed (the victim may have a newer one since): erased.
        _ => Err(CryptoError::Erased),
    }
}

/// Whatever opens a victim's values.
pub trait Opens {
    fn open(&self, purpose: Purpose, record: Uuid, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError>;

    /// An optional sealed text as three nullable columns; a value whose data key was destroyed
    /// reads as absent, because it was erased.
    fn open_text(
        &self,
        purpose: Purpose,
        record: Uuid,
        parts: (&Option<String>, &Option<Vec<u8>>, &Option<Vec<u8>>),
    ) -> ApiResult<Option<String>> {
        let (Some(key_id), Some(nonce), Some(ciphertext)) = parts else { return Ok(None) };
        let sealed = Sealed { key_id: key_id.clone(), nonce: nonce.clone(), ciphertext: ciphertext.clone() };
        match self.open(purpose, record, &sealed) {
            Ok(plain) => Ok(Some(String::from_utf8_lossy(&plain).into_owned())),
            Err(CryptoError::Erased) => Ok(None),
            Err(e) => Err(refused(purpose, record, &e)),
        }
    }
}

impl Opens for VictimSealer<'_> {
    fn open(&self, purpose: Purpose, record: Uuid, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open(self.keys, Some(&self.data_key), purpose, record, sealed)
    }
}

impl Opens for VictimOpener<'_> {
    fn open(&self, purpose: Purpose, record: Uuid, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open(self.keys, self.data_key.as_ref(), purpose, record, sealed)
    }
}

/// One victim's part of [`Openers`].
pub struct OneOf<'a> {
    keys: &'a IdentityKeyring,
    data_key: Option<&'a DataKey>,
}

impl Opens for OneOf<'_> {
    fn open(&self, purpose: Purpose, record: Uuid, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open(self.keys, self.data_key, purpose, record, sealed)
    }
}

/// Writes (and reads) one victim's values.
pub struct VictimSealer<'a> {
    keys: &'a IdentityKeyring,
    data_key: DataKey,
}

impl VictimSealer<'_> {
    pub fn seal(&self, purpose: Purpose, record: Uuid, plaintext: &[u8]) -> Sealed {
        self.data_key.seal(purpose, record, plaintext)
    }

    /// The blind indexes are keyed by the deployment, not the victim (search spans victims).
    pub fn keyring(&self) -> &IdentityKeyring {
        self.keys
    }
}

/// Reads one victim's values.
pub struct VictimOpener<'a> {
    keys: &'a IdentityKeyring,
    data_key: Option<DataKey>,
}

/// Reads many victims' values.
pub struct Openers<'a> {
    keys: &'a IdentityKeyring,
    data_keys: HashMap<Uuid, DataKey>,
}

impl Openers<'_> {
    pub fn of(&self, victim: Uuid) -> OneOf<'_> {
        OneOf { keys: self.keys, data_key: self.data_keys.get(&victim) }
    }
}
