//! OAuth 2.0 (RFC 6749) with PKCE (RFC 7636): authorization and token endpoints, client
//! registration and authentication, sign-in and consent.

pub mod authorize;
pub mod client_auth;
pub mod clients;
pub mod consent;
pub mod flow;
pub mod grants;
pub mod interaction;
pub mod introspection;
pub mod login;
pub mod params;
pub mod passkey_login;
pub mod pkce;
pub mod presented_token;
pub mod redirect_uri;
pub mod revocation;
pub mod sign_in;
pub mod signup;
pub mod token;
pub mod verify_email;
