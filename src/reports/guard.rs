//! The privacy guard's disclosure control: small-cell suppression with complementary suppression,
//! so that no suppressed count can be recomputed from any published cell or total.
//!
//! A table holds every grouping set of its dimensions (CUBE): cells, and totals over any subset of
//! dimensions. Each "line" (one dimension varying, the others fixed, plus its total) gives the
//! equation sum(cells) = total. An attacker knows every published entry; a suppressed entry is
//! derivable when its unit vector lies in the row space of those equations restricted to the
//! suppressed entries. The guard suppresses entries until none is derivable, checking that exactly
//! by elimination over each connected group of suppressed entries. Multi-valued dimensions (a
//! victim with two exploitation types) make the equations inequalities; treating them as equations
//! only overestimates what an attacker knows, which errs on the side of suppression.

use std::collections::HashMap;

/// One entry: a value per dimension (`None` = total over that dimension) and a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<Option<String>>,
    pub count: i64,
}

/// The outcome: the same entries, `None` where suppressed.
#[derive(Debug, Clone)]
pub struct Protected {
    pub entries: Vec<(Vec<Option<String>>, Option<i64>)>,
    pub suppressed: usize,
    pub primary: usize,
}

/// Groups of entry indexes that form one equation: cells, then the total (last).
fn lines(entries: &[Entry]) -> Vec<Vec<usize>> {
    let dims = entries.first().map(|e| e.key.len()).unwrap_or(0);
    let index: HashMap<&Vec<Option<String>>, usize> = entries.iter().enumerate().map(|(i, e)| (&e.key, i)).collect();
    let mut lines: HashMap<(usize, Vec<Option<String>>), Vec<usize>> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        for d in 0..dims {
            if entry.key[d].is_some() {
                let mut total = entry.key.clone();
                total[d] = None;
                lines.entry((d, total)).or_default().push(i);
            }
        }
    }
    // Sorted, so the same table is always protected the same way: two runs of one request must not
    // withhold different cells, or their union would give cells away.
    let mut lines: Vec<Vec<usize>> = lines
        .into_iter()
        .filter_map(|((_, total_key), mut cells)| {
            let total = *index.get(&total_key)?;
            cells.sort_unstable();
            cells.push(total);
            Some(cells)
        })
        .collect();
    lines.sort();
    lines
}

/// Indexes of suppressed entries that the published entries determine.
fn derivable(lines: &[Vec<usize>], suppressed: &[bool]) -> Vec<usize> {
    // Connected groups of suppressed entries (sharing an equation), each solved on its own.
    let n = suppressed.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut Vec<usize>, x: usize) -> usize {
        let mut r = x;
        while p[r] != r {
            r = p[r];
        }
        let mut y = x;
        while p[y] != r {
            let next = p[y];
            p[y] = r;
            y = next;
        }
        r
    }
    for line in lines {
        let vars: Vec<usize> = line.iter().copied().filter(|&i| suppressed[i]).collect();
        for pair in vars.windows(2) {
            let (a, b) = (find(&mut parent, pair[0]), find(&mut parent, pair[1]));
            parent[a] = b;
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for i in (0..n).filter(|&i| suppressed[i]) {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    let mut found = Vec::new();
    for vars in groups.values() {
        let col: HashMap<usize, usize> = vars.iter().enumerate().map(|(c, &v)| (v, c)).collect();
        let mut rows: Vec<Vec<f64>> = lines
            .iter()
            .filter(|line| line.iter().any(|i| col.contains_key(i)))
            .map(|line| {
                let mut row = vec![0.0; vars.len()];
                let total = *line.last().expect("a line has a total");
                for &i in line {
                    if let Some(&c) = col.get(&i) {
                        row[c] += if i == total { -1.0 } else { 1.0 };
                    }
                }
                row
            })
            .collect();
        for c in reduced_unit_columns(&mut rows, vars.len()) {
            found.push(vars[c]);
        }
    }
    found.sort_unstable();
    found
}

/// Reduced row echelon form; returns the columns whose unit vector is a row (determined values).
fn reduced_unit_columns(rows: &mut [Vec<f64>], cols: usize) -> Vec<usize> {
    const EPS: f64 = 1e-9;
    let mut pivot_row = 0;
    let mut pivots = Vec::new();
    for c in 0..cols {
        let Some(best) = (pivot_row..rows.len()).max_by(|&a, &b| rows[a][c].abs().total_cmp(&rows[b][c].abs())) else { break };
        if rows[best][c].abs() < EPS {
            continue;
        }
        rows.swap(pivot_row, best);
        let p = rows[pivot_row][c];
        rows[pivot_row].iter_mut().for_each(|v| *v /= p);
        for r in 0..rows.len() {
            if r != pivot_row && rows[r][c].abs() > EPS {
                let f = rows[r][c];
                let pivot = rows[pivot_row].clone();
                rows[r].iter_mut().zip(&pivot).for_each(|(v, pv)| *v -= f * pv);
            }
        }
        pivots.push((pivot_row, c));
        pivot_row += 1;
        if pivot_row == rows.len() {
            break;
        }
    }
    pivots
        .into_iter()
        .filter(|&(r, c)| rows[r].iter().enumerate().all(|(j, v)| j == c || v.abs() < EPS))
        .map(|(_, c)| c)
        .collect()
}

/// Applies primary suppression (counts from 1 to k-1) and complementary suppression.
pub fn protect(entries: &[Entry], k: i64) -> Protected {
    let mut suppressed: Vec<bool> = entries.iter().map(|e| e.count > 0 && e.count < k).collect();
    let primary = suppressed.iter().filter(|s| **s).count();
    let lines = lines(entries);
    loop {
        let mut changed = false;
        // Suppressed cells are known to be at least 1 each: where a line's total is published, the
        // cells withheld in it must add up to at least k, or their bounds close in.
        for line in &lines {
            let total = *line.last().expect("total");
            let withheld: Vec<usize> = line[..line.len() - 1].iter().copied().filter(|&i| suppressed[i]).collect();
            if !suppressed[total] && !withheld.is_empty() && withheld.iter().map(|&i| entries[i].count).sum::<i64>() < k {
                let candidate = line
                    .iter()
                    .copied()
                    .filter(|&i| !suppressed[i] && entries[i].count > 0)
                    .min_by_key(|&i| (i == total, entries[i].count));
                if let Some(i) = candidate {
                    suppressed[i] = true;
                    changed = true;
                }
            }
        }
        // A line with a single suppressed entry gives it away: suppress the smallest other one.
        for line in &lines {
            if line.iter().filter(|&&i| suppressed[i]).count() == 1 {
                let candidate = line
                    .iter()
                    .copied()
                    .filter(|&i| !suppressed[i] && entries[i].count > 0)
                    .min_by_key(|&i| (entries[i].count, i == *line.last().expect("total")));
                if let Some(i) = candidate {
                    suppressed[i] = true;
                    changed = true;
                }
            }
        }
        // Exact check: anything still determined by the published entries gets company.
        let determined = derivable(&lines, &suppressed);
        for &i in &determined {
            for line in lines.iter().filter(|line| line.contains(&i)) {
                let candidate = line
                    .iter()
                    .copied()
                    .filter(|&j| !suppressed[j] && entries[j].count > 0)
                    .min_by_key(|&j| entries[j].count);
                if let Some(j) = candidate {
                    suppressed[j] = true;
                    changed = true;
                }
            }
        }
        if !changed && !determined.is_empty() {
            // Every line through a determined entry is already fully suppressed: widen to any line
            // touching a suppressed entry. Progress is guaranteed; at worst all is suppressed.
            let candidate = lines
                .iter()
                .filter(|line| line.iter().any(|&i| suppressed[i]))
                .flat_map(|line| line.iter().copied())
                .filter(|&j| !suppressed[j] && entries[j].count > 0)
                .min_by_key(|&j| entries[j].count);
            if let Some(j) = candidate {
                suppressed[j] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let count = suppressed.iter().filter(|s| **s).count();
    Protected {
        entries: entries.iter().zip(&suppressed).map(|(e, s)| (e.key.clone(), (!s).then_some(e.count))).collect(),
        suppressed: count,
        primary,
    }
}

/// For tests: whether any suppressed entry of `protected` is determined by what it publishes.
pub fn leaks(entries: &[Entry], protected: &Protected) -> Vec<usize> {
    let suppressed: Vec<bool> = protected.entries.iter().map(|(_, c)| c.is_none()).collect();
    derivable(&lines(entries), &suppressed)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A full CUBE over `dims` single-valued dimensions from per-cell counts.
    fn cube(cells: &[(Vec<&str>, i64)]) -> Vec<Entry> {
        let dims = cells[0].0.len();
        let mut totals: HashMap<Vec<Option<String>>, i64> = HashMap::new();
        for (key, count) in cells {
            for mask in 0..(1u32 << dims) {
                let k: Vec<Option<String>> =
                    (0..dims).map(|d| (mask & (1 << d) == 0).then(|| key[d].to_owned())).collect();
                *totals.entry(k).or_default() += count;
            }
        }
        totals.into_iter().filter(|(_, c)| *c > 0).map(|(key, count)| Entry { key, count }).collect()
    }

    #[test]
    fn the_same_table_is_always_protected_the_same_way() {
        let cells: Vec<(Vec<&str>, i64)> = (0..16).map(|i| (vec![["a", "b", "c", "d"][i % 4], ["w", "x", "y", "z"][i / 4]], [3, 40, 25, 2][i % 4] + i as i64)).collect();
        // The engine sorts entries by key before protecting them, as here.
        let mut entries = cube(&cells);
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        let first: Vec<_> = protect(&entries, 11).entries;
        for _ in 0..20 {
            assert_eq!(first, protect(&entries, 11).entries);
        }
    }

    #[test]
    fn a_lone_small_cell_takes_a_partner() {
        let entries = cube(&[(vec!["PER", "SEN"], 3), (vec!["PER", "MAR"], 40), (vec!["BRA", "SEN"], 25), (vec!["BRA", "MAR"], 30)]);
        let p = protect(&entries, 11);
        assert!(p.suppressed >= 4, "a 2x2 needs all four cells hidden once one is: {p:?}");
        assert!(leaks(&entries, &p).is_empty());
        let released: Vec<i64> = p.entries.iter().filter_map(|(_, c)| *c).collect();
        assert!(released.iter().all(|c| *c >= 11));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// For random tables and k: nothing released is below k, and no suppressed entry can be
        /// derived from any combination of released cells and totals.
        #[test]
        fn no_small_cell_released_and_none_derivable(
            rows in 1usize..5, cols in 1usize..5, layers in 1usize..3,
            counts in proptest::collection::vec(0i64..40, 40),
            k in 5i64..15,
        ) {
            let names = ["a", "b", "c", "d", "e"];
            let mut cells = Vec::new();
            for r in 0..rows {
                for c in 0..cols {
                    for l in 0..layers {
                        cells.push((vec![names[r], names[c], names[l]], counts[(r * 25 + c * 5 + l) % 40]));
                    }
                }
            }
            let entries = cube(&cells);
            prop_assume!(!entries.is_empty());
            let p = protect(&entries, k);
            for (_, count) in &p.entries {
                if let Some(c) = count {
                    prop_assert!(*c >= k);
                }
            }
            prop_assert!(leaks(&entries, &p).is_empty(), "derivable: {:?}", leaks(&entries, &p));
            // Where a total is published, what is withheld under it adds up to at least k.
            for line in lines(&entries) {
                let total = *line.last().unwrap();
                let withheld: i64 = line[..line.len() - 1].iter().filter(|&&i| p.entries[i].1.is_none()).map(|&i| entries[i].count).sum();
                let any = line[..line.len() - 1].iter().any(|&i| p.entries[i].1.is_none());
                if p.entries[total].1.is_some() && any {
                    prop_assert!(withheld >= k, "withheld {} under a published total", withheld);
                }
            }
        }
    }
}
