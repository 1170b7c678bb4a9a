use std::collections::{BTreeMap, HashSet};

use super::*;

const STANDARD: &str = include_str!("../../tests/data/htcds-v2/field-standards-2.0.tsv");

/// HTCDS fields by full name (`vic_TypeOfExploitation`), each with its type and picklist values.
fn standard() -> BTreeMap<&'static str, (&'static str, Vec<&'static str>)> {
    STANDARD
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let (full, kind, values) = (*f.get(6)?, *f.get(7)?, f.get(9).copied().unwrap_or(""));
            let picklist = values.split(" / ").map(str::trim).filter(|v| !v.is_empty()).collect();
            full.contains('_').then_some((full, (kind, picklist)))
        })
        .collect()
}

#[test]
fn every_vocabulary_is_listed_with_its_codes_in_order_and_four_labels() {
    for spec in LISTS {
        let served = list(spec);
        let table: Vec<&str> = ROWS[spec.name].iter().map(|c| c.code).collect();
        assert_eq!(table, (spec.codes)(), "codes.tsv and the {} vocabulary differ", spec.name);
        let codes: Vec<&str> = served.codes.iter().map(|c| c.code).collect();
        assert_eq!(codes, (spec.codes)(), "codes.tsv and the {} vocabulary differ", spec.name);
        for code in &served.codes {
            for lang in LANGUAGES {
                assert!(
                    code.labels.get(lang).is_some_and(|l| !l.trim().is_empty()),
                    "{}.{} lacks {lang}",
                    spec.name,
                    code.code
                );
            }
        }
    }
    let names: HashSet<&str> = LISTS.iter().map(|s| s.name).collect();
    assert_eq!(names.len(), LISTS.len(), "a list is named twice");
    assert!(ROWS.keys().all(|k| names.contains(k)), "codes.tsv has a list LISTS does not name");
}

#[test]
fn htcds_names_are_the_standards_own() {
    let standard = standard();
    for spec in LISTS {
        let Some(field) = spec.htcds_field else {
            assert!(ROWS[spec.name].iter().all(|c| c.htcds.is_none() && c.htcds_import.is_empty()), "{}", spec.name);
            continue;
        };
        let (kind, picklist) = standard.get(field).unwrap_or_else(|| panic!("{field} is not an HTCDS v2.0 field"));
        if !kind.contains("Picklist") {
            continue; // free text: the export writes the label
        }
        for code in &ROWS[spec.name] {
            for value in code.htcds.iter().chain(&code.htcds_import) {
                assert!(picklist.contains(value), "{}.{}: {value} is not a value of {field}", spec.name, code.code);
            }
        }
    }
}

#[test]
fn every_htcds_value_imports_as_one_code_that_exports_it_again() {
    let standard = standard();
    for spec in LISTS.iter().filter(|s| s.imported) {
        let field = spec.htcds_field.expect("an imported list has an HTCDS field");
        for value in &standard[field].1 {
            let takers: Vec<&str> =
                ROWS[spec.name].iter().filter(|c| c.htcds_import.contains(value)).map(|c| c.code).collect();
            assert_eq!(takers.len(), 1, "{field} {value} imports as {takers:?}");
            assert_eq!(from_htcds(spec.name, value), Some(takers[0]));
            assert_eq!(from_htcds(spec.name, &value.to_lowercase()), Some(takers[0]), "case-insensitive");
        }
        for code in &ROWS[spec.name] {
            // A code that imports a value exports as the first of them: a round trip is stable.
            if let Some(first) = code.htcds_import.first() {
                assert_eq!(code.htcds, Some(*first), "{}.{}", spec.name, code.code);
            }
        }
    }
}

#[test]
fn the_version_changes_with_the_lists() {
    use sha2::Digest;
    let served = serde_json::to_vec(&lists()).expect("serialisable");
    let digest = format!("{:x}", sha2::Sha256::digest(&served));
    // When this fails, the table changed: bump VERSION, then put the new digest here.
    assert_eq!((VERSION, &digest[..16]), ("2026.12.2", "0aef293903916bb5"), "bump vocabularies::VERSION");
}
