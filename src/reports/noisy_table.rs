//! A guarded release's table: from the exact counts of its grid to what may be shown (one
//! measurement, post-processing, withholding), and the statement of how it was made.

use std::collections::HashMap;

use super::consistency;
use super::counting::Entry;
use super::measure::{self, Noise, Plan};
use super::output::{NoiseStatement, PrivacyStatement, StoredRelease};
use super::release::POOLED;
use crate::error::{ApiError, ApiResult};

/// Measures, makes consistent and withholds: everything between the exact counts and what may be
/// shown. The exact counts go in; only post-processed noisy values come out.
pub fn release(
    plan: Plan,
    entries: &[Entry],
    noise: &Noise,
    k: i64,
    privacy: PrivacyStatement,
) -> ApiResult<StoredRelease> {
    let index: Vec<HashMap<&str, usize>> =
        plan.values.iter().map(|v| v.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect()).collect();
    let mut exact: HashMap<usize, i64> = HashMap::with_capacity(entries.len());
    'entries: for entry in entries {
        let mut key = Vec::with_capacity(entry.key.len());
        for (d, value) in entry.key.iter().enumerate() {
            match value {
                None => key.push(plan.total_index(d)),
                Some(v) => match index[d].get(v.as_str()) {
                    Some(&i) => key.push(i),
                    None => continue 'entries, // outside the grid: not part of the question
                },
            }
        }
        exact.insert(plan.dense(&key), entry.count);
    }
    let counts: Vec<i64> = plan.measured.iter().map(|d| exact.get(d).copied().unwrap_or(0)).collect();
    drop(exact);
    let noisy = measure::measure(noise, &counts).map_err(|e| ApiError::internal("noise", e))?;
    drop(counts);
    let fitted = consistency::fit(&plan, &noisy, noise.sd * noise.sd);
    let dims = plan.dims.len();
    let margins: Vec<i64> = (0..1usize << dims)
        .map(|mask| {
            let key: Vec<usize> =
                (0..dims).map(|d| if mask & (1 << d) != 0 { plan.total_index(d) } else { 0 }).collect();
            let exists = (0..dims).all(|d| mask & (1 << d) != 0 || !plan.values[d].is_empty());
            if exists { measure::margin(fitted.variance[plan.dense(&key)]) } else { 0 }
        })
        .collect();
    Ok(StoredRelease {
        grid: plan.values,
        values: fitted.values.into_iter().map(|v| (v >= k).then_some(v)).collect(),
        margins,
        privacy,
    })
}

/// The statement of a guarded release: all of it follows from the plan and the settings.
pub fn statement(
    plan: &Plan,
    noise: &Noise,
    alternative: &Noise,
    k: i64,
    rho: f64,
    delta: f64,
) -> ApiResult<PrivacyStatement> {
    let epsilon = measure::epsilon_at(rho, delta).map_err(|e| ApiError::internal("privacy accounting", e))?;
    Ok(PrivacyStatement {
        guarded: true,
        population: POOLED.into(),
        k,
        cells: plan.len(),
        noise: Some(NoiseStatement { mechanism: noise.mechanism, noise_sd: (noise.sd * 100.0).round() / 100.0 }),
        alternative: Some(NoiseStatement {
            mechanism: alternative.mechanism,
            noise_sd: (alternative.sd * 100.0).round() / 100.0,
        }),
        rho: Some(rho),
        // Rounded up: the statement may overstate the cost, never understate it.
        epsilon: Some((epsilon * 1000.0).ceil() / 1000.0),
        delta: Some(delta),
        sensitivity: Some(noise.sensitivity),
        bounds: Some(plan.bounds().into_iter().map(|(d, b)| (d.to_string(), b)).collect()),
        method: Some(method(plan)),
    })
}

/// How the entries were measured and derived, in words.
pub fn method(plan: &Plan) -> String {
    let names = |positions: &[usize]| positions.iter().map(|&i| plan.dims[i].to_string()).collect::<Vec<_>>();
    let multi = names(&plan.multi);
    let chain = names(&plan.chain);
    let blocks = if multi.is_empty() {
        "the table".to_owned()
    } else {
        format!("each combination of totals and values of {}", multi.join(" and "))
    };
    let levels = if chain.is_empty() {
        "its count".to_owned()
    } else {
        let mut steps = vec!["its total".to_owned()];
        for i in 1..=chain.len() {
            steps.push(format!("by {}", chain[..i].join(" and ")));
        }
        steps.join(", then ")
    };
    format!(
        "One measurement with equal noise on every measured entry: for {blocks}, {levels}. Other totals are sums of \
         their cells. Post-processing combines each total with the sum of its parts (weighted by their variance), \
         then makes the table non-negative integers whose parts add up to their totals (and, for multi-valued \
         dimensions, never exceed them). Counts below k are then withheld."
    )
}
