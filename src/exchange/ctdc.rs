//! The file an organisation sends to IOM's Counter-Trafficking Data Collaborative (CTDC): its own
//! consenting cases in CTDC's global-dataset columns, generalised and k-anonymised as CTDC asks
//! (D115). It goes to CTDC by the organisation's own hand; it is never served to partners.

use std::collections::{BTreeSet, HashMap};

use actix_web::{HttpResponse, get, http::header, web};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use crate::audit::{self, AuditAction, AuditOutcome, Event};
use crate::auth::Principal;
use crate::db::schema::victims;
use crate::domain::policy;
use crate::error::ApiResult;
use crate::extract::RequestContext;
use crate::state::AppState;
use crate::victims::model::VictimRow;
use crate::vocabularies;

/// CTDC's threshold: every combination of the quasi-identifiers is shared by at least this many
/// cases in the file.
pub const K: usize = 11;

/// What identifies a case in combination (the quasi-identifiers), as released.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quasi {
    pub year: String,
    pub gender: String,
    pub age: String,
    pub citizenship: String,
    pub exploitation: String,
}

/// CTDC's broad age bands.
fn age_band(age: Option<i16>) -> &'static str {
    match age {
        None => "",
        Some(a) if a <= 8 => "0--8",
        Some(a) if a <= 17 => "9--17",
        Some(a) if a <= 20 => "18--20",
        Some(a) if a <= 23 => "21--23",
        Some(a) if a <= 26 => "24--26",
        Some(a) if a <= 29 => "27--29",
        Some(a) if a <= 38 => "30--38",
        Some(a) if a <= 47 => "39--47",
        Some(_) => "48+",
    }
}

/// A country at a level of generalisation: 0 its alpha-2 code, 1 its UN sub-region, 2 its region.
fn place(alpha3: Option<&str>, level: u8) -> String {
    let Some(alpha3) = alpha3 else { return String::new() };
    let Some(c) = crate::domain::country::countries().iter().find(|c| c.alpha3 == alpha3) else {
        return String::new();
    };
    match level {
        0 => keshvar::Alpha3::try_from(alpha3).map(|a| a.to_country().alpha2().to_string()).unwrap_or_default(),
        1 => named(&c.subregion),
        _ => named(&c.region),
    }
}

/// A UN M49 region as people write it: `latin-america-and-the-caribbean` is "Latin America and
/// the Caribbean".
fn named(slug: &str) -> String {
    let words: Vec<String> = slug
        .split('-')
        .enumerate()
        .map(|(i, w)| match (i, w) {
            (i, "and" | "the" | "of") if i > 0 => w.to_owned(),
            _ => w[..1].to_uppercase() + &w[1..],
        })
        .collect();
    words.join(" ")
}

/// A case's quasi-identifiers at a level: 0 exact, 1 sub-regions, 2 regions, 3 regions and minor
/// or adult only.
fn quasi(row: &VictimRow, level: u8) -> Quasi {
    // Without an age, minor or adult is all that is known (and `majorityStatus` says it anyway).
    let age = match (level, row.age_at_identification) {
        (3, _) | (_, None) => if row.is_minor { "0--17" } else { "18+" }.to_owned(),
        (_, age) => age_band(age).to_owned(),
    };
    Quasi {
        year: row.identified_on.format("%Y").to_string(),
        gender: vocabularies::ctdc("gender", row.gender.as_str()).unwrap_or("Unknown").to_owned(),
        age,
        citizenship: place(<[_]>::first(&row.citizenship).map(|c| c.as_str()), level),
        exploitation: place(row.country_of_exploitation.as_ref().map(|c| c.as_str()), level),
    }
}

/// Generalises each case only as far as it must, level by level, until its combination of
/// quasi-identifiers is shared by at least `K` cases; cases still alone at the last level are
/// withheld. Returns each released case's index with its quasi-identifiers.
pub fn anonymise(rows: &[VictimRow]) -> (Vec<(usize, Quasi)>, usize) {
    let mut fixed: Vec<(usize, Quasi)> = Vec::new();
    let mut pending: Vec<usize> = (0..rows.len()).collect();
    for level in 0..=3 {
        let candidates: Vec<(usize, Quasi)> = pending.iter().map(|&i| (i, quasi(&rows[i], level))).collect();
        let mut counts: HashMap<&Quasi, usize> = HashMap::new();
        for (_, q) in fixed.iter().chain(&candidates) {
            *counts.entry(q).or_default() += 1;
        }
        let (pass, wait): (Vec<_>, Vec<_>) = candidates.iter().cloned().partition(|(_, q)| counts[q] >= K);
        pending = wait.into_iter().map(|(i, _)| i).collect();
        fixed.extend(pass);
    }
    fixed.sort_by_key(|(i, _)| *i);
    (fixed, pending.len())
}

/// The CTDC indicator columns of the lists that have them, in a stable order.
fn indicator_columns() -> Vec<(&'static str, &'static str)> {
    let lists =
        ["means_of_control", "exploitation_type", "sex_exploitation_type", "labour_sector", "recruiter_relation"];
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for list in lists {
        for code in vocabularies::lists().into_iter().filter(|l| l.name == list).flat_map(|l| l.codes) {
            if let Some(name) = code.ctdc
                && seen.insert(name)
            {
                out.push((list, name));
            }
        }
    }
    out.push(("recruitment_method", "isAbduction"));
    out
}

fn codes_of(row: &VictimRow, list: &str) -> Vec<String> {
    match list {
        "means_of_control" => row.means_of_control.iter().map(|c| c.to_string()).collect(),
        "exploitation_type" => row.exploitation_types.iter().map(|c| c.to_string()).collect(),
        "sex_exploitation_type" => row.sex_exploitation_types.iter().map(|c| c.to_string()).collect(),
        "labour_sector" => row.labour_sector.iter().cloned().collect(),
        "recruiter_relation" => row.recruiter_relation.iter().map(|c| c.to_string()).collect(),
        "recruitment_method" => row.recruitment_methods.iter().map(|c| c.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// The file: a header and one row per released case.
pub fn file(rows: &[VictimRow]) -> (String, usize, usize) {
    let (released, withheld) = anonymise(rows);
    let indicators = indicator_columns();
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let mut header = vec![
        "yearOfRegistration",
        "Datasource",
        "gender",
        "ageBroad",
        "majorityStatus",
        "citizenship",
        "CountryOfExploitation",
    ];
    header.extend(indicators.iter().map(|(_, name)| *name));
    let _ = writer.write_record(&header);
    for (i, q) in &released {
        let row = &rows[*i];
        let majority = if row.is_minor { "Minor" } else { "Adult" };
        let mut cells = vec![
            q.year.clone(),
            "Case Management".into(),
            q.gender.clone(),
            q.age.clone(),
            majority.into(),
            q.citizenship.clone(),
            q.exploitation.clone(),
        ];
        for (list, name) in &indicators {
            let hit = codes_of(row, list).iter().any(|c| vocabularies::ctdc(list, c) == Some(*name));
            cells.push(if hit { "1" } else { "0" }.into());
        }
        let _ = writer.write_record(&cells);
    }
    let text = String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default();
    (text, released.len(), withheld)
}

/// Your organisation's contribution to CTDC (admins), as CSV.
///
/// Your own cases whose consent to anonymised statistics stands, in the columns of CTDC's global
/// dataset: year of registration, gender, CTDC's broad age bands, citizenship and country of
/// exploitation, and an indicator column (`1`/`0`) for each means of control, type of exploitation
/// and of labour, and recruiter relation. No identity, no date but the year, no free text. The
/// quasi-identifiers (year, gender, age band, citizenship, country of exploitation) are
/// k-anonymised at k = 11 as CTDC requires: a case whose combination fewer than 11 cases share is
/// generalised to UN sub-regions, then regions, then minor or adult only, and withheld if it is
/// still that rare (`Haven-Withheld` says how many). For the organisation to send to CTDC itself;
/// audited.
#[utoipa::path(
    tag = "exchange",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The contribution file", content((String = "text/csv")),
            headers(("Haven-Withheld" = u64, description = "Cases too rare to release even generalised"))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
    )
)]
#[get("/exports/ctdc")]
pub async fn export_ctdc(
    state: web::Data<AppState>,
    principal: Principal,
    ctx: RequestContext,
) -> ApiResult<HttpResponse> {
    policy::contribute_to_ctdc(&principal).require()?;
    let mut conn = state.pool.get().await?;
    let rows: Vec<VictimRow> = victims::table
        .filter(victims::organization_id.eq(principal.organization_id))
        .filter(victims::consent_anonymised_statistics.eq(true))
        .order(victims::case_number.asc())
        .select(VictimRow::as_select())
        .load(&mut conn)
        .await?;
    let (text, released, withheld) = file(&rows);
    let event = Event::new(AuditAction::CtdcExported, AuditOutcome::Success)
        .by(&principal)
        .details(json!({ "released": released, "withheld": withheld, "k": K }));
    audit::record(&mut conn, &ctx, event).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"ctdc-contribution.csv\""))
        .insert_header(("Haven-Withheld", withheld.to_string()))
        .body(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_generalise_to_sub_regions_then_regions() {
        assert_eq!(place(Some("ISL"), 0), "IS");
        assert_eq!(place(Some("ISL"), 1), place(Some("NOR"), 1));
        assert_ne!(place(Some("ISL"), 1), place(Some("ITA"), 1));
        assert_eq!(place(Some("ISL"), 2), place(Some("ITA"), 2));
        assert_eq!(place(None, 0), "");
        assert_eq!((place(Some("ISL"), 1).as_str(), place(Some("ISL"), 2).as_str()), ("Northern Europe", "Europe"));
        assert_eq!(place(Some("PER"), 1), "South America");
        assert_eq!(named("australia-and-new-zealand"), "Australia and New Zealand");
    }
}
