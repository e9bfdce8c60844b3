//! OAuth 2.0 (RFC 6749) with PKCE (RFC 7636): authorization and token endpoints, client
//! registration and authentication, and the tokens themselves.

pub mod access_token;
pub mod authorize;
pub mod client_auth;
pub mod clients;
pub mod consent;
pub mod grants;
pub mod interaction;
pub mod introspection;
pub mod login;
pub mod lookup;
pub mod params;
pub mod pkce;
pub mod redirect_uri;
pub mod refresh_token;
pub mod revocation;
pub mod scope;
pub mod token;
