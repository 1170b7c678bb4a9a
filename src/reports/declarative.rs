//! Declarative report plugins: TOML files in `reports/` (shipped, compiled into the binary) and in
//! the directory named by `HAVEN_REPORTS_DIR`. A file chooses up to three dimensions and the
//! measure from the whitelisted catalogue, fixed filters, and which filters callers may set; it
//! holds no SQL. Files are validated at start: a bad one stops start-up with a message naming the
//! file, the line and the problem. They run through the same framework and guard as compiled ones.
//!
//! ```toml
//! id = "scam-compound-recruitment"
//! title = "Forced criminality: recruitment"
//! description = "Victims of forced criminality by region of citizenship and recruitment method."
//! roles = ["caseworker", "admin", "partner"]
//! dimensions = ["citizenship_region", "recruitment_method"]
//! measure = "victims"
//! caller_filters = ["gender"]
//!
//! [filters]
//! exploitation_type = ["forced_criminality"]
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::catalogue::Dimension;
use super::filters::{Filter, FilterField};
use super::{ParamSpec, ReportPlugin, TableQuery};
use crate::domain::Role;
use crate::error::ApiError;

include!(concat!(env!("OUT_DIR"), "/shipped_reports.rs"));

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    id: Spanned<String>,
    title: Spanned<String>,
    description: Spanned<String>,
    roles: Spanned<Vec<String>>,
    dimensions: Spanned<Vec<String>>,
    #[serde(default)]
    measure: Option<Spanned<String>>,
    #[serde(default)]
    caller_filters: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    filters: Option<Spanned<BTreeMap<String, Vec<String>>>>,
}

pub struct DeclarativePlugin {
    /// The file it came from, for messages.
    pub source: String,
    id: String,
    title: String,
    description: String,
    roles: Vec<Role>,
    dimensions: Vec<Dimension>,
    fixed: Vec<Filter>,
    caller: Vec<FilterField>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses and validates one file.
pub fn parse(source: &str, text: &str) -> Result<DeclarativePlugin, String> {
    let raw: RawPlugin = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        format!("{source}: line {line}: {}", e.message())
    })?;
    let at = |span: std::ops::Range<usize>, field: &str, problem: String| {
        format!("{source}: line {}: field `{field}`: {problem}", line_of(text, span.start))
    };
    let id = raw.id.get_ref().clone();
    if id.is_empty() || id.len() > 60 || !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(at(raw.id.span(), "id", "must be 1 to 60 characters of a-z, 0-9 and -".into()));
    }
    for (field, value, max) in [("title", &raw.title, 120), ("description", &raw.description, 2000)] {
        if value.get_ref().trim().is_empty() || value.get_ref().chars().count() > max {
            return Err(at(value.span(), field, format!("must be 1 to {max} characters")));
        }
    }
    let roles = raw
        .roles
        .get_ref()
        .iter()
        .map(|r| r.parse::<Role>().map_err(|_| at(raw.roles.span(), "roles", format!("unknown role `{r}`"))))
        .collect::<Result<Vec<_>, _>>()?;
    if roles.is_empty() {
        return Err(at(raw.roles.span(), "roles", "must name at least one role".into()));
    }
    if roles.contains(&Role::Auditor) {
        return Err(at(raw.roles.span(), "roles", "auditors do not run reports".into()));
    }
    let known_dims = Dimension::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(", ");
    let dimensions = raw
        .dimensions
        .get_ref()
        .iter()
        .map(|d| {
            d.parse::<Dimension>().map_err(|_| {
                at(raw.dimensions.span(), "dimensions", format!("unknown dimension `{d}` (known: {known_dims})"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut unique = dimensions.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != dimensions.len() {
        return Err(at(raw.dimensions.span(), "dimensions", "lists a dimension twice".into()));
    }
    if dimensions.is_empty() || dimensions.len() > 3 {
        return Err(at(raw.dimensions.span(), "dimensions", "must list 1 to 3 dimensions".into()));
    }
    if let Some(measure) = &raw.measure
        && measure.get_ref() != "victims"
    {
        return Err(at(measure.span(), "measure", format!("unknown measure `{}` (known: victims)", measure.get_ref())));
    }
    let mut fixed = Vec::new();
    if let Some(filters) = &raw.filters {
        for (name, values) in filters.get_ref() {
            let field = name
                .parse::<FilterField>()
                .map_err(|_| at(filters.span(), "filters", format!("unknown filter `{name}`")))?;
            if values.is_empty() {
                return Err(at(filters.span(), "filters", format!("`{name}` needs at least one value")));
            }
            for value in values {
                field.check(value).map_err(|m| at(filters.span(), "filters", m))?;
            }
            fixed.push(Filter { field, values: values.clone() });
        }
    }
    let mut caller = Vec::new();
    if let Some(list) = &raw.caller_filters {
        for name in list.get_ref() {
            let field = name
                .parse::<FilterField>()
                .map_err(|_| at(list.span(), "caller_filters", format!("unknown filter `{name}`")))?;
            if field.values().is_none() {
                return Err(at(list.span(), "caller_filters", format!("`{name}` cannot be set by callers")));
            }
            caller.push(field);
        }
    }
    Ok(DeclarativePlugin {
        source: source.to_owned(),
        id,
        title: raw.title.into_inner(),
        description: raw.description.into_inner(),
        roles,
        dimensions,
        fixed,
        caller,
    })
}

/// Every `*.toml` of `dir`, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<DeclarativePlugin>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            parse(&path.display().to_string(), &text)
        })
        .collect()
}

impl ReportPlugin for DeclarativePlugin {
    fn id(&self) -> &str {
        &self.id
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn roles(&self) -> &[Role] {
        &self.roles
    }
    fn parameters(&self) -> Vec<ParamSpec> {
        self.caller
            .iter()
            .map(|f| ParamSpec {
                name: f.as_str(),
                description: "Only victims with this value (optional).",
                values: f.values().unwrap_or_default(),
                default: None,
            })
            .collect()
    }
    fn table(&self, params: &HashMap<String, String>) -> Result<TableQuery, ApiError> {
        let mut filters = self.fixed.clone();
        for field in &self.caller {
            if let Some(value) = params.get(field.as_str()) {
                filters.push(Filter { field: *field, values: vec![value.clone()] });
            }
        }
        Ok(TableQuery { dimensions: self.dimensions.clone(), filters })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "flows-of-minors"
title = "Flows of minors"
description = "Minors by citizenship and country of exploitation."
roles = ["partner"]
dimensions = ["citizenship", "country_of_exploitation"]
caller_filters = ["gender"]

[filters]
minor_or_adult = ["minor"]
"#;

    #[test]
    fn shipped_plugins_are_valid_and_unique() {
        assert!(!SHIPPED.is_empty());
        for (name, text) in SHIPPED {
            parse(name, text).unwrap();
        }
        let registry = crate::reports::Registry::shipped();
        let mut ids: Vec<&str> = registry.plugins.iter().map(|p| p.id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), registry.plugins.len());
    }

    #[test]
    fn a_good_file_becomes_a_plugin() {
        let plugin = parse("x.toml", GOOD).unwrap();
        assert_eq!(plugin.id(), "flows-of-minors");
        assert_eq!(plugin.roles(), &[Role::Partner]);
        let params = plugin.parameters();
        assert_eq!(params[0].name, "gender");
        let table = plugin.table(&HashMap::from([("gender".to_owned(), "woman".to_owned())])).unwrap();
        assert_eq!(table.dimensions, vec![Dimension::Citizenship, Dimension::CountryOfExploitation]);
        assert_eq!(table.filters.len(), 2);
    }

    #[test]
    fn bad_files_name_the_file_line_and_problem() {
        let cases = [
            (
                GOOD.replace("\"country_of_exploitation\"]", "\"victim_name\"]"),
                "line 6: field `dimensions`: unknown dimension `victim_name`",
            ),
            (GOOD.replace("roles = [\"partner\"]", "roles = [\"auditor\"]"), "line 5: field `roles`"),
            (GOOD.replace("[\"minor\"]", "[\"toddler\"]"), "field `filters`: `toddler` is not a minor_or_adult"),
            (GOOD.replace("dimensions = [", "dimensions = [\"gender\", \"age_band\", "), "must list 1 to 3 dimensions"),
            (GOOD.replace("dimensions = [", "dimensions = [\"country_of_exploitation\", "), "lists a dimension twice"),
            (
                GOOD.replace("caller_filters = [\"gender\"]", "caller_filters = [\"citizenship\"]"),
                "cannot be set by callers",
            ),
            (format!("sql = \"DROP TABLE victims\"\n{GOOD}"), "unknown field `sql`"),
            (GOOD.replace("id = \"flows-of-minors\"", "id = \"Flows Of Minors\""), "line 2: field `id`"),
            (GOOD.replace("title = \"Flows of minors\"", "title = [1]"), "line 3:"),
            (format!("measure = \"sum_of_ages\"\n{GOOD}"), "unknown measure"),
        ];
        for (text, expected) in cases {
            let err = parse("custom/bad.toml", &text).err().unwrap_or_else(|| panic!("accepted: {text}"));
            assert!(err.starts_with("custom/bad.toml: "), "{err}");
            assert!(err.contains(expected), "expected `{expected}` in `{err}`");
        }
    }
}
