//! An empirical privacy audit of the measurement: run it many times on two neighbouring inputs
//! (one victim more, counted in a table's total and under two values of a multi-valued
//! dimension) and check what an observer of the outputs can tell them apart by, against what the
//! mechanism claims. Each audit is also run on the same mechanism with its noise scale halved,
//! which it must catch: a test that cannot fail would prove nothing.
//!
//! Statistics used (post-processing of the output, so bound by the same guarantee):
//! - discrete Gaussian (rho-zCDP): the sum of the changed entries, the optimal distinguisher for
//!   Gaussian noise. For every threshold t and both directions, the frequencies must satisfy
//!   P(T >= t) <= e^eps P'(T >= t) + delta, with (eps, delta) from OpenDP's conversion of rho.
//! - discrete Laplace (pure eps): how many changed entries exceed their count in the smaller
//!   input, whose frequency ratio reaches e^eps exactly at the extremes; every output's ratio
//!   must stay within e^eps.
//!
//! Tolerances: with N runs per input, a frequency's standard error is at most 0.5 / sqrt(N); the
//! Gaussian check allows 5 of them on each side of the inequality; the Laplace check compares
//! outputs seen at least 1,000 times on both sides and allows 20% on the ratio (the relative
//! standard error of such a ratio is at most about 4.5%, so 20% is over four of them).

use super::measure::{self, Mechanism, Noise};

const RUNS: usize = 30_000;
const RHO: f64 = 0.25;
/// Total, and the two values the added victim counts under (bound 2): sensitivity 3.
const SMALLER: [i64; 3] = [40, 25, 18];
const LARGER: [i64; 3] = [41, 26, 19];
const SENSITIVITY: u64 = 3;

fn noise(mechanism: Mechanism) -> Noise {
    let both = measure::calibrate(SENSITIVITY, RHO).unwrap();
    *both.iter().find(|n| n.mechanism == mechanism).unwrap()
}

fn halved(mut noise: Noise) -> Noise {
    noise.scale /= 2.0;
    noise.sd /= 2.0;
    noise
}

fn outputs(noise: &Noise, input: &[i64; 3]) -> Vec<Vec<i64>> {
    (0..RUNS).map(|_| measure::measure(noise, input).unwrap()).collect()
}

/// The largest violation of P(S) <= e^eps P'(S) + delta over threshold sets, both directions.
fn gaussian_violation(noise: &Noise, epsilon: f64, delta: f64) -> f64 {
    let sums = |input| -> Vec<i64> { outputs(noise, input).iter().map(|o| o.iter().sum()).collect() };
    let (a, b) = (sums(&SMALLER), sums(&LARGER));
    let (lo, hi) = (*a.iter().chain(&b).min().unwrap(), *a.iter().chain(&b).max().unwrap());
    let share = |xs: &[i64], f: &dyn Fn(i64) -> bool| xs.iter().filter(|&&x| f(x)).count() as f64 / RUNS as f64;
    let tolerance = 5.0 * 0.5 / (RUNS as f64).sqrt() * (1.0 + epsilon.exp());
    let mut worst = f64::NEG_INFINITY;
    for t in lo..=hi {
        let sets: [&dyn Fn(i64) -> bool; 2] = [&|x| x >= t, &|x| x <= t];
        for set in sets {
            let (p, q) = (share(&a, set), share(&b, set));
            worst = worst.max(p - epsilon.exp() * q - delta - tolerance).max(q - epsilon.exp() * p - delta - tolerance);
        }
    }
    worst
}

/// The largest ratio of an output's frequencies over e^eps, among well-observed outputs.
fn laplace_excess(noise: &Noise, epsilon: f64) -> f64 {
    let above = |input: &[i64; 3], base: &[i64; 3]| -> Vec<usize> {
        outputs(noise, input).iter().map(|o| o.iter().zip(base).filter(|(y, x)| **y > **x).count()).collect()
    };
    let (a, b) = (above(&SMALLER, &SMALLER), above(&LARGER, &SMALLER));
    let mut worst: f64 = 0.0;
    for s in 0..=3 {
        let (p, q) = (a.iter().filter(|&&x| x == s).count() as f64, b.iter().filter(|&&x| x == s).count() as f64);
        if p >= 1000.0 && q >= 1000.0 {
            worst = worst.max((p / q).max(q / p) / epsilon.exp());
        }
    }
    worst
}

#[test]
fn the_gaussian_measurement_keeps_its_zcdp_bound_and_the_audit_catches_half_the_noise() {
    let noise = noise(Mechanism::DiscreteGaussian);
    let (epsilon, delta) = (1.0, measure_delta(RHO, 1.0));
    assert!(delta < 0.2, "the audit needs a meaningful delta: {delta}");
    let honest = gaussian_violation(&noise, epsilon, delta);
    assert!(honest <= 0.0, "the measurement exceeds (eps={epsilon}, delta={delta:.4}) by {honest:.4}");
    let broken = gaussian_violation(&halved(noise), epsilon, delta);
    assert!(broken > 0.0, "the audit missed half the noise (margin {broken:.4})");
}

#[test]
fn the_laplace_measurement_keeps_its_epsilon_and_the_audit_catches_half_the_noise() {
    let noise = noise(Mechanism::DiscreteLaplace);
    let epsilon = SENSITIVITY as f64 / noise.scale;
    let honest = laplace_excess(&noise, epsilon);
    assert!(honest <= 1.2, "an output's frequency ratio is {honest:.3} x e^eps");
    let broken = laplace_excess(&halved(noise), epsilon);
    assert!(broken > 1.2, "the audit missed half the noise (ratio {broken:.3} x e^eps)");
}

/// The delta at `epsilon` of `rho`-zCDP, by OpenDP's conversion (the inverse of `epsilon_at`).
fn measure_delta(rho: f64, epsilon: f64) -> f64 {
    let (mut lo, mut hi) = (1e-12f64, 0.5f64);
    for _ in 0..60 {
        let mid = (lo * hi).sqrt();
        if measure::epsilon_at(rho, mid).unwrap() > epsilon { lo = mid } else { hi = mid }
    }
    hi
}
