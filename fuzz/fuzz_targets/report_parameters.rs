//! A report's query string (its own parameters plus from/to/operation/format), for every shipped
//! report. Must never panic, and an accepted window is never empty or reversed.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let registry = haven::reports::Registry::shipped();
    let Ok(raw) = haven::extract::parse_query::<std::collections::HashMap<String, String>>(data) else { return };
    for plugin in registry.plugins.iter().map(|p| p.as_ref()) {
        match haven::reports::filters::parse_parameters(plugin, raw.clone()) {
            Ok(parsed) => {
                if let (Some(from), Some(to)) = (parsed.filters.from, parsed.filters.to_exclusive) {
                    assert!(from < to, "accepted an empty window");
                }
                let _ = plugin.table(&parsed.own);
            }
            Err(_) => {}
        }
    }
});
