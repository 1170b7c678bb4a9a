//! The one differentially private measurement of a guarded release.
//!
//! A table's entries are its cells and every total over any of its dimensions. Which entries are
//! measured (the plan): for every subset of the table's multi-valued dimensions (a "block"),
//! a chain over its single-valued ones, coarsest first: the block's total, then by the
//! single-valued dimension with the fewest values, then by the next, down to the cells. Every
//! other entry (a total over single-valued dimensions off the chain) is a sum of measured cells,
//! computed afterwards (`consistency.rs`). Adding or removing one victim moves each measured
//! entry they count in by one, and they count in (chain levels) x prod(1 + bound) of them; that
//! number is the squared L2 sensitivity, and also the L1 sensitivity.
//!
//! Accounting unit: zero-concentrated DP (rho) with respect to adding or removing one victim with
//! all their records. Each mechanism is calibrated to the same rho and the one with the smaller
//! noise is used: the discrete Gaussian (OpenDP `make_gaussian`, rho = (L2 / sigma)^2 / 2) or the
//! discrete Laplace (OpenDP `make_laplace`, pure epsilon = L1 / scale, which is epsilon^2 / 2
//! zCDP). For counting tables the Gaussian always wins (its variance is L1 / 2rho against
//! L1^2 / rho), but the comparison is made and published per report, not assumed.

use opendp::combinators::{make_pureDP_to_zCDP, make_zCDP_to_approxDP};
use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::{make_gaussian, make_laplace};
use opendp::measures::{MaxDivergence, ZeroConcentratedDivergence};
use opendp::metrics::{AbsoluteDistance, L1Distance, L2Distance};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::catalogue::Dimension;

/// Which entries of a table's grid are measured, and how the grid is indexed: entry keys are
/// one index per dimension, where index `values.len()` stands for the total over it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dims: Vec<Dimension>,
    pub values: Vec<Vec<String>>,
    radix: Vec<usize>,
    /// Positions of multi-valued dimensions.
    pub(super) multi: Vec<usize>,
    /// Positions of single-valued dimensions, in chain order (fewest values first).
    pub(super) chain: Vec<usize>,
    /// Dense indexes of the measured entries, in a fixed order.
    pub measured: Vec<usize>,
}

impl Plan {
    pub fn new(dims: Vec<Dimension>, values: Vec<Vec<String>>) -> Plan {
        let radix: Vec<usize> = values.iter().map(|v| v.len() + 1).collect();
        let multi: Vec<usize> = (0..dims.len()).filter(|&i| dims[i].bound().is_some()).collect();
        let mut chain: Vec<usize> = (0..dims.len()).filter(|&i| dims[i].bound().is_none()).collect();
        chain.sort_by_key(|&i| (values[i].len(), i));
        let mut plan = Plan { dims, values, radix, multi, chain, measured: Vec::new() };
        let mut measured = Vec::new();
        for block in 0..(1usize << plan.multi.len()) {
            for level in 0..=plan.chain.len() {
                let mut on = vec![false; plan.dims.len()];
                for (j, &d) in plan.multi.iter().enumerate() {
                    on[d] = block & (1 << j) != 0;
                }
                for &d in &plan.chain[..level] {
                    on[d] = true;
                }
                plan.for_each_key(&on, |dense| measured.push(dense));
            }
        }
        plan.measured = measured;
        plan
    }

    /// Entries in the grid, cells and totals.
    pub fn len(&self) -> usize {
        self.radix.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn total_index(&self, dim: usize) -> usize {
        self.radix[dim] - 1
    }

    pub fn dense(&self, key: &[usize]) -> usize {
        key.iter().zip(&self.radix).fold(0, |acc, (k, r)| acc * r + k)
    }

    pub fn key(&self, mut dense: usize) -> Vec<usize> {
        let mut key = vec![0; self.radix.len()];
        for d in (0..self.radix.len()).rev() {
            key[d] = dense % self.radix[d];
            dense /= self.radix[d];
        }
        key
    }

    /// Calls `f` with every entry whose dimensions are values where `on` and totals elsewhere.
    pub(super) fn for_each_key(&self, on: &[bool], mut f: impl FnMut(usize)) {
        if (0..self.radix.len()).any(|d| on[d] && self.values[d].is_empty()) {
            return;
        }
        let mut key: Vec<usize> = (0..self.radix.len()).map(|d| if on[d] { 0 } else { self.total_index(d) }).collect();
        loop {
            f(self.dense(&key));
            // Odometer over the dimensions that are on, the last one fastest.
            let mut d = self.radix.len();
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                if !on[d] {
                    continue;
                }
                if key[d] + 1 < self.values[d].len() {
                    key[d] += 1;
                    break;
                }
                key[d] = 0;
            }
        }
    }

    /// The squared L2 (and the L1) sensitivity of the measured entries.
    pub fn sensitivity(&self) -> u64 {
        sensitivity_of(&self.dims)
    }

    /// Each multi-valued dimension's bound, for the release's description.
    pub fn bounds(&self) -> Vec<(Dimension, u32)> {
        self.multi.iter().filter_map(|&d| self.dims[d].bound().map(|b| (self.dims[d], b))).collect()
    }
}

/// Measured entries one victim moves, for a table of these dimensions: (chain levels) x
/// prod over multi-valued dimensions of (1 + bound).
pub fn sensitivity_of(dims: &[Dimension]) -> u64 {
    let singles = dims.iter().filter(|d| d.bound().is_none()).count() as u64;
    dims.iter().filter_map(|d| d.bound()).map(|b| 1 + u64::from(b)).product::<u64>() * (singles + 1)
}

/// A noise mechanism OpenDP provides for integer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    DiscreteGaussian,
    DiscreteLaplace,
}

/// The noise of a release, calibrated to a rho.
#[derive(Debug, Clone, Copy)]
pub struct Noise {
    pub mechanism: Mechanism,
    /// OpenDP's scale parameter (sigma for the Gaussian, b for the Laplace).
    pub scale: f64,
    /// Standard deviation of the noise on each measured entry.
    pub sd: f64,
    /// What OpenDP accounts for this measurement, as zCDP rho.
    pub rho: f64,
    pub sensitivity: u64,
}

/// Both mechanisms calibrated to `rho` for a table of this sensitivity; the first has the
/// smaller noise.
pub fn calibrate(sensitivity: u64, rho: f64) -> Result<[Noise; 2], String> {
    let l1 = sensitivity as f64;
    // Rounded up, so the sensitivity OpenDP is told is never below the true one.
    let l2 = l1.sqrt().next_up();
    let sigma = l2 / (2.0 * rho).sqrt() * (1.0 + 1e-12);
    let gaussian = gaussian(sigma)?;
    let gaussian_rho = gaussian.map(&l2).map_err(|e| e.to_string())?;
    let epsilon = (2.0 * rho).sqrt();
    let b = l1 / epsilon * (1.0 + 1e-12);
    let laplace = make_pureDP_to_zCDP(laplace(b)?).map_err(|e| e.to_string())?;
    let laplace_rho = laplace.map(&(sensitivity as i64)).map_err(|e| e.to_string())?;
    let mut both = [
        Noise { mechanism: Mechanism::DiscreteGaussian, scale: sigma, sd: sigma, rho: gaussian_rho, sensitivity },
        Noise {
            mechanism: Mechanism::DiscreteLaplace,
            scale: b,
            sd: std::f64::consts::SQRT_2 * b,
            rho: laplace_rho,
            sensitivity,
        },
    ];
    both.sort_by(|a, b| a.sd.total_cmp(&b.sd));
    Ok(both)
}

type Vector = VectorDomain<AtomDomain<i64>>;

fn gaussian(
    sigma: f64,
) -> Result<opendp::core::Measurement<Vector, L2Distance<f64>, ZeroConcentratedDivergence, Vec<i64>>, String> {
    make_gaussian(VectorDomain::new(AtomDomain::<i64>::default()), L2Distance::<f64>::default(), sigma, None)
        .map_err(|e| e.to_string())
}

fn laplace(b: f64) -> Result<opendp::core::Measurement<Vector, L1Distance<i64>, MaxDivergence, Vec<i64>>, String> {
    make_laplace(VectorDomain::new(AtomDomain::<i64>::default()), L1Distance::<i64>::default(), b, None)
        .map_err(|e| e.to_string())
}

/// The noisy counts of the measured entries: one invocation of the chosen OpenDP measurement on
/// the exact counts (in `plan.measured` order).
pub fn measure(noise: &Noise, exact: &[i64]) -> Result<Vec<i64>, String> {
    let exact = exact.to_vec();
    match noise.mechanism {
        Mechanism::DiscreteGaussian => gaussian(noise.scale)?.invoke(&exact).map_err(|e| e.to_string()),
        Mechanism::DiscreteLaplace => laplace(noise.scale)?.invoke(&exact).map_err(|e| e.to_string()),
    }
}

/// The epsilon at `delta` of `rho`-zCDP, by OpenDP's conversion. The conversion is a numerical
/// search (milliseconds), and only a few (rho, delta) pairs ever occur: remembered.
pub fn epsilon_at(rho: f64, delta: f64) -> Result<f64, String> {
    // Failures are remembered too: an allowance too large to convert (a benchmark's) would
    // otherwise repeat OpenDP's arbitrary-precision search, and its error's backtrace, on every
    // budget read.
    type Known = std::collections::HashMap<(u64, u64), Result<f64, String>>;
    static KNOWN: std::sync::LazyLock<std::sync::Mutex<Known>> = std::sync::LazyLock::new(Default::default);
    let key = (rho.to_bits(), delta.to_bits());
    if let Some(known) = KNOWN.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return known.clone();
    }
    let epsilon = (|| {
        // A unit-scale Gaussian at distance sqrt(2 rho) is exactly rho-zCDP.
        let unit = make_gaussian(AtomDomain::<i64>::default(), AbsoluteDistance::<f64>::default(), 1.0, None)
            .map_err(|e| e.to_string())?;
        let profile = make_zCDP_to_approxDP(unit)
            .map_err(|e| e.to_string())?
            .map(&(2.0 * rho).sqrt())
            .map_err(|e| e.to_string())?;
        profile.epsilon(delta).map_err(|e| e.to_string())
    })();
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if known.len() > 10_000 {
        known.clear();
    }
    known.insert(key, epsilon.clone());
    epsilon
}

/// The 95% margin of an entry whose noise has this variance (normal approximation), rounded up.
pub fn margin(variance: f64) -> i64 {
    (1.959_964 * variance.sqrt()).ceil() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use Dimension as D;

    fn plan(dims: &[Dimension], sizes: &[usize]) -> Plan {
        Plan::new(dims.to_vec(), sizes.iter().map(|n| (0..*n).map(|i| format!("v{i}")).collect()).collect())
    }

    #[test]
    fn the_plan_measures_every_block_along_its_chain() {
        // Exploitation type (multi, bound 2) x gender (4) x age band (11).
        let p = plan(&[D::ExploitationType, D::Gender, D::AgeBand], &[11, 4, 11]);
        assert_eq!(p.chain, vec![1, 2], "fewest values first");
        assert_eq!(p.sensitivity(), 3 * 3, "three chain levels x (1 + 2)");
        let per_block = 1 + 4 + 4 * 11;
        assert_eq!(p.measured.len(), per_block + 11 * per_block);
        assert_eq!(p.len(), 12 * 5 * 12);
        let mut seen = p.measured.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), p.measured.len(), "each measured once");
        // Totals over gender alone (age set) are not on the chain: derived, not measured.
        assert!(!p.measured.contains(&p.dense(&[11, 4, 3])));
        assert!(p.measured.contains(&p.dense(&[11, 2, 11])));
    }

    #[test]
    fn keys_and_dense_indexes_agree() {
        let p = plan(&[D::Gender, D::MinorOrAdult], &[4, 2]);
        for i in 0..p.len() {
            assert_eq!(p.dense(&p.key(i)), i);
        }
        let mut all = Vec::new();
        p.for_each_key(&[true, false], |i| all.push(p.key(i)));
        assert_eq!(all, vec![vec![0, 2], vec![1, 2], vec![2, 2], vec![3, 2]]);
    }

    #[test]
    fn calibration_meets_rho_and_prefers_the_smaller_noise() {
        for sensitivity in [1, 3, 9, 18, 36] {
            let [best, other] = calibrate(sensitivity, 0.25).unwrap();
            assert!(best.sd <= other.sd);
            assert_eq!(best.mechanism, Mechanism::DiscreteGaussian, "counts: the Gaussian has the smaller noise");
            for n in [best, other] {
                assert!(n.rho <= 0.25 + 1e-9 && n.rho > 0.2499, "{n:?}");
            }
            assert!((best.sd - (sensitivity as f64 / 0.5).sqrt()).abs() < 1e-6);
        }
        let eps = epsilon_at(0.25, 1e-7).unwrap();
        assert!(eps > 3.5 && eps < 4.3, "{eps}");
    }
}
