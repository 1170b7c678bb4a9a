//! From a file's rows to the cases they describe: the header, the rows' cells decoded through the
//! column table, and each row as a new case (with what HTCDS lacks assumed) or as a change to an
//! existing one (only the filled cells change it) (D114).

use std::collections::HashMap;

use chrono::Utc;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::columns::{self, Column};
use super::import::{ImportReport, RowIssue};
use crate::domain::case_vocab::{CaseStatus, ClosureReason, Gender, TraffickingStatus};
use crate::error::ApiError;
use crate::privacy::crypto::IdentityKeyring;
use crate::privacy::identity::Identity;
use crate::victims::model::{CaseFile, ValidVictim, VictimInput, VictimRow};

pub fn issue(row: usize, column: Option<&str>, message: impl Into<String>) -> RowIssue {
    RowIssue { row, column: column.map(str::to_owned), message: message.into() }
}

/// A row as read: its filled cells, decoded into a partial case document.
pub struct Parsed {
    pub row: usize,
    /// The id in the file (`hvn_CaseId`), if any.
    pub given: Option<Uuid>,
    /// The case's version the file was written from (`hvn_Version`), if any.
    pub version: Option<i32>,
    /// A stable id for the row: from the organisation and the source id, or (without one) the row's
    /// cells and how many identical rows came before it in the file.
    pub derived: Uuid,
    pub doc: Map<String, Value>,
    pub closure: Option<ClosureReason>,
}

/// A v8 UUID from a keyed digest: stable for the same organisation and source, and telling nothing
/// of the source to whoever sees it.
pub fn derived_id(keys: &IdentityKeyring, org: Uuid, source: &Value) -> Uuid {
    let digest = crate::idempotency::digest(keys, &json!({ "import": org, "source": source }));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Where the header row is: the first of the first ten rows that names at least two columns.
fn header_row(rows: &[Vec<String>]) -> Option<usize> {
    rows.iter().take(10).position(|r| r.iter().filter(|h| columns::by_header(h).is_some()).count() >= 2)
}

/// IOM's template has a row of field labels under the field names.
fn is_label_row(cells: &[(&Column, &str)]) -> bool {
    let filled: Vec<_> = cells.iter().filter(|(_, v)| !v.trim().is_empty()).collect();
    !filled.is_empty()
        && filled.iter().filter(|(c, v)| !c.label.is_empty() && c.label.eq_ignore_ascii_case(v.trim())).count() * 2
            >= filled.len()
}

pub fn parse(keys: &IdentityKeyring, org: Uuid, rows: &[Vec<String>], report: &mut ImportReport) -> Vec<Parsed> {
    let Some(at) = header_row(rows) else {
        let what =
            "no header row of HTCDS field names (prs_Gender, vic_TraffickingStatus, cas_Status…) in the first ten rows";
        report.errors.push(issue(1, None, what));
        return Vec::new();
    };
    let header: Vec<Option<&'static Column>> = rows[at].iter().map(|h| columns::by_header(h)).collect();
    report.ignored_columns = rows[at]
        .iter()
        .zip(&header)
        .filter(|(h, c)| c.is_none() && !h.trim().is_empty())
        .map(|(h, _)| h.trim().to_owned())
        .collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut parsed = Vec::new();
    for (i, row) in rows.iter().enumerate().skip(at + 1) {
        let number = i + 1;
        let cells: Vec<(&Column, &str)> =
            header.iter().zip(row).filter_map(|(c, v)| c.map(|c| (c, v.as_str()))).collect();
        if cells.iter().all(|(_, v)| v.trim().is_empty()) || is_label_row(&cells) {
            continue;
        }
        report.rows += 1;
        let mut doc = Map::new();
        let mut failed = false;
        for (column, cell) in &cells {
            if let Err(message) = columns::decode(column, cell, &mut doc) {
                report.errors.push(issue(number, Some(column.name), message));
                failed = true;
            }
        }
        let given = match doc.remove("id") {
            Some(Value::String(id)) => match id.parse::<Uuid>() {
                Ok(id) => Some(id),
                Err(_) => {
                    report.errors.push(issue(number, Some("hvn_CaseId"), "must be a UUID"));
                    failed = true;
                    None
                }
            },
            _ => None,
        };
        let version = match doc.remove("version") {
            Some(Value::String(v)) => match v.parse::<i32>() {
                Ok(v) if v > 0 => Some(v),
                _ => {
                    report.errors.push(issue(number, Some("hvn_Version"), "must be a case's version (1, 2, …)"));
                    failed = true;
                    None
                }
            },
            _ => None,
        };
        if failed {
            continue;
        }
        let source = match given {
            Some(id) => json!(id),
            None => {
                let cells: Vec<(&str, &str)> = cells.iter().map(|(c, v)| (c.name, v.trim())).collect();
                let key = serde_json::to_string(&cells).unwrap_or_default();
                let occurrence = seen.entry(key).or_default();
                *occurrence += 1;
                json!({ "cells": cells, "occurrence": *occurrence })
            }
        };
        let closure = doc.remove("closure_reason").and_then(|v| v.as_str().and_then(|s| s.parse().ok()));
        parsed.push(Parsed { row: number, given, version, derived: derived_id(keys, org, &source), doc, closure });
    }
    parsed
}

fn to_valid(doc: Map<String, Value>, row: usize) -> Result<ValidVictim, Vec<RowIssue>> {
    let name_of = |field: &str| {
        let top = field.split(['.', '[']).next().unwrap_or(field);
        columns::COLUMNS.iter().find(|c| c.path == top || c.path.starts_with(&format!("{top}."))).map(|c| c.name)
    };
    let input: VictimInput = crate::extract::from_value(Value::Object(doc)).map_err(|e| match e {
        ApiError::Validation(errors) => {
            errors.into_iter().map(|f| issue(row, name_of(&f.field).or(Some(f.field.as_str())), f.message)).collect()
        }
        _ => vec![issue(row, None, "is not a case file")],
    })?;
    ValidVictim::try_from(input)
        .map_err(|errors| errors.into_iter().map(|f| issue(row, name_of(&f.field), f.message)).collect())
}

/// A new case from a row: what HTCDS lacks and the case file needs is assumed, with a warning; a
/// closed case is created open, to be closed with its reason.
pub fn new_case(p: &Parsed, report: &mut ImportReport) -> Result<(ValidVictim, Option<ClosureReason>), Vec<RowIssue>> {
    let mut doc = p.doc.clone();
    if !doc.contains_key("route")
        && let Some(country) = doc.get("recruited_in").cloned()
    {
        let mut legs = vec![json!({ "kind": "recruitment", "country": country })];
        legs.extend(doc.get("country_of_exploitation").map(|c| json!({ "kind": "exploitation", "country": c })));
        doc.insert("route".into(), Value::Array(legs));
    }
    doc.remove("recruited_in");
    let mut assume = |column: &str, key: &str, value: Value, what: &str| {
        if !doc.contains_key(key) {
            doc.insert(key.into(), value);
            report.warnings.push(issue(p.row, Some(column), format!("absent: recorded as {what}")));
        }
    };
    assume("hvn_IdentifiedOn", "identified_on", json!(Utc::now().date_naive()), "today's date");
    assume(
        "vic_TraffickingStatus",
        "trafficking_status",
        json!(TraffickingStatus::Possible),
        "PossibleVictimOfTrafficking",
    );
    doc.entry("gender").or_insert(json!(Gender::Unknown));
    let status: CaseStatus =
        doc.get("status").and_then(|s| s.as_str()).and_then(|s| s.parse().ok()).unwrap_or(CaseStatus::Active);
    let closure = match status {
        CaseStatus::Closed => Some(p.closure.unwrap_or(ClosureReason::Other)),
        CaseStatus::ClosedReferred => Some(ClosureReason::ReferredElsewhere),
        _ => None,
    };
    if closure.is_some() {
        doc.insert("status".into(), json!(CaseStatus::Active));
    }
    Ok((to_valid(doc, p.row)?, closure))
}

/// An existing case with a row's filled cells applied, as a merge patch would: what the row leaves
/// empty stays as it is. Consent whose answers the row does not change keeps its date and method.
/// `identity`: the stored identity, when the row has identity cells.
pub fn changed_case(p: &Parsed, row: &VictimRow, identity: Option<Identity>) -> Result<ValidVictim, Vec<RowIssue>> {
    let current = CaseFile::from(row).as_input();
    let mut doc = p.doc.clone();
    let status = doc.get("status").and_then(|s| s.as_str()).and_then(|s| s.parse::<CaseStatus>().ok());
    if let Some(status) = status
        && status != row.status
        && (status.is_closed() || row.status.is_closed())
    {
        let what = "closes or reopens the case: do that with /close or /reopen, with the reason";
        return Err(vec![issue(p.row, Some("cas_Status"), what)]);
    }
    if let Some(country) = doc.remove("recruited_in")
        && !doc.contains_key("route")
    {
        // The recruitment leg's country, the rest of the route as it is.
        let mut legs: Vec<Value> =
            serde_json::to_value(&current.route).unwrap_or_default().as_array().cloned().unwrap_or_default();
        match legs.iter_mut().find(|l| l["kind"] == "recruitment") {
            Some(leg) if leg["country"] == country => {}
            Some(leg) => *leg = json!({ "kind": "recruitment", "country": country }),
            None => legs.insert(0, json!({ "kind": "recruitment", "country": country })),
        }
        doc.insert("route".into(), Value::Array(legs));
    }
    let mut merged = serde_json::to_value(&current).unwrap_or_default();
    if let Some(identity) = identity {
        merged["identity"] = serde_json::to_value(identity).unwrap_or_default();
    }
    crate::victims::routes::merge_patch(&mut merged, &Value::Object(doc.clone()));
    let same_answers = ["services", "share_with_referral_partners", "anonymised_statistics"]
        .iter()
        .all(|k| merged["consent"][*k] == serde_json::to_value(&current.consent).unwrap_or_default()[*k]);
    let given = doc.get("consent").cloned().unwrap_or_default();
    if !same_answers {
        // New consent: given now and however the row says, not as the consent it replaces was.
        for key in ["recorded_at", "method"] {
            if given.get(key).is_none() {
                merged["consent"].as_object_mut().map(|c| c.remove(key));
            }
        }
    }
    // is_minor follows the age when the row gives the age alone, as a patch does.
    if doc.contains_key("age_at_identification")
        && !doc.contains_key("is_minor")
        && let Some(map) = merged.as_object_mut()
    {
        map.remove("is_minor");
    }
    match merged {
        Value::Object(map) => to_valid(map, p.row),
        _ => Err(vec![issue(p.row, None, "is not a case file")]),
    }
}

/// The part of a case an import writes, for telling whether a row changes it.
pub fn comparable(input: &VictimInput) -> Value {
    let mut v = serde_json::to_value(input).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.remove("id");
        map.remove("identity");
    }
    v
}
