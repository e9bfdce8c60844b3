//! OpenID Connect on top of the OAuth core: discovery, JWKS, ID tokens, userinfo.

pub mod discovery;
pub mod jwks;
pub mod logout;
pub mod userinfo;
