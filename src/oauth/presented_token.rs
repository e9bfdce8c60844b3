//! Finding a presented token of either kind by its hash (revocation and introspection).

use crate::error::Result;
use crate::secret;
use crate::store::{RefreshTokenRecord, Store, TokenRecord};

pub enum KnownToken {
    Access(TokenRecord),
    Refresh(RefreshTokenRecord),
}

impl KnownToken {
    pub fn client_id(&self) -> &str {
        match self {
            KnownToken::Access(t) => &t.client_id,
            KnownToken::Refresh(t) => &t.client_id,
        }
    }
}

/// Looks the token up, trying the kind named by `token_type_hint` first (RFC 7009 §2.1: the hint
/// only speeds up the search; an unknown or wrong hint still finds the token).
pub async fn find(
    store: &dyn Store,
    token: &str,
    hint: Option<&str>,
) -> Result<Option<KnownToken>> {
    let hash = secret::hash(token);
    let access = async {
        Ok::<_, crate::error::Error>(store.token_by_hash(&hash).await?.map(KnownToken::Access))
    };
    let refresh = async {
        Ok::<_, crate::error::Error>(store.refresh_token(&hash).await?.map(KnownToken::Refresh))
    };
    if hint == Some("refresh_token") {
        if let Some(found) = refresh.await? {
            return Ok(Some(found));
        }
        access.await
    } else {
        if let Some(found) = access.await? {
            return Ok(Some(found));
        }
        refresh.await
    }
}
