//! Post-processing of a release's noisy measurement into a consistent table: non-negative
//! integers, every total over a single-valued dimension equal to the sum of its parts, and every
//! part of a multi-valued dimension at most its total. Post-processing costs no privacy: it only
//! ever sees the noisy measurement.
//!
//! Along each block's chain (see `measure.rs`), estimates are first combined bottom-up (a node's
//! own measurement with the sum of its children's estimates, weighted by their variances, as in
//! Hay et al., "Boosting the accuracy of differentially private histograms through consistency",
//! 2010). Then top-down, each node's final count is fixed and its children's estimates are
//! projected onto "non-negative, at most the corresponding entries of the blocks above, adding up
//! to the node" and rounded without breaking that sum. Totals off the chain are then sums of
//! cells. Projecting (rather than clamping negative estimates to zero) keeps totals unbiased.

use super::measure::Plan;

/// Every entry of the grid (dense order) and the variance of its noise before post-processing,
/// from which the published margins come.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub values: Vec<i64>,
    pub variance: Vec<f64>,
}

pub fn fit(plan: &Plan, noisy: &[i64], noise_variance: f64) -> Fitted {
    let n = plan.len();
    let dims = plan.dims.len();
    let mut measured = vec![f64::NAN; n];
    for (i, &entry) in plan.measured.iter().enumerate() {
        measured[entry] = noisy[i] as f64;
    }
    // The variance of a chain node's combined estimate depends only on its level.
    let k = plan.chain.len();
    let mut level_var = vec![noise_variance; k + 1];
    for level in (0..k).rev() {
        let fan = plan.values[plan.chain[level]].len() as f64;
        level_var[level] =
            if fan == 0.0 { noise_variance } else { 1.0 / (1.0 / noise_variance + 1.0 / (fan * level_var[level + 1])) };
    }
    let mut fit = Fitter {
        plan,
        measured,
        estimate: vec![0.0; n],
        values: vec![None; n],
        variance: vec![0.0; n],
        level_var,
        noise_variance,
    };
    let m = plan.multi.len();
    let mut blocks: Vec<usize> = (0..1usize << m).collect();
    blocks.sort_by_key(|b| (b.count_ones(), *b));
    for block in blocks {
        let mut on = vec![false; dims];
        for (j, &d) in plan.multi.iter().enumerate() {
            on[d] = block & (1 << j) != 0;
        }
        let mut roots = Vec::new();
        plan.for_each_key(&on, |root| roots.push(root));
        for root in roots {
            fit.estimate_up(root, 0);
            let cap = fit.cap(root).unwrap_or(i64::MAX);
            let value = fit.estimate[root].round().clamp(0.0, cap as f64) as i64;
            fit.settle_down(root, 0, value);
        }
    }
    fit.derive_off_chain();
    Fitted {
        values: fit.values.into_iter().map(|v| v.expect("every entry is fitted")).collect(),
        variance: fit.variance,
    }
}

struct Fitter<'p> {
    plan: &'p Plan,
    measured: Vec<f64>,
    estimate: Vec<f64>,
    values: Vec<Option<i64>>,
    variance: Vec<f64>,
    level_var: Vec<f64>,
    noise_variance: f64,
}

impl Fitter<'_> {
    /// The children of chain node `node` at `level`: its entries by the next chain dimension.
    fn children(&self, node: usize, level: usize) -> Vec<usize> {
        let d = self.plan.chain[level];
        let mut key = self.plan.key(node);
        (0..self.plan.values[d].len())
            .map(|v| {
                key[d] = v;
                self.plan.dense(&key)
            })
            .collect()
    }

    fn estimate_up(&mut self, node: usize, level: usize) {
        let own = self.measured[node];
        if level == self.plan.chain.len() {
            self.estimate[node] = own;
            return;
        }
        let children = self.children(node, level);
        for &c in &children {
            self.estimate_up(c, level + 1);
        }
        if children.is_empty() {
            self.estimate[node] = own;
            return;
        }
        let sum: f64 = children.iter().map(|&c| self.estimate[c]).sum();
        let (w_own, w_sum) = (1.0 / self.noise_variance, 1.0 / (children.len() as f64 * self.level_var[level + 1]));
        self.estimate[node] = (own * w_own + sum * w_sum) / (w_own + w_sum);
    }

    /// The entries of the blocks above `entry`: the same key with one of its set multi-valued
    /// dimensions turned into a total. Already final, as blocks are fitted in that order.
    fn parents(&self, entry: usize) -> Vec<usize> {
        let key = self.plan.key(entry);
        self.plan
            .multi
            .iter()
            .filter(|&&d| key[d] != self.plan.total_index(d))
            .map(|&d| {
                let mut parent = key.clone();
                parent[d] = self.plan.total_index(d);
                self.plan.dense(&parent)
            })
            .collect()
    }

    fn cap(&self, entry: usize) -> Option<i64> {
        self.parents(entry).iter().map(|&p| self.values[p].expect("parents first")).min()
    }

    fn settle_down(&mut self, node: usize, level: usize, value: i64) {
        self.values[node] = Some(value);
        self.variance[node] = self.level_var[level];
        if level == self.plan.chain.len() {
            return;
        }
        let children = self.children(node, level);
        if children.is_empty() {
            return;
        }
        let estimates: Vec<f64> = children.iter().map(|&c| self.estimate[c]).collect();
        let mut caps: Vec<i64> = children.iter().map(|&c| self.cap(c).unwrap_or(i64::MAX)).collect();
        if caps.iter().map(|&c| c as i128).sum::<i128>() < value as i128 {
            // The blocks above disagree (each is consistent on its own, noise made them differ):
            // the first one alone always leaves room, since this node is within its entry.
            caps = children
                .iter()
                .map(|&c| self.parents(c).first().map(|&p| self.values[p].expect("parents first")).unwrap_or(i64::MAX))
                .collect();
        }
        let parts = round_preserving_sum(&project(&estimates, value, &caps), value, &caps);
        for (&c, part) in children.iter().zip(parts) {
            self.settle_down(c, level + 1, part);
        }
    }

    /// Totals over single-valued dimensions off the chain: sums of the entries below them,
    /// fewest totals first so that every part is known.
    fn derive_off_chain(&mut self) {
        let plan = self.plan;
        let totals_in = |key: &[usize]| plan.chain.iter().filter(|&&d| key[d] == plan.total_index(d)).count();
        let mut pending: Vec<(usize, usize)> =
            (0..plan.len()).filter(|&i| self.values[i].is_none()).map(|i| (totals_in(&plan.key(i)), i)).collect();
        pending.sort();
        for (_, entry) in pending {
            let key = plan.key(entry);
            let d = *plan
                .chain
                .iter()
                .find(|&&d| key[d] == plan.total_index(d))
                .expect("an off-chain entry has a chain total");
            let (mut value, mut variance) = (0i64, 0.0);
            for v in 0..plan.values[d].len() {
                let mut part = key.clone();
                part[d] = v;
                let part = plan.dense(&part);
                value += self.values[part].expect("parts first");
                variance += self.variance[part];
            }
            self.values[entry] = Some(value);
            self.variance[entry] = variance;
        }
    }
}

/// The point closest to `y` with 0 <= x_i <= caps_i and sum x = total (the caps leave room).
fn project(y: &[f64], total: i64, caps: &[i64]) -> Vec<f64> {
    let at = |theta: f64| -> Vec<f64> { y.iter().zip(caps).map(|(v, &c)| (v - theta).clamp(0.0, c as f64)).collect() };
    let target = total as f64;
    let (mut lo, mut hi) = (
        y.iter().copied().fold(f64::INFINITY, f64::min) - target - 1.0,
        y.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if at(mid).iter().sum::<f64>() > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-9 {
            break;
        }
    }
    at(hi)
}

/// Integers within the caps adding up to exactly `total`: floors, then one more to the largest
/// remainders (ties to the first).
fn round_preserving_sum(x: &[f64], total: i64, caps: &[i64]) -> Vec<i64> {
    let mut out: Vec<i64> = x.iter().zip(caps).map(|(v, &c)| (v.floor() as i64).clamp(0, c)).collect();
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| (x[b] - x[b].floor()).total_cmp(&(x[a] - x[a].floor())).then(a.cmp(&b)));
    let mut missing = total - out.iter().sum::<i64>();
    while missing > 0 {
        let before = missing;
        for &i in &order {
            if missing > 0 && out[i] < caps[i] {
                out[i] += 1;
                missing -= 1;
            }
        }
        if missing == before {
            break;
        }
    }
    let mut excess = -missing;
    for &i in order.iter().rev() {
        while excess > 0 && out[i] > 0 {
            out[i] -= 1;
            excess -= 1;
        }
    }
    out
}

#[cfg(test)]
mod tests;
