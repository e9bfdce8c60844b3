//! OpenID Connect on top of the OAuth core: discovery, JWKS, ID tokens, userinfo.

pub mod claims;
pub mod discovery;
pub mod hint;
pub mod id_token;
pub mod jwks;
pub mod logout;
pub mod userinfo;
