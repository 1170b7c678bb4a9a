//! The built-in report plugins.

pub mod exploitation_profile;
pub mod labour_and_migration;
pub mod operation_summary;
pub mod recruitment_and_control;
pub mod referral_outcomes;
pub mod route_corridors;
pub mod trafficking_flows;
pub mod trends;

use std::collections::HashMap;

/// The chosen value of a declared parameter (validated by the framework), or its default.
pub(crate) fn choice<'a>(params: &'a HashMap<String, String>, name: &str, default: &'a str) -> &'a str {
    params.get(name).map(String::as_str).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    /// A plugin's table without parameters is its table with the defaults it declares: the
    /// catalogue, the documentation and the ledger's questions rely on it.
    #[test]
    fn declared_defaults_are_the_defaults_used() {
        for plugin in crate::reports::Registry::shipped().plugins {
            let defaults: HashMap<String, String> = plugin
                .parameters()
                .into_iter()
                .filter_map(|p| p.default.map(|d| (p.name.to_owned(), d.to_owned())))
                .collect();
            let implicit = plugin.table(&HashMap::new()).unwrap().signature();
            let explicit = plugin.table(&defaults).unwrap().signature();
            assert_eq!(implicit, explicit, "{}: its declared defaults are not the ones it uses", plugin.id());
        }
    }
}
