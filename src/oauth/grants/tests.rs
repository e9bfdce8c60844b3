//! The three grants against a small real store (SQLite in memory), without HTTP: what each grant
//! decides, in milliseconds. The integration suite covers the same rules through the endpoint.

use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::{GrantHandler, GrantServices, Grants};
use crate::config::Config;
use crate::error::{Error, ErrorCode};
use crate::keys::{self, KeyRing};
use crate::oauth::params::Params;
use crate::oauth::pkce::Challenge;
use crate::oauth::token::TokenResponse;
use crate::store::{AuthCode, Client, SqlStore, Store, User, UserOrigin};
use crate::tokens::issuer::TokenIssuer;
use crate::{clock, secret};

const VERIFIER: &str = "a-verifier-of-the-required-forty-three-characters";
const REDIRECT_URI: &str = "https://rp.example/callback";

struct Fixture {
    store: Arc<dyn Store>,
    tokens: Arc<TokenIssuer>,
    grants: Grants,
}

impl Fixture {
    async fn new() -> Self {
        let config = Config::default();
        let store: Arc<dyn Store> = Arc::new(SqlStore::in_memory().await.unwrap());
        let ring = KeyRing::load_or_generate(store.as_ref(), keys::Lifetimes::of(&config))
            .await
            .unwrap();
        let keys = Arc::new(ArcSwap::from_pointee(ring));
        let tokens = Arc::new(TokenIssuer::new(&config, keys, store.clone()));
        let grants = Grants::new(&GrantServices {
            config: &config,
            store: &store,
            tokens: &tokens,
            metrics: &Arc::default(),
        });
        Fixture {
            store,
            tokens,
            grants,
        }
    }

    fn grant(&self, grant_type: &str) -> &dyn GrantHandler {
        self.grants.named(grant_type).unwrap()
    }

    async fn client(&self, id: &str, confidential: bool, scope: &str) -> Client {
        let client = Client {
            client_id: id.into(),
            secret_hash: confidential.then(|| secret::hash("a secret")),
            redirect_uris: vec![REDIRECT_URI.into()],
            grant_types: super::names().map(str::to_string).collect(),
            scope: scope.into(),
            id_token_signed_response_alg: "ES256".into(),
            ..Client::default()
        };
        self.store.insert_client(&client).await.unwrap();
        client
    }

    async fn user(&self) -> User {
        let now = clock::now();
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            username: "alice".into(),
            password_hash: None,
            active: true,
            verified_email: None,
            attributes: Default::default(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.store
            .insert_user(&user, UserOrigin::Cli)
            .await
            .unwrap();
        user
    }

    /// An authorization code for `user` and `client` with PKCE's challenge of [`VERIFIER`].
    async fn code(&self, client: &Client, user: &User, scope: &str) -> String {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER));
        let challenge = Challenge::from_request(Some(&challenge), Some("S256")).unwrap();
        let code = secret::generate();
        let record = AuthCode {
            grant_id: uuid::Uuid::now_v7().to_string(),
            client_id: client.client_id.clone(),
            user_id: user.id.clone(),
            redirect_uri: REDIRECT_URI.into(),
            scope: scope.into(),
            nonce: Some("n-0S6_WzA2Mj".into()),
            code_challenge: challenge.as_stored().into(),
            session_id: "a-session".into(),
            auth_time: clock::now(),
            acr: "0".into(),
            amr: vec!["pwd".into()],
            expires_at: clock::now() + 60,
        };
        self.store
            .insert_code(&secret::hash(&code), &record)
            .await
            .unwrap();
        code
    }

    async fn redeem(&self, client: &Client, code: &str, verifier: &str) -> GrantResult {
        let form = [
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ];
        self.request("authorization_code", client, &form).await
    }

    async fn refresh(&self, client: &Client, token: &str, scope: Option<&str>) -> GrantResult {
        let mut form = vec![("refresh_token", token)];
        form.extend(scope.map(|scope| ("scope", scope)));
        self.request("refresh_token", client, &form).await
    }

    /// A token request of `grant_type` from the authenticated `client`, with the `form` fields.
    async fn request(
        &self,
        grant_type: &str,
        client: &Client,
        form: &[(&str, &str)],
    ) -> GrantResult {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", grant_type)
            .extend_pairs(form)
            .finish();
        let params = Params::parse(&body).unwrap();
        self.grant(grant_type).handle(client, &params).await
    }

    async fn is_live(&self, access_token: &str) -> bool {
        self.tokens
            .validate_access_token(access_token)
            .await
            .is_ok()
    }
}

type GrantResult = crate::error::Result<TokenResponse>;

fn code_of(result: GrantResult) -> ErrorCode {
    match result {
        Err(Error::OAuth { code, .. }) => code,
        other => panic!("expected an OAuth error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_code_is_redeemed_once_with_its_verifier_and_a_replay_revokes_its_tokens() {
    let fixture = Fixture::new().await;
    let client = fixture.client("web", true, "openid offline_access").await;
    let user = fixture.user().await;
    let code = fixture.code(&client, &user, "openid offline_access").await;

    // A wrong verifier is refused without using the code up (RFC 6749 §10.5).
    let wrong = "another-verifier-that-is-also-forty-three-chars";
    let refused = fixture.redeem(&client, &code, wrong).await;
    assert_eq!(code_of(refused), ErrorCode::InvalidGrant);

    let issued = fixture.redeem(&client, &code, VERIFIER).await.unwrap();
    assert!(issued.id_token.is_some(), "openid was granted");
    assert!(issued.refresh_token.is_some(), "offline_access was granted");
    assert_eq!(issued.scope, "openid offline_access");
    assert!(fixture.is_live(&issued.access_token).await);

    // RFC 6749 §4.1.2: a second redemption fails and revokes what the first one issued.
    let replay = fixture.redeem(&client, &code, VERIFIER).await;
    assert_eq!(code_of(replay), ErrorCode::InvalidGrant);
    assert!(!fixture.is_live(&issued.access_token).await);
    let refresh = issued.refresh_token.unwrap();
    let after_replay = fixture.refresh(&client, &refresh, None).await;
    assert_eq!(code_of(after_replay), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn refresh_rotates_narrows_and_a_reused_token_revokes_the_family() {
    let fixture = Fixture::new().await;
    let client = fixture.client("web", true, "openid offline_access").await;
    let user = fixture.user().await;
    let code = fixture.code(&client, &user, "openid offline_access").await;
    let first = fixture.redeem(&client, &code, VERIFIER).await.unwrap();
    let r1 = first.refresh_token.unwrap();

    // RFC 6749 §6: the scope may narrow, never widen.
    let wider = fixture.refresh(&client, &r1, Some("openid groups")).await;
    assert_eq!(code_of(wider), ErrorCode::InvalidScope);
    let second = fixture.refresh(&client, &r1, Some("openid")).await.unwrap();
    assert_eq!(second.scope, "openid");
    let r2 = second.refresh_token.unwrap();
    assert_ne!(r1, r2, "every use rotates");

    // RFC 9700 §4.14.2: the rotated token came back, so the whole family dies.
    let reused = fixture.refresh(&client, &r1, None).await;
    assert_eq!(code_of(reused), ErrorCode::InvalidGrant);
    assert!(!fixture.is_live(&second.access_token).await);
    let successor = fixture.refresh(&client, &r2, None).await;
    assert_eq!(code_of(successor), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn client_credentials_serves_confidential_clients_their_non_user_scopes() {
    let fixture = Fixture::new().await;
    let service = fixture.client("service", true, "openid scim").await;
    let public = fixture.client("spa", false, "openid scim").await;
    let refused = fixture.request("client_credentials", &public, &[]).await;
    assert_eq!(code_of(refused), ErrorCode::UnauthorizedClient);

    // Without a requested scope the client gets what it may ask for, less the user-only scopes.
    let issued = fixture
        .request("client_credentials", &service, &[])
        .await
        .unwrap();
    assert_eq!(issued.scope, "scim");
    assert!(issued.refresh_token.is_none() && issued.id_token.is_none());
    let (claims, _) = fixture
        .tokens
        .validate_access_token(&issued.access_token)
        .await
        .unwrap();
    assert_eq!(
        claims.sub, "service",
        "RFC 9068 §2.2: the client is the subject"
    );

    let user_scope = [("scope", "openid")];
    let refused = fixture
        .request("client_credentials", &service, &user_scope)
        .await;
    assert_eq!(code_of(refused), ErrorCode::InvalidScope);
}
