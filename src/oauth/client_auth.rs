//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, or `none` for public clients, which only identify themselves.
//!
//! Failures are throttled per client IP (RFC 6749 §10.10). Only failures consult the throttle: a
//! locked address gets 429 for every wrong secret, but a client that presents its right secret
//! still gets through, so an attacker behind the same NAT as a real client cannot lock it out
//! (and guessing a 256-bit secret is hopeless anyway). The hot path pays nothing.

use std::net::IpAddr;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::error::{Error, Result};
use crate::input;
use crate::oauth::params::Params;
use crate::secret;
use crate::store::{Client, Store};
use crate::throttle::Throttle;

struct Presented {
    client_id: String,
    secret: Option<String>,
    basic: bool,
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined with ':' and
/// base64-encoded, so each half is decoded again.
pub(crate) fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // The form decoding of application/x-www-form-urlencoded: '+' is a space, then %XX.
    let unescape = |s: &str| -> Option<String> {
        let spaced = s.replace('+', " ");
        let text = percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .ok()?;
        (!input::has_control(&text)).then(|| text.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(value) =
        authorization.filter(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "))
    {
        let (client_id, secret) = parse_basic(value).ok_or(Error::InvalidClient { basic: true })?;
        // §2.3: a client uses one authentication method per request.
        if params.get("client_secret").is_some() {
            return Err(Error::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        if params.get("client_id").is_some_and(|id| id != client_id) {
            return Err(Error::InvalidClient { basic: true });
        }
        return Ok(Presented {
            client_id,
            secret: Some(secret),
            basic: true,
        });
    }
    let client_id = params
        .get("client_id")
        .ok_or(Error::InvalidClient { basic: false })?;
    Ok(Presented {
        client_id: client_id.to_string(),
        secret: params.get("client_secret").map(str::to_string),
        basic: false,
    })
}

/// The authenticated client, or `invalid_client` (401) for anything short of a clear success.
pub async fn authenticate(
    store: &dyn Store,
    throttle: &Throttle,
    ip: IpAddr,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client> {
    let presented = presented(headers, params)?;
    let refused = Error::InvalidClient {
        basic: presented.basic,
    };
    let client = store.client(&presented.client_id).await?;
    let authenticated = client.filter(|client| {
        match (&client.secret_hash, &presented.secret) {
            (Some(stored), Some(secret)) => secret::matches_hash(secret, stored),
            // A public client proves nothing but its id; PKCE protects its codes.
            (None, None) => true,
            _ => false,
        }
    });
    if let Some(client) = authenticated {
        return Ok(client);
    }
    let key = throttle.client_ip(ip);
    match throttle.record_failure(&[key]).await {
        Some(retry_after) => Err(Error::Throttled { retry_after }),
        None => Err(refused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20app:s%3Acret+x"));
        assert_eq!(
            parse_basic(&header),
            Some(("my app".into(), "s:cret x".into()))
        );
        // A secret sent without form-encoding keeps its '&' and '=' (they only separate
        // parameters in a form body, and this is none).
        let raw = format!("Basic {}", STANDARD.encode("app:a&b=c"));
        assert_eq!(parse_basic(&raw), Some(("app".into(), "a&b=c".into())));
        for bad in ["%00app:secret", "app:se%0Acret"] {
            assert_eq!(
                parse_basic(&format!("Basic {}", STANDARD.encode(bad))),
                None
            );
        }
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(
            parse_basic(&format!("Basic {}", STANDARD.encode("no-colon"))),
            None
        );
    }
}
