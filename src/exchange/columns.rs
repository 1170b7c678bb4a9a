//! The HTCDS v2.0 columns of a case, both ways: one table says which case-file field each column
//! holds and how it is written, so the export and the import cannot drift apart (D114).
//!
//! A case is handled as its JSON document (the case file as the API writes it, its identity under
//! `identity`, and the closure reason in force under `closure_reason`); a column reads or writes
//! one path in it. HTCDS columns carry HTCDS value names (`vocabularies`); `hvn_` columns carry
//! what HTCDS has no field for, and Haven's own codes where HTCDS is coarser, so a round trip
//! through Haven loses nothing. On import an `hvn_` column, when filled, wins over the HTCDS column
//! of the same field.

use serde_json::{Map, Value, json};

use crate::vocabularies;

/// How a column writes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One code, written as its HTCDS value name in this vocabulary list.
    Htcds(&'static str),
    /// Several codes, each as its HTCDS value name, separated by `;`.
    HtcdsMany(&'static str),
    /// One value as the API writes it (a code, a country, a number, a date, text).
    Plain,
    /// Several values as the API writes them, separated by `;`.
    PlainMany,
    /// A yes/no, as `TRUE` or `FALSE`.
    Bool,
    /// The route: `kind:COUNTRY[:YYYY-MM]` legs separated by `;`.
    Route,
    /// Written for the reader, never read back (the case number is the receiving organisation's).
    ExportOnly,
}

pub struct Column {
    pub name: &'static str,
    /// The HTCDS field label, as IOM's template writes it in the row under the field names.
    pub label: &'static str,
    pub path: &'static str,
    pub kind: Kind,
    /// Identity-grade: written only when identities were asked for.
    pub identity: bool,
}

const fn col(name: &'static str, label: &'static str, path: &'static str, kind: Kind) -> Column {
    Column { name, label, path, kind, identity: false }
}

const fn who(name: &'static str, label: &'static str, path: &'static str, kind: Kind) -> Column {
    Column { name, label, path, kind, identity: true }
}

use Kind::*;

/// Every column, in the order the export writes them; HTCDS columns come before the `hvn_`
/// columns that refine them, so on import the refinement is read last.
pub static COLUMNS: &[Column] = &[
    col("hvn_CaseId", "", "id", Plain),
    // The case's version when the file was written: a row that changes the case must carry the
    // version it still has (D174), as a PATCH carries `If-Match`.
    col("hvn_Version", "", "version", Plain),
    col("hvn_CaseNumber", "", "case_number", ExportOnly),
    col("cas_Status", "Status", "status", Htcds("case_status")),
    col("cas_ReasonForCaseClosure", "Reason for Case Closure", "closure_reason", Htcds("closure_reason")),
    col("vic_TraffickingStatus", "Trafficking Status", "trafficking_status", Htcds("trafficking_status")),
    col(
        "vic_TraffickingStatusDecisionMakingOrg",
        "Trafficking Status Decision Making Organization",
        "identified_by",
        Htcds("identified_by"),
    ),
    col("prs_Gender", "Gender", "gender", Htcds("gender")),
    col("prs_Citizenship", "Citizenship", "citizenship", PlainMany),
    col("prs_PrimaryLanguage", "Primary Language", "primary_language", Plain),
    col("prs_SecondaryLanguage", "Secondary Language", "secondary_language", Plain),
    col("vic_AgeWhenTrafficked", "Age When Trafficked", "age_when_trafficked", Plain),
    col(
        "vic_RelationshipToTrafficker",
        "Relationship to Trafficker",
        "recruiter_relation",
        Htcds("recruiter_relation"),
    ),
    col("vic_MethodOfRecruitment", "Method of Recruitment", "recruitment_methods", HtcdsMany("recruitment_method")),
    col(
        "vic_RecruitmentWebsitesAndApps",
        "Recruitment Websites and Apps",
        "recruitment_platforms",
        HtcdsMany("platform"),
    ),
    col("vic_LocationOfRecruitment", "Location of Recruitment", "recruited_in", Plain),
    col("vic_MethodsOfControl", "Methods of Control", "means_of_control", HtcdsMany("means_of_control")),
    col("vic_TypeOfExploitation", "Type of Exploitation", "exploitation_types", HtcdsMany("exploitation_type")),
    col("vic_ForcedLabourIndustry", "Forced Labour Industry", "labour_sector", Htcds("labour_sector")),
    col(
        "vic_TypeOfSexExploitation",
        "Type of Sex Exploitation",
        "sex_exploitation_types",
        HtcdsMany("sex_exploitation_type"),
    ),
    col("vic_LocationOfExploitation", "Location of Exploitation", "country_of_exploitation", Plain),
    col(
        "vic_ExploitationWebsitesAndApps",
        "Exploitation Websites and Apps",
        "exploitation_platforms",
        HtcdsMany("platform"),
    ),
    col("per_RoleInProcess", "Role in Process", "perpetrator_roles", HtcdsMany("perpetrator_role")),
    col("con_Consent", "Consent", "consent.services", Bool),
    col("hvn_IdentifiedOn", "", "identified_on", Plain),
    col("hvn_IdentifiedIn", "", "identified_in", Plain),
    col("hvn_IdentifiedBy", "", "identified_by", Plain),
    col("hvn_Operation", "", "operation", Plain),
    col("hvn_AgeAtIdentification", "", "age_at_identification", Plain),
    col("hvn_IsMinor", "", "is_minor", Bool),
    col("hvn_MigrantStatus", "", "migrant_status", Plain),
    col("hvn_RecruiterRelation", "", "recruiter_relation", Plain),
    col("hvn_RecruitmentMethods", "", "recruitment_methods", PlainMany),
    col("hvn_MeansOfControl", "", "means_of_control", PlainMany),
    col("hvn_ExploitationTypes", "", "exploitation_types", PlainMany),
    col("hvn_Route", "", "route", Route),
    col("hvn_ConsentShareWithReferralPartners", "", "consent.share_with_referral_partners", Bool),
    col("hvn_ConsentAnonymisedStatistics", "", "consent.anonymised_statistics", Bool),
    col("hvn_ConsentMethod", "", "consent.method", Plain),
    col("hvn_ConsentGivenAt", "", "consent.recorded_at", Plain),
    who("prs_FirstName", "First Name", "identity.given_names", Plain),
    who("prs_SecondName", "Second Name", "identity.family_names", Plain),
    who("prs_Birthdate", "Birthdate", "identity.date_of_birth", Plain),
    who("prs_Email", "Email", "identity.email", Plain),
    who("prs_MobilePhone", "Mobile Phone", "identity.phone", Plain),
    who("prs_MailingStreet", "Mailing Street", "identity.address", Plain),
    who("prs_IdentityNumber", "Identity Number", "identity.document_number", Plain),
    who("hvn_DocumentType", "", "identity.document_type", Plain),
    who("hvn_Aliases", "", "identity.aliases", PlainMany),
    who("cco_CaseComment", "Case Comment", "identity.notes", Plain),
];

/// IOM's template spells one field name without its `g`; its files import all the same.
pub const ALIASES: &[(&str, &str)] =
    &[("vic_TraffickinStatusDecisionMakingOrg", "vic_TraffickingStatusDecisionMakingOrg")];

/// The columns an export writes.
pub fn exported(with_identity: bool) -> impl Iterator<Item = &'static Column> {
    COLUMNS.iter().filter(move |c| with_identity || !c.identity)
}

/// The column a header names (its name, or an alias of it), case-insensitively.
pub fn by_header(header: &str) -> Option<&'static Column> {
    let header = header.trim();
    let name = ALIASES.iter().find(|(alias, _)| alias.eq_ignore_ascii_case(header)).map_or(header, |(_, name)| *name);
    COLUMNS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

const FORMULA: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];
/// What a spreadsheet may split a CSV line on, whatever the file's own separator: a program set to
/// `;` reads `x;=1+1` as two cells, past the quotes (which only guard a field's start).
const SPLITS: [char; 3] = [';', ',', '\t'];

/// A spreadsheet program evaluates a cell that starts like a formula: such a value is written with
/// a leading apostrophe, and so is every part of it that a separator could make a cell's start
/// (`x;'=1+1`); the import takes them off again (OWASP's advice on CSV injection).
pub fn neutralise(value: String) -> String {
    let mut out = String::with_capacity(value.len() + 1);
    let mut after_split = true;
    for c in value.chars() {
        if after_split && FORMULA.contains(&c) {
            out.push('\'');
        }
        after_split = SPLITS.contains(&c);
        out.push(c);
    }
    out
}

/// Undoes [`neutralise`]: an apostrophe at a cell's start or after a separator, before a formula's
/// first character.
fn restore(cell: &str) -> std::borrow::Cow<'_, str> {
    if !cell.contains('\'') {
        return cell.into();
    }
    let mut out = String::with_capacity(cell.len());
    let mut chars = cell.chars().peekable();
    let mut after_split = true;
    while let Some(c) = chars.next() {
        if after_split && c == '\'' && chars.peek().is_some_and(|n| FORMULA.contains(n)) {
            after_split = false;
            continue;
        }
        after_split = SPLITS.contains(&c);
        out.push(c);
    }
    out.into()
}

fn at<'a>(document: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(document, |v, key| v.get(key)).filter(|v| !v.is_null())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The cell a column writes for a case document (empty when the case has no value there).
pub fn encode(column: &Column, document: &Value) -> String {
    let Some(value) = at(document, column.path) else { return String::new() };
    let cell = match column.kind {
        Htcds(list) => vocabularies::to_htcds(list, &text(value)).unwrap_or_default().to_owned(),
        HtcdsMany(list) => join(value, |v| vocabularies::to_htcds(list, &text(v)).map(str::to_owned)),
        Plain | ExportOnly => text(value),
        PlainMany => join(value, |v| Some(text(v))),
        Bool => if value.as_bool() == Some(true) { "TRUE" } else { "FALSE" }.to_owned(),
        Route => join(value, |leg| {
            let mut parts = vec![text(&leg["kind"]), text(&leg["country"])];
            parts.extend(leg.get("month").map(text));
            Some(parts.join(":"))
        }),
    };
    neutralise(cell)
}

fn join(value: &Value, each: impl Fn(&Value) -> Option<String>) -> String {
    let mut items: Vec<String> = value.as_array().into_iter().flatten().filter_map(each).collect();
    items.dedup();
    items.join(";")
}

fn items(cell: &str) -> impl Iterator<Item = &str> {
    cell.split([';', ',']).map(str::trim).filter(|s| !s.is_empty())
}

/// Reads a cell into the document at the column's path. `Ok(false)`: the cell was empty (or the
/// column is never read), nothing written. The error names what is wrong, never the cell's text.
pub fn decode(column: &Column, cell: &str, document: &mut Map<String, Value>) -> Result<bool, String> {
    let cell = restore(cell.trim());
    let cell = cell.as_ref();
    if cell.is_empty() || column.kind == ExportOnly {
        return Ok(false);
    }
    let unknown = |list: &str| format!("is not a value of {} (see GET /vocabularies, list {list})", column.name);
    let value = match column.kind {
        Htcds(list) => json!(vocabularies::from_htcds(list, cell).ok_or_else(|| unknown(list))?),
        HtcdsMany(list) => Value::Array(
            items(cell)
                .map(|v| vocabularies::from_htcds(list, v).map(|c| json!(c)).ok_or_else(|| unknown(list)))
                .collect::<Result<_, _>>()?,
        ),
        Plain => plain(column, cell),
        PlainMany => Value::Array(items(cell).map(|v| plain(column, v)).collect()),
        Bool => match cell.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "y" | "x" => json!(true),
            "false" | "no" | "0" | "n" => json!(false),
            _ => return Err(format!("{} must be TRUE or FALSE", column.name)),
        },
        Route => Value::Array(items(cell).map(leg).collect::<Result<_, _>>()?),
        ExportOnly => return Ok(false),
    };
    put(document, column.path, value);
    Ok(true)
}

/// A plain value: numbers for numeric fields (spreadsheets hand them over as text or as `24.0`),
/// country codes in capitals, everything else as text for the case file's own parser to judge.
fn plain(column: &Column, cell: &str) -> Value {
    let numeric = ["age_when_trafficked", "age_at_identification"].contains(&column.path);
    if numeric
        && let Ok(n) = cell.parse::<f64>()
        && n.fract() == 0.0
    {
        return json!(n as i64);
    }
    let country = ["citizenship", "identified_in", "country_of_exploitation", "recruited_in"].contains(&column.path);
    match country {
        true => json!(
            crate::domain::CountryCode::parse_alpha2_or_3(cell)
                .map(|c| c.as_str().to_owned())
                .unwrap_or_else(|_| cell.to_owned())
        ),
        false => json!(cell),
    }
}

fn leg(text: &str) -> Result<Value, String> {
    let parts: Vec<&str> = text.split(':').map(str::trim).collect();
    match parts[..] {
        [kind, country] => Ok(json!({ "kind": kind, "country": country.to_ascii_uppercase() })),
        [kind, country, month] => Ok(json!({ "kind": kind, "country": country.to_ascii_uppercase(), "month": month })),
        _ => Err("hvn_Route legs are kind:COUNTRY or kind:COUNTRY:YYYY-MM, separated by ;".into()),
    }
}

fn put(document: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            document.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let inner = document.entry(head).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(map) = inner {
                put(map, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_part_a_separator_could_split_off_starts_like_a_formula() {
        for (value, written) in [
            ("=1+1", "'=1+1"),
            ("x;=1+1", "x;'=1+1"),
            ("a,+b;@c\t-d", "a,'+b;'@c\t'-d"),
            ("2026-09-01;recruitment:PER", "2026-09-01;recruitment:PER"),
            ("x; =1", "x; =1"),
        ] {
            assert_eq!(neutralise(value.to_owned()), written, "{value}");
            assert_eq!(restore(written), value, "{written}");
        }
        for value in ["", "'", "a;'", "';=", "\t\t=", "x;;=y", "don't;-1"] {
            assert_eq!(restore(&neutralise(value.to_owned())), value, "{value:?}");
            let written = neutralise(value.to_owned());
            let parts = written.split(SPLITS);
            assert!(parts.clone().all(|p| !p.starts_with(['=', '+', '-', '@'])), "{written:?}");
        }
    }

    #[test]
    fn every_column_reads_back_what_it_writes() {
        let case = json!({
            "id": "0196f000-0000-7000-8000-000000000001", "status": "active", "trafficking_status": "actual",
            "identified_by": "self", "gender": "trans_or_non_conforming", "citizenship": ["BRA", "PER"],
            "recruitment_methods": ["peer_recruitment_pyramid", "deceptive_job_offer"], "age_when_trafficked": 17,
            "route": [{"kind": "recruitment", "country": "PER", "month": "2026-03"}, {"kind": "transit", "country": "BRA"}],
            "consent": {"services": true, "anonymised_statistics": false, "method": "guardian"},
            "identity": {"given_names": "=HYPERLINK(\"x\")", "aliases": ["A", "B"]},
        });
        let mut back = Map::new();
        for column in COLUMNS {
            let cell = encode(column, &case);
            decode(column, &cell, &mut back).unwrap_or_else(|e| panic!("{}: {e}", column.name));
        }
        for key in [
            "id",
            "status",
            "identified_by",
            "gender",
            "citizenship",
            "recruitment_methods",
            "route",
            "age_when_trafficked",
            "consent",
            "identity",
        ] {
            assert_eq!(back[key], case[key], "{key}");
        }
        assert_eq!(encode(by_header("prs_FirstName").unwrap(), &case), "'=HYPERLINK(\"x\")", "neutralised");
        assert_eq!(encode(by_header("vic_MethodOfRecruitment").unwrap(), &case), "ThroughFriendsOrSocialEvents;Other");
        assert!(by_header("vic_TraffickinStatusDecisionMakingOrg").is_some(), "IOM's spelling");
    }

    #[test]
    fn a_bad_cell_is_named_without_its_text() {
        let mut doc = Map::new();
        let column = by_header("vic_TypeOfExploitation").unwrap();
        let error = decode(column, "ForcedLabour;MARKERSECRET", &mut doc).unwrap_err();
        assert!(error.contains("vic_TypeOfExploitation") && !error.contains("MARKERSECRET"), "{error}");
        assert!(decode(by_header("con_Consent").unwrap(), "maybe", &mut doc).is_err());
    }
}
