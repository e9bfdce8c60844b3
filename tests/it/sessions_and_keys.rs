//! RP-initiated logout, signing-key rotation, and the purge of expired rows (issue 3, points 8–10).

use std::time::Duration;

use openidconnect::core::{CoreIdToken, CoreJsonWebKeySet};
use openidconnect::{OAuth2TokenResponse, TokenResponse};
use reqwest::StatusCode;
use tessera::oauth::clients::ClientRegistration;

use crate::harness::*;
use crate::token_lifecycle::{offline_client, refresh, OFFLINE};

const AFTER_LOGOUT: &str = "https://rp.example/signed-out";

async fn server_with_app() -> (TestServer, RelyingParty, String) {
    let server = TestServer::start().await;
    server.user("ada").await;
    let secret = server
        .client(ClientRegistration {
            post_logout_redirect_uris: vec![AFTER_LOGOUT.into()],
            ..offline_client("app")
        })
        .await
        .unwrap();
    let rp = RelyingParty::discover(&server, "app", Some(secret.clone())).await;
    (server, rp, secret)
}

fn logout_url(server: &TestServer, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.url("/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

#[tokio::test]
async fn logout_with_an_id_token_hint_ends_the_session_and_its_refresh_tokens() {
    let (server, rp, secret) = server_with_app().await;
    let browser = Browser::new(&server);
    let (tokens, _) = sign_in(&server, &rp, &browser, "ada", &[OFFLINE]).await;
    let id_token = tokens.id_token().unwrap().to_string();
    let refresh_token = tokens.refresh_token().unwrap().secret().clone();
    // A second grant of the session, without a refresh token, whose code is not redeemed yet.
    let pending = rp.authorize(&[], &[]);
    let unredeemed = rp.code_from(
        &server,
        &pending,
        &browser.visit(pending.url.as_str()).await.left(),
    );

    let url = logout_url(
        &server,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", AFTER_LOGOUT),
            ("state", "bye"),
        ],
    );
    let back = browser.visit(&url).await.left();
    assert_eq!(back.as_str(), format!("{AFTER_LOGOUT}?state=bye"));

    let silent = rp.authorize(&[], &[("prompt", "none")]);
    assert_eq!(
        query(&browser.visit(silent.url.as_str()).await.left())["error"],
        "login_required"
    );
    let (status, _) = refresh(&server, ("app", &secret), &refresh_token, &[]).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the session's refresh tokens are revoked"
    );
    assert_eq!(
        server.introspect(tokens.access_token().secret()).await["active"],
        false
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("code", unredeemed.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", pending.verifier.secret().as_str()),
    ];
    let (status, _, body) = post_token(&server, Some(("app", &secret)), &form).await;
    let error = body["error"].clone();
    assert_eq!(
        (status, error),
        (StatusCode::BAD_REQUEST, "invalid_grant".into()),
        "the session's code died with it"
    );
}

#[tokio::test]
async fn logout_never_redirects_to_an_unregistered_uri() {
    let (server, rp, _) = server_with_app().await;
    let browser = Browser::new(&server);
    let (tokens, _) = sign_in(&server, &rp, &browser, "ada", &[]).await;
    let id_token = tokens.id_token().unwrap().to_string();
    for uri in ["https://attacker.example/", REDIRECT_URI] {
        let response = http_client()
            .get(logout_url(
                &server,
                &[
                    ("id_token_hint", &id_token),
                    ("post_logout_redirect_uri", uri),
                ],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert!(response.headers().get("location").is_none());
    }
    // Without client identification a post_logout_redirect_uri cannot be trusted either.
    let response = http_client()
        .get(logout_url(
            &server,
            &[("post_logout_redirect_uri", AFTER_LOGOUT)],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn logout_without_a_hint_asks_for_confirmation() {
    let (server, rp, _) = server_with_app().await;
    let browser = Browser::new(&server);
    sign_in(&server, &rp, &browser, "ada", &[]).await;

    let url = logout_url(
        &server,
        &[
            ("client_id", "app"),
            ("post_logout_redirect_uri", AFTER_LOGOUT),
            ("state", "s1"),
        ],
    );
    let (status, page) = browser.visit(&url).await.page();
    assert_eq!(status, StatusCode::OK);
    let fields = form_inputs(&page);
    assert!(page.contains("name=\"decision\"") && fields.contains_key("csrf_token"));

    // "Stay signed in" keeps the session.
    let (status, _) = browser
        .submit_all(&page, "/logout/confirm", &[("decision", "deny")])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    let silent = rp.authorize(&[], &[("prompt", "none")]);
    assert!(query(&browser.visit(silent.url.as_str()).await.left()).contains_key("code"));

    let back = browser
        .submit_all(&page, "/logout/confirm", &[("decision", "allow")])
        .await
        .left();
    assert_eq!(back.as_str(), format!("{AFTER_LOGOUT}?state=s1"));
    let silent = rp.authorize(&[], &[("prompt", "none")]);
    assert_eq!(
        query(&browser.visit(silent.url.as_str()).await.left())["error"],
        "login_required"
    );
}

async fn jwks(server: &TestServer) -> (Vec<String>, CoreJsonWebKeySet) {
    let body = http_client()
        .get(server.url("/jwks"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    let kids = value["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    (kids, serde_json::from_str(&body).unwrap())
}

fn kid_of(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn rotated_keys_sign_new_tokens_while_old_tokens_still_verify_until_they_expire() {
    // Long enough that the old token is still valid when it is checked on a loaded machine.
    let ttl = Duration::from_secs(6);
    let server = TestServer::start_with(|c| {
        c.lifetimes.access_token = ttl;
        c.lifetimes.id_token = ttl;
        c.keys.reload_interval = Duration::from_millis(300);
        c.purge.interval = Duration::from_millis(300);
        c.keys.publish_ahead = Duration::from_secs(3);
    })
    .await;
    server.user("ada").await;
    let secret = server
        .client(ClientRegistration {
            skip_consent: true,
            ..web_registration("app")
        })
        .await;
    let rp = RelyingParty::discover(&server, "app", secret).await;
    let (before, _) = sign_in(&server, &rp, &Browser::new(&server), "ada", &[]).await;
    let old_kid = kid_of(&before.id_token().unwrap().to_string());

    // `tessera keys rotate` against the same database, as an operator would run it.
    server.cli(&["keys", "rotate"]);
    tokio::time::sleep(Duration::from_millis(900)).await;

    let (kids, keys) = jwks(&server).await;
    assert!(kids.contains(&old_kid), "the old key stays published");
    assert_eq!(kids.len(), 6, "old and new key of each algorithm: {kids:?}");
    // The new keys are published before they sign, so that cached copies of the JWKS know them.
    let (meanwhile, _) = sign_in(&server, &rp, &Browser::new(&server), "ada", &[]).await;
    assert_eq!(kid_of(&meanwhile.id_token().unwrap().to_string()), old_kid);
    tokio::time::sleep(Duration::from_millis(2700)).await;
    let (after, _) = sign_in(&server, &rp, &Browser::new(&server), "ada", &[]).await;
    let new_kid = kid_of(&after.id_token().unwrap().to_string());
    assert_ne!(new_kid, old_kid, "new tokens are signed with the new key");
    assert!(kids.contains(&new_kid));
    // The token signed before the rotation verifies against the current JWKS.
    let old_token: CoreIdToken = before.id_token().unwrap().clone();
    let verifier = openidconnect::IdTokenVerifier::new_confidential_client(
        openidconnect::ClientId::new("app".into()),
        openidconnect::ClientSecret::new("unused".into()),
        openidconnect::IssuerUrl::new(server.issuer.clone()).unwrap(),
        keys,
    )
    .allow_any_alg();
    assert!(old_token
        .claims(&verifier, |_: Option<&openidconnect::Nonce>| Ok(()))
        .is_ok());

    // Once everything the old key signed has expired, it leaves the JWKS.
    tokio::time::sleep(ttl + Duration::from_millis(1200)).await;
    let (kids, _) = jwks(&server).await;
    assert!(!kids.contains(&old_kid), "{kids:?}");
    assert!(kids.contains(&new_kid));
    assert_eq!(
        server.count_rows("signing_keys").await,
        3,
        "the retired keys are deleted"
    );
}

#[tokio::test]
async fn expired_codes_tokens_and_sessions_are_purged() {
    let short = Duration::from_secs(1);
    let server = TestServer::start_with(|c| {
        c.lifetimes.access_token = short;
        // Long enough for the sign-in itself on a loaded machine.
        c.lifetimes.code = Duration::from_secs(3);
        c.lifetimes.session = short;
        c.lifetimes.interaction = Duration::from_secs(3);
        c.lifetimes.refresh_token = short;
        c.purge.interval = Duration::from_millis(300);
    })
    .await;
    server.user("ada").await;
    let secret = server.client(offline_client("app")).await.unwrap();
    let rp = RelyingParty::discover(&server, "app", Some(secret)).await;
    sign_in(&server, &rp, &Browser::new(&server), "ada", &[OFFLINE]).await;
    for table in ["auth_codes", "tokens", "refresh_tokens", "artifacts"] {
        assert!(server.count_rows(table).await > 0, "{table} has rows");
    }
    // Codes stay one access-token lifetime past their expiry (replay detection), then all go,
    // at the first purge round after that (which a loaded machine may run late).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    for table in ["auth_codes", "tokens", "refresh_tokens", "artifacts"] {
        while server.count_rows(table).await > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{table} is never purged"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
