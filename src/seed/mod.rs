//! `haven seed`: realistic, entirely fictional records for demonstrations and benchmarks,
//! deterministic for a given `--rng-seed` (record contents and ids; ciphertexts use fresh nonces).
//! Rows go in with multi-row INSERTs of 1,000, one transaction per batch.

mod generate;

use chrono::{Duration, NaiveTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use crate::db::Pool;
use crate::db::schema::{
    assistance_records, case_assignments, case_closures, case_counters, organizations, referrals, users,
    victim_identities, victims,
};
use crate::domain::Role;
use crate::domain::case_vocab::{ReferralStatus, Urgency};
use crate::privacy::identity;
use crate::privacy::vault::Vault;
use crate::victims::store::{NewIdentity, case_columns};

const BATCH: u64 = 1000;

pub struct SeedOptions {
    pub victims: u64,
    pub rng_seed: u64,
    pub organizations: u32,
    pub progress: bool,
}

#[derive(Debug, Default)]
pub struct SeedReport {
    pub organizations: u64,
    pub victims: u64,
    pub assistance: u64,
    pub referrals: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("seeding failed: {0}")]
pub struct SeedError(String);

impl From<diesel::result::Error> for SeedError {
    fn from(e: diesel::result::Error) -> Self {
        SeedError(e.to_string())
    }
}

fn uuid(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

struct SeedOrg {
    id: Uuid,
    user: Uuid,
    next_case: i32,
}

/// The seed organisations (created, or found from an earlier run) with a caseworker account each
/// that cannot log in (its password hash is not a hash).
async fn organizations(conn: &mut AsyncPgConnection, count: u32) -> Result<Vec<SeedOrg>, SeedError> {
    let mut orgs = Vec::new();
    for i in 0..count.max(2) as usize {
        let (base, kind, country) = generate::ORGANIZATIONS[i % generate::ORGANIZATIONS.len()];
        let name = if i < generate::ORGANIZATIONS.len() { base.to_owned() } else { format!("{base} #{}", i + 1) };
        let existing: Option<Uuid> = organizations::table
            .filter(crate::db::lower(organizations::name).eq(name.to_lowercase()))
            .select(organizations::id)
            .first(conn)
            .await
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => crate::orgs::insert(conn, &name, kind, Some(country), i % 6 != 5).await?.id,
        };
        let email = format!("seed-caseworker-{}@seed.invalid", &id.simple().to_string()[..12]);
        let user: Option<Uuid> =
            users::table.filter(users::email.eq(&email)).select(users::id).first(conn).await.optional()?;
        let user = match user {
            Some(u) => u,
            None => {
                crate::users::insert(conn, id, &email, Role::Caseworker, crate::users::NewCredential::Password(None))
                    .await?
                    .id
            }
        };
        let last: Option<i32> =
            case_counters::table.find(id).select(case_counters::last_number).first(conn).await.optional()?;
        orgs.push(SeedOrg { id, user, next_case: last.unwrap_or(0) + 1 });
    }
    Ok(orgs)
}

pub async fn run(pool: &Pool, vault: &Vault, options: &SeedOptions) -> Result<SeedReport, SeedError> {
    let keys = vault.keys();
    let mut conn = pool.get().await.map_err(|e| SeedError(e.to_string()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(options.rng_seed);
    // Closures draw from a stream of their own, so adding them left every other record as it was.
    let mut closure_rng = ChaCha8Rng::seed_from_u64(options.rng_seed ^ 0xC105_ED00);
    let mut orgs = organizations(&mut conn, options.organizations).await?;
    let mut report = SeedReport { organizations: orgs.len() as u64, ..Default::default() };
    let bar = if options.progress { ProgressBar::new(options.victims) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("seeding victims [{bar:40}] {pos}/{len} {per_sec} ({eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let today = Utc::now().date_naive();
    let mut made = 0u64;
    while made < options.victims {
        let n = BATCH.min(options.victims - made);
        let mut victim_rows = Vec::with_capacity(n as usize);
        let mut inputs = Vec::with_capacity(n as usize);
        let mut identity_rows = Vec::new();
        let mut assistance_rows = Vec::new();
        let mut referral_rows = Vec::new();
        let mut closure_rows = Vec::new();
        for i in 0..n {
            let serial = made + i;
            let org_index = rng.random_range(0..orgs.len());
            let id = uuid(&mut rng);
            let pattern = generate::pattern(&mut rng);
            let input = generate::victim(&mut rng, pattern);
            let org = &mut orgs[org_index];
            let case_number = org.next_case;
            org.next_case += 1;
            let (org_id, user) = (org.id, org.user);
            if rng.random_bool(0.6) {
                let identity = generate::identity(&mut rng, serial);
                let sealer = vault.sealer(id).await.map_err(|e| SeedError(e.to_string()))?;
                let stored = identity::seal(&sealer, id, &identity);
                identity_rows.push(NewIdentity { victim_id: id, organization_id: org_id, sealed: stored.into() });
            }
            for _ in 0..rng.random_range(0..=4u32) {
                let provided_on = (input.identified_on + Duration::days(rng.random_range(0..90))).min(today);
                assistance_rows.push((
                    assistance_records::id.eq(uuid(&mut rng)),
                    assistance_records::victim_id.eq(id),
                    assistance_records::organization_id.eq(org_id),
                    assistance_records::kind.eq(generate::assistance_kind(&mut rng)),
                    assistance_records::provided_on.eq(provided_on),
                    assistance_records::provided_by.eq(org_id),
                    assistance_records::create_digest.eq(keys.request_digest(id.as_bytes())),
                    assistance_records::created_by.eq(user),
                ));
            }
            // Referred only with consent to services, as the API requires.
            let referred = rng.random_bool(0.3);
            if referred && input.consent.services {
                let mut to = rng.random_range(0..orgs.len());
                if to == org_index {
                    to = (to + 1) % orgs.len();
                }
                let status = generate::referral_outcome(&mut rng);
                let created =
                    (input.identified_on + Duration::days(rng.random_range(0..14))).and_time(NaiveTime::MIN).and_utc();
                let responded = created + Duration::hours(rng.random_range(2..24 * 20));
                let finished = responded + Duration::days(rng.random_range(3..60));
                let at = |s: &[ReferralStatus], t| s.contains(&status).then_some(t);
                use ReferralStatus::*;
                referral_rows.push((
                    (
                        referrals::id.eq(uuid(&mut rng)),
                        referrals::victim_id.eq(id),
                        referrals::from_organization_id.eq(org_id),
                        referrals::from_user_id.eq(user),
                        referrals::to_organization_id.eq(orgs[to].id),
                        referrals::service.eq(generate::assistance_kind(&mut rng)),
                        referrals::urgency.eq(if rng.random_bool(0.2) { Urgency::Urgent } else { Urgency::Routine }),
                        referrals::status.eq(status),
                        referrals::identity_shared.eq(input.consent.share_with_referral_partners),
                    ),
                    (
                        referrals::create_digest.eq(keys.request_digest(id.as_bytes())),
                        referrals::created_at.eq(created),
                        referrals::accepted_at.eq(at(&[Accepted, Completed], responded)),
                        referrals::declined_at.eq(at(&[Declined], responded)),
                        referrals::decline_reason
                            .eq((status == Declined).then_some(crate::domain::case_vocab::DeclineReason::NoCapacity)),
                        referrals::completed_at.eq(at(&[Completed], finished)),
                        referrals::cancelled_at.eq(at(&[Cancelled], responded)),
                        referrals::updated_at.eq(created),
                    ),
                ));
            }
            if input.status.is_closed() {
                let open_for = Duration::days(closure_rng.random_range(20..900));
                let closed_at = (input.identified_on + open_for).min(today).and_time(NaiveTime::MIN).and_utc();
                closure_rows.push((
                    id,
                    (
                        case_closures::victim_id.eq(id),
                        case_closures::organization_id.eq(org_id),
                        case_closures::reason.eq(generate::closure_reason(&mut closure_rng, input.status)),
                        case_closures::closed_at.eq(closed_at),
                        case_closures::closed_by.eq(user),
                    ),
                ));
            }
            victim_rows.push((id, org_id, user, case_number));
            inputs.push(input);
        }
        let rows: Vec<_> = victim_rows
            .iter()
            .zip(&inputs)
            .map(|((id, org, user, case), input)| {
                (
                    victims::id.eq(*id),
                    victims::organization_id.eq(*org),
                    victims::case_number.eq(*case),
                    victims::create_digest.eq(keys.request_digest(id.as_bytes())),
                    victims::created_by.eq(*user),
                    victims::updated_by.eq(*user),
                    case_columns!(input),
                )
            })
            .collect();
        // Each case is worked by the caseworker who recorded it.
        let assignments: Vec<_> = victim_rows
            .iter()
            .map(|(id, org, user, _)| {
                (
                    case_assignments::victim_id.eq(*id),
                    case_assignments::user_id.eq(*user),
                    case_assignments::organization_id.eq(*org),
                    case_assignments::assigned_by.eq(*user),
                )
            })
            .collect();
        let counts = (rows.len() as u64, assistance_rows.len() as u64, referral_rows.len() as u64);
        let counters: Vec<_> = orgs
            .iter()
            .map(|o| (case_counters::organization_id.eq(o.id), case_counters::last_number.eq(o.next_case - 1)))
            .collect();
        (*conn)
            .transaction::<_, SeedError, _>(async |conn: &mut AsyncPgConnection| {
                // Counters advance with each batch, so an interrupted seed leaves them consistent.
                diesel::insert_into(case_counters::table)
                    .values(counters)
                    .on_conflict(case_counters::organization_id)
                    .do_update()
                    .set(case_counters::last_number.eq(diesel::upsert::excluded(case_counters::last_number)))
                    .execute(conn)
                    .await?;
                let inserted: std::collections::HashSet<Uuid> = diesel::insert_into(victims::table)
                    .values(rows)
                    .on_conflict_do_nothing()
                    .returning(victims::id)
                    .get_results(conn)
                    .await?
                    .into_iter()
                    .collect();
                let new_cases: Vec<Uuid> = inserted.iter().copied().collect();
                crate::victims::consent::record_bulk(conn, &new_cases).await?;
                diesel::insert_into(case_assignments::table)
                    .values(assignments)
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                // A case seeded before (the same seed again) keeps the closure it has.
                let closures: Vec<_> =
                    closure_rows.into_iter().filter(|(v, _)| inserted.contains(v)).map(|(_, row)| row).collect();
                if !closures.is_empty() {
                    diesel::insert_into(case_closures::table).values(closures).execute(conn).await?;
                }
                if !identity_rows.is_empty() {
                    diesel::insert_into(victim_identities::table)
                        .values(identity_rows)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                for chunk in assistance_rows.chunks(2000) {
                    diesel::insert_into(assistance_records::table)
                        .values(chunk.to_vec())
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                if !referral_rows.is_empty() {
                    diesel::insert_into(referrals::table)
                        .values(referral_rows)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
            .await?;
        report.victims += counts.0;
        report.assistance += counts.1;
        report.referrals += counts.2;
        made += n;
        bar.inc(n);
    }
    bar.finish();
    Ok(report)
}
