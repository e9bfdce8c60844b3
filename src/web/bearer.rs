//! The bearer token of a request's `Authorization` header (RFC 6750 §2.1).

use axum::http::{header, HeaderMap};

/// The token after `Bearer ` (the scheme is case-insensitive, RFC 9110 §11.1), if the request
/// carries one.
pub fn from_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bearer_scheme_names_a_token() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            headers
        };
        assert_eq!(from_header(&with("Bearer abc")), Some("abc"));
        assert_eq!(from_header(&with("bearer  abc ")), Some("abc"));
        assert_eq!(from_header(&with("Basic abc")), None);
        assert_eq!(from_header(&with("Bearer")), None);
        assert_eq!(from_header(&HeaderMap::new()), None);
    }
}
