//! Bearer tokens: header decoding, key selection by `kid`, algorithm, signature and claims.
//! Arbitrary input must never panic and never verify (the fuzzer cannot know the key).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static KEYRING: LazyLock<haven::auth::Keyring> = LazyLock::new(|| {
    haven::auth::Keyring::parse("k1:aGF2ZW4tZnV6ei1zaWduaW5nLWtleS0zMi1ieXRlcyE=,k0:cmV0aXJlZC1mdXp6LWtleS1vZi0zMi1ieXRlcy1vayE=:1", "haven", "haven-api", 900)
        .expect("keyring")
});

fuzz_target!(|data: &str| {
    assert!(KEYRING.verify(data).is_err(), "an arbitrary token verified");
});
