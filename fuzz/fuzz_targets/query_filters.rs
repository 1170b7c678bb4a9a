//! The victim list's query string: URL decoding, typed fields (enums, dates, times, numbers),
//! countries, page size and cursor. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(query) = haven::extract::parse_query::<haven::victims::filters::VictimQuery>(data)
        && let Ok(filters) = query.parse()
    {
        assert!((1..=200).contains(&filters.limit), "page size out of bounds");
    }
});
