//! `haven rekey`: wraps every victim's data key under the newest identity key, moves whatever is
//! still sealed directly under a deployment key (stored before victims had keys of their own:
//! identities, notes, reasons, plans) under its victim's data key, re-encrypts the secrets that
//! belong to no victim (second factors, webhook secrets) under the newest key, and (with
//! `--reindex`) recomputes every blind index, e.g. after the index key changed. Resumable: each
//! batch commits on its own, and a rerun picks up whatever is left. Rows changed concurrently are
//! skipped by the guard on the old nonce and caught by the next run.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

use crate::db::Pool;
use crate::db::schema::{assistance_records, referrals, support_plan_goals, tasks, users, victim_identities, webhooks};
use crate::privacy::crypto::{Purpose, Sealed, VICTIM_KEY_PREFIX};
use crate::privacy::identity;
use crate::privacy::vault::Vault;
use crate::victims::store::{SealedColumns, SealedIdentity};

const BATCH: i64 = 500;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RekeyReport {
    pub data_keys: u64,
    pub identities: u64,
    pub notes: u64,
    pub reasons: u64,
    pub task_notes: u64,
    pub support_plans: u64,
    pub second_factors: u64,
    pub webhook_secrets: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    #[error("database: {0}")]
    Database(String),
    #[error("record {0} cannot be decrypted ({1}); fix or restore it, then run rekey again")]
    Crypto(Uuid, String),
}

impl From<crate::error::ApiError> for RekeyError {
    fn from(e: crate::error::ApiError) -> Self {
        RekeyError::Database(e.to_string())
    }
}

impl From<diesel::result::Error> for RekeyError {
    fn from(e: diesel::result::Error) -> Self {
        RekeyError::Database(e.to_string())
    }
}

fn bar(show: bool, total: u64, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:>20} [{bar:40}] {pos}/{len} ({eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

pub async fn run(pool: &Pool, vault: &Vault, reindex: bool, progress: bool) -> Result<RekeyReport, RekeyError> {
    let mut conn = pool.get().await.map_err(|e| RekeyError::Database(e.to_string()))?;
    let wrapping = bar(progress, vault.stale().await?, "victim data keys");
    let data_keys = vault.rewrap(|n| wrapping.inc(n)).await?;
    wrapping.finish();
    Ok(RekeyReport {
        data_keys,
        identities: identities(&mut conn, vault, reindex, progress).await?,
        notes: notes(&mut conn, vault, progress).await?,
        reasons: reasons(&mut conn, vault, progress).await?,
        task_notes: task_notes(&mut conn, vault, progress).await?,
        support_plans: support_plans(&mut conn, vault, progress).await?,
        second_factors: second_factors(&mut conn, vault, progress).await?,
        webhook_secrets: webhook_secrets(&mut conn, vault, progress).await?,
    })
}

/// Identities sealed under a deployment key move under their victim's data key; with `reindex`,
/// every identity is opened and its blind indexes computed again.
async fn identities(
    conn: &mut AsyncPgConnection,
    vault: &Vault,
    reindex: bool,
    progress: bool,
) -> Result<u64, RekeyError> {
    let stale = format!("{VICTIM_KEY_PREFIX}%");
    let pending = |after: Uuid| {
        let mut q = victim_identities::table
            .filter(victim_identities::victim_id.gt(after))
            .select(SealedIdentity::as_select())
            .order(victim_identities::victim_id)
            .limit(BATCH)
            .into_boxed();
        if !reindex {
            q = q.filter(victim_identities::key_id.not_like(stale.clone()));
        }
        q
    };
    let mut total_q = victim_identities::table.into_boxed();
    if !reindex {
        total_q = total_q.filter(victim_identities::key_id.not_like(stale.clone()));
    }
    let total: i64 = total_q.count().get_result(conn).await?;
    let bar = bar(progress, total as u64, "identities");
    let (mut after, mut done) = (Uuid::nil(), 0u64);
    loop {
        let rows: Vec<SealedIdentity> = pending(after).load(conn).await?;
        let Some(last) = rows.last() else { break };
        after = last.victim_id;
        let count = rows.len() as u64;
        conn.transaction::<_, RekeyError, _>(async |conn: &mut AsyncPgConnection| {
            for row in rows {
                let victim = row.victim_id;
                let old = Sealed::from(row);
                let sealer = vault.sealer(victim).await?;
                let plain =
                    identity::open(&sealer, victim, &old).map_err(|e| RekeyError::Crypto(victim, e.to_string()))?;
                // Sealed under a data key since destroyed: an erasure's leftover, nothing to move.
                let Some(plain) = plain else { continue };
                let stored = identity::seal(&sealer, victim, &plain);
                // Guarded by the nonce, unique to each sealing: a row rewritten meanwhile is left as is.
                diesel::update(victim_identities::table.find(victim).filter(victim_identities::nonce.eq(old.nonce)))
                    .set(SealedColumns::from(stored))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await?;
        done += count;
        bar.inc(count);
    }
    bar.finish();
    Ok(done)
}

/// Re-seals one optional sealed column family: a victim's values (`$owner` = `victim_id`, `true`)
/// move from a deployment key under their victim's data key; secrets that belong to no victim
/// (`$owner` = `id`, `false`) move under the newest deployment key.
macro_rules! reseal_column {
    ($fn_name:ident, $table:ident, $owner:ident, $key:ident, $nonce:ident, $cipher:ident, $purpose:expr, $label:literal, $victim_bound:expr) => {
        async fn $fn_name(conn: &mut AsyncPgConnection, vault: &Vault, progress: bool) -> Result<u64, RekeyError> {
            let keys = vault.keys();
            // What is not yet where it belongs: under any data key (`v:...`) for a victim's values,
            // under the newest deployment key for the rest (`_` escaped: LIKE's one-character
            // wildcard; `%` and `\` cannot occur in key ids).
            let settled = match $victim_bound {
                true => format!("{VICTIM_KEY_PREFIX}%"),
                false => keys.current_key_id().replace('_', "\\_"),
            };
            let stale = || $table::$key.is_not_null().and($table::$key.not_like(settled.clone()));
            let total: i64 = $table::table.filter(stale()).count().get_result(conn).await?;
            let bar = bar(progress, total as u64, $label);
            let mut done = 0u64;
            loop {
                let rows: Vec<(Uuid, Uuid, Option<String>, Option<Vec<u8>>, Option<Vec<u8>>)> = $table::table
                    .filter(stale())
                    .select((
                        $table::id,
                        $table::$owner,
                        $table::$key.nullable(),
                        $table::$nonce.nullable(),
                        $table::$cipher.nullable(),
                    ))
                    .order($table::id)
                    .limit(BATCH)
                    .load(conn)
                    .await?;
                if rows.is_empty() {
                    break;
                }
                let count = rows.len() as u64;
                conn.transaction::<_, RekeyError, _>(async |conn: &mut AsyncPgConnection| {
                    for (id, owner, key_id, nonce, cipher) in rows {
                        let (Some(key_id), Some(nonce), Some(ciphertext)) = (key_id, nonce, cipher) else { continue };
                        let old = Sealed { key_id, nonce, ciphertext };
                        let plain = keys.open($purpose, id, &old).map_err(|e| RekeyError::Crypto(id, e.to_string()))?;
                        let new = match $victim_bound {
                            true => vault.sealer(owner).await?.seal($purpose, id, &plain),
                            false => keys.seal($purpose, id, &plain),
                        };
                        diesel::update($table::table.find(id).filter($table::$nonce.eq(old.nonce)))
                            .set((
                                $table::$key.eq(new.key_id),
                                $table::$nonce.eq(new.nonce),
                                $table::$cipher.eq(new.ciphertext),
                            ))
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
                .await?;
                done += count;
                bar.inc(count);
            }
            bar.finish();
            Ok(done)
        }
    };
}

reseal_column!(
    notes,
    assistance_records,
    victim_id,
    notes_key_id,
    notes_nonce,
    notes_ciphertext,
    Purpose::AssistanceNotes,
    "assistance notes",
    true
);
reseal_column!(
    reasons,
    referrals,
    victim_id,
    reason_key_id,
    reason_nonce,
    reason_ciphertext,
    Purpose::ReferralReason,
    "referral reasons",
    true
);
reseal_column!(
    task_notes,
    tasks,
    victim_id,
    notes_key_id,
    notes_nonce,
    notes_ciphertext,
    Purpose::TaskNotes,
    "task notes",
    true
);
reseal_column!(
    support_plans,
    support_plan_goals,
    victim_id,
    text_key_id,
    text_nonce,
    text_ciphertext,
    Purpose::SupportPlanText,
    "support plans",
    true
);
reseal_column!(
    webhook_secrets,
    webhooks,
    id,
    secret_key_id,
    secret_nonce,
    secret_ciphertext,
    Purpose::WebhookSecret,
    "webhook secrets",
    false
);
reseal_column!(
    second_factors,
    users,
    id,
    totp_key_id,
    totp_nonce,
    totp_ciphertext,
    Purpose::SecondFactor,
    "second factors",
    false
);
