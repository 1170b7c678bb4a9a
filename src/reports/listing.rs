//! What the catalogue shows each role: each report's parameters, dimensions, and how its guarded
//! releases are made at the deployment's settings. Built once at start.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use utoipa::ToSchema;

use super::catalogue::Dimension;
use super::output::NoiseStatement;
use super::{ParamSpec, measure};
use crate::config::Settings;
use crate::domain::Role;

/// How a report's guarded releases are made, at the deployment's settings.
#[derive(Serialize, ToSchema)]
pub struct ReportPrivacy {
    /// Most values one victim counts under, per multi-valued dimension of the default table.
    pub bounds: BTreeMap<String, u32>,
    /// Measured entries one victim can move, each by one (L1 and squared L2 sensitivity).
    pub sensitivity: u64,
    pub noise: NoiseStatement,
    /// The other OpenDP mechanism at the same privacy cost, for comparison.
    pub alternative: NoiseStatement,
    /// Expected error of a cell: half-width of its 95% interval.
    pub cell_margin: i64,
    /// Privacy cost of a new release (zCDP rho), and the same as (epsilon, delta)-DP.
    pub rho: f64,
    pub epsilon: f64,
    pub delta: f64,
}

/// A report of the catalogue.
#[derive(Serialize, ToSchema)]
pub struct ReportInfo {
    #[schema(example = "trafficking-flows")]
    pub id: String,
    pub title: String,
    pub description: String,
    /// Its own parameters; every report also takes `from`, `to` (YYYY-MM), `operation` and `format`.
    pub parameters: Vec<ParamSpec>,
    /// Dimensions of its table with default parameters.
    pub dimensions: Vec<Dimension>,
    pub roles: Vec<Role>,
    /// Noise and bounds of a guarded release of the default table.
    pub privacy: ReportPrivacy,
}

fn privacy_of(dims: &[Dimension], settings: &Settings) -> Result<ReportPrivacy, String> {
    let [noise, alternative] = measure::calibrate(measure::sensitivity_of(dims), settings.dp_rho)?;
    let round = |x: f64| (x * 100.0).round() / 100.0;
    Ok(ReportPrivacy {
        bounds: dims.iter().filter_map(|d| d.bound().map(|b| (d.to_string(), b))).collect(),
        sensitivity: noise.sensitivity,
        noise: NoiseStatement { mechanism: noise.mechanism, noise_sd: round(noise.sd) },
        alternative: NoiseStatement { mechanism: alternative.mechanism, noise_sd: round(alternative.sd) },
        cell_margin: measure::margin(noise.sd * noise.sd),
        rho: settings.dp_rho,
        epsilon: (measure::epsilon_at(settings.dp_rho, settings.dp_delta)? * 1000.0).ceil() / 1000.0,
        delta: settings.dp_delta,
    })
}

/// The catalogue each role sees, serialised once at start: the registry and the settings never
/// change while the service runs.
pub fn catalogues(registry: &super::Registry, settings: &Settings) -> HashMap<Role, String> {
    Role::ALL
        .iter()
        .map(|role| {
            let infos: Vec<ReportInfo> = registry
                .plugins
                .iter()
                .filter(|p| p.roles().contains(role))
                .filter_map(|p| {
                    let dimensions = p.table(&HashMap::new()).map(|t| t.dimensions).unwrap_or_default();
                    let privacy = privacy_of(&dimensions, settings)
                        .map_err(|e| tracing::error!(report = p.id(), error = %e, "noise calibration"))
                        .ok()?;
                    Some(ReportInfo {
                        id: p.id().to_owned(),
                        title: p.title().to_owned(),
                        description: p.description().to_owned(),
                        parameters: p.parameters(),
                        dimensions,
                        roles: p.roles().to_vec(),
                        privacy,
                    })
                })
                .collect();
            (*role, serde_json::to_string(&infos).unwrap_or_else(|_| "[]".into()))
        })
        .collect()
}
