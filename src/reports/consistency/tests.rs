use proptest::prelude::*;

use super::*;
use crate::reports::catalogue::Dimension;

/// Dimensions of both kinds, with small synthetic value lists.
const KINDS: [Dimension; 5] = [
    Dimension::Gender,
    Dimension::ExploitationType,
    Dimension::AgeBand,
    Dimension::MeansOfControl,
    Dimension::MigrantStatus,
];

fn plan(dims: &[usize], sizes: &[usize]) -> Plan {
    Plan::new(
        dims.iter().map(|&d| KINDS[d]).collect(),
        sizes.iter().map(|n| (0..*n).map(|i| format!("v{i}")).collect()).collect(),
    )
}

/// Exact distinct counts of every entry, from victims given as value sets per dimension.
fn exact(plan: &Plan, victims: &[Vec<Vec<usize>>]) -> Vec<i64> {
    let mut counts = vec![0i64; plan.len()];
    let dims = plan.dims.len();
    for victim in victims {
        let mut keys = std::collections::BTreeSet::new();
        for mask in 0..(1usize << dims) {
            let mut partial: Vec<Vec<usize>> = vec![Vec::new()];
            for (d, values) in victim.iter().enumerate().take(dims) {
                let choices: Vec<usize> = if mask & (1 << d) != 0 { values.clone() } else { vec![plan.total_index(d)] };
                partial =
                    partial.iter().flat_map(|k| choices.iter().map(move |&c| [k.clone(), vec![c]].concat())).collect();
            }
            keys.extend(partial.into_iter().map(|k| plan.dense(&k)));
        }
        for key in keys {
            counts[key] += 1;
        }
    }
    counts
}

fn victims_strategy(sizes: Vec<usize>, multi: Vec<bool>) -> impl Strategy<Value = Vec<Vec<Vec<usize>>>> {
    let per_dim: Vec<BoxedStrategy<Vec<usize>>> = sizes
        .iter()
        .zip(&multi)
        .map(|(&n, &is_multi)| {
            if is_multi {
                proptest::collection::btree_set(0..n, 1..=n.min(2)).prop_map(|s| s.into_iter().collect()).boxed()
            } else {
                (0..n).prop_map(|v| vec![v]).boxed()
            }
        })
        .collect();
    proptest::collection::vec(per_dim, 0..60)
}

/// Dimension sizes, bounds, each victim's values per dimension, and noise.
type Table = (Vec<usize>, Vec<usize>, Vec<Vec<Vec<usize>>>, Vec<i64>);

fn table() -> impl Strategy<Value = Table> {
    (proptest::sample::subsequence(vec![0usize, 1, 2, 3, 4], 1..=3), proptest::collection::vec(1usize..5, 3))
        .prop_flat_map(|(dims, sizes)| {
            let sizes: Vec<usize> = sizes[..dims.len()].to_vec();
            let multi: Vec<bool> = dims.iter().map(|&d| KINDS[d].bound().is_some()).collect();
            let entries: usize = sizes.iter().map(|n| n + 1).product();
            (
                Just(dims),
                Just(sizes.clone()),
                victims_strategy(sizes, multi),
                proptest::collection::vec(-12i64..=12, entries),
            )
        })
}

fn check_consistent(plan: &Plan, values: &[i64]) -> Result<(), TestCaseError> {
    for (i, &v) in values.iter().enumerate() {
        prop_assert!(v >= 0, "negative entry {i}: {v}");
        let key = plan.key(i);
        for &d in &plan.chain {
            if key[d] == plan.total_index(d) {
                let parts: i64 = (0..plan.values[d].len())
                    .map(|j| {
                        let mut k = key.clone();
                        k[d] = j;
                        values[plan.dense(&k)]
                    })
                    .sum();
                prop_assert_eq!(parts, v, "parts of {:?} over dimension {} do not add up", key, d);
            }
        }
        if let Some(&d) = plan.multi.iter().find(|&&d| key[d] != plan.total_index(d)) {
            let mut total = key.clone();
            total[d] = plan.total_index(d);
            prop_assert!(v <= values[plan.dense(&total)], "a part of {:?} exceeds its total over {}", key, d);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the noise: non-negative integers, parts adding up to their totals along every
    /// single-valued dimension, and parts of a multi-valued one at most their total.
    #[test]
    fn any_noisy_measurement_becomes_a_consistent_table((dims, sizes, victims, noise) in table()) {
        let plan = plan(&dims, &sizes);
        let exact = exact(&plan, &victims);
        let noisy: Vec<i64> = plan.measured.iter().map(|&e| exact[e] + noise[e]).collect();
        let fitted = fit(&plan, &noisy, 16.0);
        check_consistent(&plan, &fitted.values)?;
        prop_assert!(fitted.variance.iter().all(|v| *v > 0.0 && v.is_finite()));
    }

    /// Without noise the table is given back exactly: consistency never distorts true counts.
    #[test]
    fn exact_counts_pass_through_unchanged((dims, sizes, victims, _noise) in table()) {
        let plan = plan(&dims, &sizes);
        let exact = exact(&plan, &victims);
        let measured: Vec<i64> = plan.measured.iter().map(|&e| exact[e]).collect();
        prop_assert_eq!(fit(&plan, &measured, 16.0).values, exact);
    }
}

#[test]
fn projection_keeps_totals_unbiased_where_clamping_would_not() {
    // A total of 100 over 40 mostly empty cells measured with noise: clamping each cell at zero and
    // adding them up would inflate the total by about 0.4 sigma per empty cell.
    let plan = plan(&[0, 2], &[4, 10]);
    let mut victims = Vec::new();
    for i in 0..100 {
        victims.push(vec![vec![i % 2], vec![i % 3]]);
    }
    let exact = exact(&plan, &victims);
    let mut drift = 0.0;
    for round in 0..200u64 {
        let noisy: Vec<i64> = plan
            .measured
            .iter()
            .enumerate()
            .map(|(i, &e)| exact[e] + ((i as u64 * 7919 + round * 104729) % 9) as i64 - 4)
            .collect();
        let fitted = fit(&plan, &noisy, 6.7);
        drift += (fitted.values[plan.len() - 1] - 100) as f64;
    }
    assert!((drift / 200.0).abs() < 2.0, "the grand total drifts by {} on average", drift / 200.0);
}
