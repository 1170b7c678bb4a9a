//! Differential-privacy noise from OpenDP (discrete Laplace over integer counts, OpenSSL-backed
//! sampling: the configuration OpenDP calls secure), and the sensitivity of a report table.

use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::make_geometric;
use opendp::measures::MaxDivergence;
use opendp::metrics::L1Distance;

use super::catalogue::Dimension;

/// The most entries one victim can add to in a CUBE over `dims`: every grouping set, times the
/// values the victim can take in each multi-valued dimension.
pub fn sensitivity(dims: &[Dimension]) -> i64 {
    dims.iter().map(|d| 1 + max_values(*d)).product()
}

/// How many values of a dimension one victim can have (bounded by validation or vocabulary).
fn max_values(d: Dimension) -> i64 {
    use Dimension::*;
    match d {
        Citizenship | CitizenshipRegion | CitizenshipSubregion => 5,
        ExploitationType => 10,
        RecruitmentMethod => 9,
        MeansOfControl => 17,
        AssistanceKind | ReferralService => 11,
        ReferralStatus => 5,
        ReferralResponseTime => 6,
        Figure => 6,
        // Single-valued: listed one by one, so a new dimension must be placed on purpose.
        CountryOfExploitation | ExploitationSubregion | ExploitationRegion | Gender | AgeBand | MinorOrAdult
        | RecruiterRelation | TraffickingStatus | IdentifiedBy | IdentifiedMonth | IdentifiedQuarter | IdentifiedYear => 1,
    }
}

/// Adds noise calibrated to `epsilon` for one release of `counts`; returns the noisy counts
/// (negative results clamped to 0, which is post-processing) and the epsilon OpenDP accounts.
pub fn release(counts: &[i64], epsilon: f64, sensitivity: i64) -> Result<(Vec<i64>, f64, f64), String> {
    let scale = sensitivity as f64 / epsilon;
    let mechanism = make_geometric::<_, _, MaxDivergence>(
        VectorDomain::new(AtomDomain::<i64>::default()),
        L1Distance::<i64>::default(),
        scale,
        None,
    )
    .map_err(|e| e.to_string())?;
    let spent = mechanism.map(&sensitivity).map_err(|e| e.to_string())?;
    let noisy = mechanism.invoke(&counts.to_vec()).map_err(|e| e.to_string())?;
    Ok((noisy.into_iter().map(|c| c.max(0)).collect(), spent, scale))
}

#[cfg(test)]
mod tests {
    #[test]
    fn noise_is_calibrated_and_accounted() {
        let counts = vec![100i64; 200];
        let (noisy, spent, scale) = super::release(&counts, 1.0, 4).unwrap();
        assert!((spent - 1.0).abs() < 1e-6, "epsilon spent {spent}");
        assert_eq!(scale, 4.0);
        assert!(noisy.iter().any(|n| *n != 100), "noise was added");
        let mean = noisy.iter().sum::<i64>() as f64 / noisy.len() as f64;
        assert!((mean - 100.0).abs() < 3.0, "unbiased: {mean}");
    }
}
