//! What the token endpoint, userinfo and SCIM share about tokens: scopes and the claims they
//! release, and how access, refresh and ID tokens are minted and checked.

pub mod access_token;
pub mod claims;
pub mod hint;
pub mod id_token;
pub mod issuer;
pub mod refresh_token;
pub mod scope;
