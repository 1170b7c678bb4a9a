use zeroize::Zeroizing;

/// The 30,000 most common passwords, one per line. Searched in place: a set built from them held
/// 1.1 MB for the life of the process to save a fraction of a millisecond per new password, next
/// to the 13 ms its hash costs (docs/DECISIONS.md D146).
const COMMON: &str = include_str!("../../data/common-passwords.txt");

fn is_common(password: &str) -> bool {
    COMMON.lines().any(|line| line == password)
}

/// Passwords published as examples of good passwords (xkcd 936 and the like): the first ones an
/// attacker tries, although estimators rate them strong. Compared without separators.
const PUBLISHED_EXAMPLES: &[&str] = &["correcthorsebatterystaple", "tr0ub4dor&3", "troubadorandthree", "iloveyoutoo"];

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

/// The least zxcvbn score accepted: 3 of 4, "safely unguessable" (at least 10^8 guesses), which
/// against argon2id at ~13 ms a guess is years of one core per account.
pub const MIN_SCORE: u8 = 3;

/// A password that satisfies the policy (NIST SP 800-63B style): 12 to 128 characters, not a
/// common password, not a common word dressed up with digits or symbols, not a published example,
/// and rated at least [`MIN_SCORE`] by the zxcvbn estimator (which sees through keyboard walks,
/// sequences, repeats and the account's own email). No composition rules: length beats them. The
/// value is wiped from memory on drop.
pub struct NewPassword(Zeroizing<String>);

impl NewPassword {
    /// Checks `input` for an account whose email is `email` (the estimator penalises passwords
    /// built from it).
    pub fn parse(input: String, email: &str) -> Result<NewPassword, String> {
        let input = Zeroizing::new(input);
        let chars = input.chars().count();
        if chars < MIN_LEN {
            return Err(format!("must be at least {MIN_LEN} characters"));
        }
        if chars > MAX_LEN {
            return Err(format!("must be at most {MAX_LEN} characters"));
        }
        let lower = Zeroizing::new(input.to_lowercase());
        if is_common(&lower) {
            return Err("is a commonly used password".into());
        }
        let core: Zeroizing<String> = Zeroizing::new(
            lower.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' ').to_string(),
        );
        if core.is_empty() {
            return Err("is only digits and symbols; use words or a passphrase".into());
        }
        if core.len() < lower.len() && is_common(&core) {
            return Err("is a common password with digits or symbols added".into());
        }
        let bare: Zeroizing<String> =
            Zeroizing::new(lower.chars().filter(|c| c.is_alphanumeric() || *c == '&').collect());
        if PUBLISHED_EXAMPLES.contains(&bare.as_str()) {
            return Err("is a published example password, among the first an attacker tries".into());
        }
        let email = email.to_lowercase();
        let local = email.split('@').next().unwrap_or_default();
        let joined: String = local.chars().filter(|c| c.is_alphanumeric()).collect();
        let mut context: Vec<&str> = vec!["haven", local, &joined];
        context.extend(email.split(['@', '.', '-', '_', '+']).filter(|p| p.len() >= 3));
        let estimate = zxcvbn::zxcvbn(&input, &context);
        let score = u8::from(estimate.score());
        if score < MIN_SCORE {
            let why = estimate
                .feedback()
                .and_then(|f| f.warning())
                .map(|w| format!(" ({})", w.to_string().trim_end_matches('.').to_lowercase()))
                .unwrap_or_default();
            return Err(format!(
                "is too easy to guess{why}: rated {score} of 4 by the zxcvbn estimator, at least {MIN_SCORE} is required; \
                 a few unrelated words make a strong password"
            ));
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

    fn check(p: &str) -> Result<(), String> {
        NewPassword::parse(p.to_string(), "fatou.sow@example.org").map(|_| ())
    }

    #[test]
    fn policy() {
        assert!(check("Ubuntu-Lagos-7-Ferry").is_ok());
        assert!(check("quiet harbour mango lantern").is_ok());
        assert!(check("éàüß gare du nord lumière").is_ok(), "non-ASCII counts by character");
        assert!(check("short").is_err(), "too short");
        assert!(check(&"x".repeat(129)).is_err(), "too long");
        assert!(check("qwerty123456").is_err(), "in the list");
        assert!(check("QWERTY123456").is_err(), "in the list, any case");
        assert!(check("password2026!!").is_err(), "common word with digits");
        assert!(check("aaaaaaaaaaaaaaaa").is_err(), "one character");
    }

    /// The passwords the separation-of-duties issue found accepted; each is refused with a reason.
    #[test]
    fn weak_passwords_found_in_review_are_refused_with_a_reason() {
        for (password, reason) in [
            ("123456789012", "only digits"),
            ("qwertyuiopas", "too easy to guess"),
            ("trustno1trustno1", "too easy to guess"),
            ("correcthorsebatterystaple", "published example"),
            ("correct horse battery staple", "published example"),
            ("FatouSow2026", "too easy to guess"),
        ] {
            let refused = check(password).expect_err(password);
            assert!(refused.contains(reason), "{password}: {refused}");
        }
    }
}
