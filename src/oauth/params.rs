//! Request parameters of the authorization and token endpoints, parsed from a query string or a
//! form body with the rules of RFC 6749 §3.1 / §3.2: a parameter sent twice is an error, and a
//! parameter sent without a value counts as omitted. No parameter may hold a control character
//! (Appendix A: every parameter's grammar is printable), so none reaches the store.

use std::collections::HashMap;

use axum::http::{header, HeaderMap};

use crate::error::Error;
use crate::input;

#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(encoded: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (name, value) in url::form_urlencoded::parse(encoded.as_bytes()) {
            if input::has_control(&name) || input::has_control(&value) {
                return Err(format!(
                    "parameter {} holds a control character",
                    name.escape_debug()
                ));
            }
            // §3.1: "MUST NOT be included more than once", an empty one included.
            if !seen.insert(name.to_string()) {
                return Err(format!("parameter {name} is repeated"));
            }
            if !value.is_empty() {
                map.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(Params(map))
    }

    /// The form body of a back-channel endpoint (token, revocation, introspection), which must
    /// be `application/x-www-form-urlencoded` (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1).
    pub fn from_form(headers: &HeaderMap, body: &str) -> Result<Self, Error> {
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(Error::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        Self::parse(body).map_err(Error::invalid_request)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_ignored() {
        assert!(Params::parse("a=1&a=2").is_err());
        assert!(Params::parse("state=&state=x").is_err());
        let params = Params::parse("a=1&b=&c=x%20y").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("x y"));
    }

    #[test]
    fn control_characters_are_refused_in_names_and_values() {
        for encoded in ["client_id=%00", "state=a%0Ab", "a%01=1", "x=%7F"] {
            assert!(Params::parse(encoded).is_err(), "{encoded}");
        }
    }
}
