//! Redirect URIs: what may be registered, and how a requested URI is matched against the
//! registered ones.

/// Hosts that are the user's own machine (RFC 8252 §7.3, §8.3).
fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

/// Checks a URI for registration: absolute, no fragment (RFC 6749 §3.1.2), https, or http only
/// on a loopback host (RFC 8252 §7.3; RFC 9700 §4.1.3 forbids other cleartext redirects).
pub fn validate_for_registration(uri: &str) -> Result<(), String> {
    let parsed = url::Url::parse(uri).map_err(|e| format!("redirect URI {uri:?}: {e}"))?;
    if parsed.fragment().is_some() {
        return Err(format!("redirect URI {uri:?} must not have a fragment"));
    }
    let host = parsed.host_str().unwrap_or_default();
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(()),
        "http" if is_loopback_host(&authority_host(uri)) => Ok(()),
        "http" => Err(format!(
            "redirect URI {uri:?}: http is allowed only for 127.0.0.1, [::1] and localhost; use https"
        )),
        scheme => Err(format!(
            "redirect URI {uri:?}: scheme {scheme:?} is not allowed; use https"
        )),
    }
}

/// The host of `http://host[:port]/…` as written (IPv6 literals keep their brackets).
fn authority_host(uri: &str) -> String {
    let rest = uri.strip_prefix("http://").unwrap_or_default();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match authority.rfind(':') {
        Some(i)
            if authority[i + 1..].bytes().all(|b| b.is_ascii_digit())
                && !authority.ends_with(']') =>
        {
            authority[..i].to_string()
        }
        _ => authority.to_string(),
    }
}

/// `http://loopback:PORT/rest` without `:PORT`, or `None` for any other URI.
fn without_loopback_port(uri: &str) -> Option<String> {
    let host = authority_host(uri);
    if !uri.starts_with("http://") || !is_loopback_host(&host) {
        return None;
    }
    let after_host = &uri["http://".len() + host.len()..];
    let rest = match after_host.strip_prefix(':') {
        Some(port_and_rest) => port_and_rest.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => after_host,
    };
    Some(format!("http://{host}{rest}"))
}

/// Simple string comparison (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3), except that a loopback redirect
/// may use any port, because a native app's port is chosen at run time (RFC 8252 §7.3).
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (
        without_loopback_port(registered),
        without_loopback_port(requested),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_only_for_remote_uris() {
        let registered = "https://app.example/cb";
        assert!(matches(registered, "https://app.example/cb"));
        for other in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://app.example:443/cb",
            "https://APP.example/cb",
            "https://app.example/cb#f",
            "http://app.example/cb",
        ] {
            assert!(!matches(registered, other), "{other}");
        }
    }

    #[test]
    fn loopback_port_is_ignored_but_nothing_else() {
        assert!(matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"));
        assert!(matches("http://127.0.0.1:8000/cb", "http://127.0.0.1:9/cb"));
        assert!(matches("http://[::1]:1/cb", "http://[::1]:2/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5/other"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.2:5/cb"));
        assert!(!matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1.evil.example:5/cb"
        ));
    }

    #[test]
    fn registration_rules() {
        assert!(validate_for_registration("https://app.example/cb").is_ok());
        assert!(validate_for_registration("http://127.0.0.1:8000/cb").is_ok());
        assert!(validate_for_registration("http://[::1]/cb").is_ok());
        assert!(validate_for_registration("http://localhost/cb").is_ok());
        assert!(validate_for_registration("http://app.example/cb").is_err());
        assert!(validate_for_registration("https://app.example/cb#x").is_err());
        assert!(validate_for_registration("javascript:alert(1)").is_err());
        assert!(validate_for_registration("/relative").is_err());
    }
}
