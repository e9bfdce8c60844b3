//! The client's IP address, for per-address throttling. Behind `TESSERA_TRUSTED_PROXIES` reverse
//! proxies it is the address the outermost trusted proxy saw, read from the right of
//! `X-Forwarded-For`; entries further left are the client's own claim and are not trusted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// How many reverse proxies in front of us append to `X-Forwarded-For` (`TESSERA_TRUSTED_PROXIES`),
/// taken from the application's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxies(pub usize);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp
where
    TrustedProxies: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        Ok(ClientIp(client_ip(
            peer,
            &parts.headers,
            TrustedProxies::from_ref(state).0,
        )))
    }
}

/// With `hops` trusted proxies, each appending the address it saw, the client is the `hops`-th
/// entry from the right. A shorter or malformed header means a proxy is missing or the client is
/// lying; the connection's own address is used then.
fn client_ip(peer: IpAddr, headers: &HeaderMap, hops: usize) -> IpAddr {
    if hops == 0 {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    entries
        .len()
        .checked_sub(hops)
        .and_then(|index| entries[index].parse().ok())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn only_entries_added_by_trusted_proxies_count() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let headers = forwarded(&["203.0.113.9, 198.51.100.4", "192.0.2.1"]);
        assert_eq!(client_ip(peer, &headers, 0), peer);
        assert_eq!(client_ip(peer, &headers, 1).to_string(), "192.0.2.1");
        assert_eq!(client_ip(peer, &headers, 2).to_string(), "198.51.100.4");
        assert_eq!(client_ip(peer, &headers, 4), peer);
        assert_eq!(client_ip(peer, &forwarded(&["nonsense"]), 1), peer);
        assert_eq!(client_ip(peer, &HeaderMap::new(), 1), peer);
    }
}
