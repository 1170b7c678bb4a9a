use std::collections::HashSet;
use std::sync::LazyLock;

use zeroize::Zeroizing;

static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../../data/common-passwords.txt").lines().collect());

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

/// A password that satisfies the policy (NIST SP 800-63B style): 12 to 128 characters, not a
/// common password, not a common word dressed up with digits or symbols, not one repeated
/// character. No composition rules: length beats them. The value is wiped from memory on drop.
pub struct NewPassword(Zeroizing<String>);

impl NewPassword {
    pub fn parse(input: String) -> Result<NewPassword, &'static str> {
        let input = Zeroizing::new(input);
        let chars = input.chars().count();
        if chars < MIN_LEN {
            return Err("must be at least 12 characters");
        }
        if chars > MAX_LEN {
            return Err("must be at most 128 characters");
        }
        let lower = Zeroizing::new(input.to_lowercase());
        if COMMON.contains(lower.as_str()) {
            return Err("is a commonly used password");
        }
        let core: Zeroizing<String> = Zeroizing::new(
            lower.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' ').to_string(),
        );
        if !core.is_empty() && core.len() < lower.len() && COMMON.contains(core.as_str()) {
            return Err("is a common password with digits or symbols added");
        }
        let mut distinct = lower.chars().collect::<Vec<_>>();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 4 {
            return Err("uses too few different characters");
        }
        Ok(NewPassword(input))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::NewPassword;

    #[test]
    fn policy() {
        let ok = |p: &str| NewPassword::parse(p.to_string()).is_ok();
        assert!(ok("correct horse battery staple"));
        assert!(ok("Ubuntu-Lagos-7-Ferry"));
        assert!(!ok("short"), "too short");
        assert!(!ok(&"x".repeat(129)), "too long");
        assert!(!ok("qwerty123456"), "in the list");
        assert!(!ok("QWERTY123456"), "in the list, any case");
        assert!(!ok("password2026!!"), "common word with digits");
        assert!(!ok("aaaaaaaaaaaaaaaa"), "one character");
        assert!(ok("éàüß gare du nord"), "non-ASCII counts by character");
    }
}
