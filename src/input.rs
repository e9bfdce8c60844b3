//! Checks on text that clients send, made before it reaches the store or a log line.
//!
//! PostgreSQL refuses U+0000 in text, and no identifier, user name, URI or OAuth parameter has
//! any use for control characters (RFC 6749 Appendix A allows none in any parameter). Refusing
//! them at the surface gives the client its error in that surface's format, and keeps a value
//! from failing a query.

/// True when `text` holds a control character (Unicode category Cc: C0, DEL and C1).
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_anywhere() {
        assert!(!has_control("ada lovelace é 😀"));
        for bad in [
            "\0",
            "a\u{0}b",
            "tab\there",
            "line\n",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert!(has_control(bad), "{bad:?}");
        }
    }
}
