//! Declarative report files (TOML) as an operator might drop them into HAVEN_REPORTS_DIR: parse
//! and validate must never panic, and what it accepts must yield a table.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(plugin) = haven::reports::declarative::parse("fuzz.toml", data) {
        use haven::reports::ReportPlugin;
        let _ = plugin.table(&Default::default());
    }
});
