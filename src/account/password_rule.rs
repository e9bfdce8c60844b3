//! The rule every password a user or an administrator chooses must meet, at sign-up, reset, the
//! account page and SCIM (NIST SP 800-63B §5.1.1.2): a minimum length (`TESSERA_PASSWORD_MIN_LENGTH`,
//! 8 by default), no composition rules, and not too easy to guess. "Easy to guess" is zxcvbn's
//! estimate (the `zxcvbn` crate, a port of Dropbox's estimator): a score of 0 or 1, that is
//! fewer than a million guesses against its dictionaries, which ship with the binary: 30,000
//! passwords common in breach corpora, English words, names and surnames from US census data, TV
//! and film words, and the account's own name and address. That refuses breached and common
//! passwords, single dictionary words, repeats, sequences and keyboard rows, and the user name.

/// NIST SP 800-63B §5.1.1.2: at least 8 characters for a password the user chooses.
pub const DEFAULT_MIN_LENGTH: usize = 8;

/// The longest password taken: beyond NIST's 64, bounded so hashing work stays bounded.
pub const MAX_LENGTH: usize = 1024;

/// zxcvbn reads only this many characters; a longer password is no list entry.
const ESTIMATED_PREFIX: usize = 100;

/// Why a password is refused, in words for the page or the SCIM error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weak {
    TooShort,
    TooLong,
    Guessable,
}

impl Weak {
    pub fn message(self) -> &'static str {
        match self {
            Weak::TooShort => "That password is too short.",
            Weak::TooLong => "That password is too long (1,024 characters at most).",
            Weak::Guessable => {
                "That password is too common or too easy to guess. A few unrelated words make \
                 a good one."
            }
        }
    }
}

/// Whether `password` may be chosen by the account named by `context` (its user name, address).
pub fn check(min_length: usize, password: &str, context: &[&str]) -> Result<(), Weak> {
    let length = password.chars().count();
    if length < min_length {
        return Err(Weak::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(Weak::TooLong);
    }
    if length > ESTIMATED_PREFIX {
        return Ok(());
    }
    let estimate = zxcvbn::zxcvbn(password, context);
    if estimate.score() <= zxcvbn::Score::One {
        return Err(Weak::Guessable);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_short_and_personal_passwords_are_refused() {
        for (password, why) in [
            ("short", Weak::TooShort),
            ("password1", Weak::Guessable),
            ("iloveyou", Weak::Guessable),
            ("P@ssw0rd", Weak::Guessable),
            ("aaaaaaaaaaaa", Weak::Guessable),
            ("abcdefgh123", Weak::Guessable),
            ("qwertyuiop", Weak::Guessable),
            ("adalovelace", Weak::Guessable),
        ] {
            assert_eq!(check(8, password, &["adalovelace"]), Err(why), "{password}");
        }
        assert_eq!(
            check(8, &"x".repeat(MAX_LENGTH + 1), &[]),
            Err(Weak::TooLong)
        );
    }

    #[test]
    fn long_unusual_passwords_pass_without_composition_rules() {
        for password in [
            "correct horse battery staple",
            "tessera mosaic under the lamp",
            "zq8-vT2m-Lp4x",
        ] {
            assert_eq!(check(8, password, &["ada"]), Ok(()), "{password}");
        }
        assert_eq!(check(20, "zq8-vT2m-Lp4x", &[]), Err(Weak::TooShort));
    }
}
