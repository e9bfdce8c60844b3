//! Token lifecycle (issue 3): refresh rotation and reuse detection, revocation, introspection,
//! client credentials.

use openidconnect::core::CoreIdToken;
use openidconnect::OAuth2TokenResponse;
use reqwest::StatusCode;
use serde_json::Value;
use tessera::oauth::clients::ClientRegistration;

use crate::harness::*;

pub const OFFLINE: &str = "offline_access";

pub fn offline_client(client_id: &str) -> ClientRegistration {
    ClientRegistration {
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scope: Some("openid profile email offline_access".into()),
        skip_consent: true,
        ..web_registration(client_id)
    }
}

/// A server with user `ada` signed in through `app`; returns the token response as JSON.
pub async fn signed_in(
    adjust: impl FnOnce(&mut tessera::Config),
) -> (TestServer, RelyingParty, String, Value) {
    let server = TestServer::start_with(adjust).await;
    server.user("ada").await;
    let secret = server.client(offline_client("app")).await.unwrap();
    let rp = RelyingParty::discover(&server, "app", Some(secret.clone())).await;
    let (tokens, _) = sign_in(
        &server,
        &rp,
        &Browser::new(&server),
        "ada",
        &["profile", OFFLINE],
    )
    .await;
    let tokens = serde_json::to_value(&tokens).unwrap();
    (server, rp, secret, tokens)
}

pub async fn refresh(
    server: &TestServer,
    client: (&str, &str),
    refresh_token: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    form.extend_from_slice(extra);
    let (status, _, body) = post_token(server, Some(client), &form).await;
    (status, body)
}

fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_string()
}

async fn userinfo_status(server: &TestServer, access_token: &str) -> StatusCode {
    http_client()
        .get(server.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn every_refresh_rotates_the_refresh_token() {
    let (server, _, secret, tokens) = signed_in(|_| {}).await;
    let first = field(&tokens, "refresh_token");
    let (status, second) = refresh(&server, ("app", &secret), &first, &[]).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(field(&second, "refresh_token"), first);
    assert_ne!(
        field(&second, "access_token"),
        field(&tokens, "access_token")
    );
    let (status, third) = refresh(
        &server,
        ("app", &secret),
        &field(&second, "refresh_token"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_eq!(
        server
            .introspect_as(("app", &secret), &field(&third, "refresh_token"))
            .await["active"],
        true
    );
    assert_eq!(
        server.introspect_as(("app", &secret), &first).await,
        serde_json::json!({"active": false}),
        "the rotated token is dead"
    );
}

#[tokio::test]
async fn a_client_without_offline_access_gets_no_refresh_token() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let secret = server.client(offline_client("app")).await.unwrap();
    let rp = RelyingParty::discover(&server, "app", Some(secret)).await;
    let (tokens, _) = sign_in(&server, &rp, &Browser::new(&server), "ada", &["profile"]).await;
    assert!(tokens.refresh_token().is_none());
}

#[tokio::test]
async fn reuse_of_a_rotated_refresh_token_revokes_the_whole_family() {
    let (server, _, secret, tokens) = signed_in(|_| {}).await;
    let first = field(&tokens, "refresh_token");
    let (_, second) = refresh(&server, ("app", &secret), &first, &[]).await;
    let newest_refresh = field(&second, "refresh_token");
    let newest_access = field(&second, "access_token");
    assert_eq!(
        userinfo_status(&server, &newest_access).await,
        StatusCode::OK
    );

    let (status, reuse) = refresh(&server, ("app", &secret), &first, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reuse["error"], "invalid_grant");

    let (status, after) = refresh(&server, ("app", &secret), &newest_refresh, &[]).await;
    assert_eq!(
        (status, after["error"].clone()),
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    for access in [newest_access.as_str(), &field(&tokens, "access_token")] {
        assert_eq!(
            server.introspect(access).await,
            serde_json::json!({"active": false})
        );
        assert_eq!(
            userinfo_status(&server, access).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        server.count_rows("refresh_token_reuse").await,
        1,
        "the reuse is recorded"
    );
}

#[tokio::test]
async fn within_the_grace_window_a_lost_response_may_be_retried_once() {
    let (server, _, secret, tokens) =
        signed_in(|c| c.lifetimes.refresh_reuse_grace = Some(std::time::Duration::from_secs(30)))
            .await;
    let first = field(&tokens, "refresh_token");
    let (_, lost) = refresh(&server, ("app", &secret), &first, &[]).await;
    let (status, retried) = refresh(&server, ("app", &secret), &first, &[]).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    let retried_token = field(&retried, "refresh_token");
    let app = ("app", secret.as_str());
    assert_eq!(
        server.introspect_as(app, &retried_token).await["active"],
        true
    );
    assert_eq!(
        server
            .introspect_as(app, &field(&lost, "refresh_token"))
            .await["active"],
        false,
        "the successor the client never got is revoked"
    );
    // So is the access token issued with it (whoever got it), and the retry is reported.
    assert_eq!(
        server.introspect(&field(&lost, "access_token")).await["active"],
        false
    );
    assert_eq!(
        server.introspect(&field(&retried, "access_token")).await["active"],
        true
    );
    assert_eq!(server.count_rows("refresh_token_reuse").await, 1);
    // A second retry is reuse: the family dies, including the retried token.
    let (status, _) = refresh(&server, ("app", &secret), &first, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = refresh(&server, ("app", &secret), &retried_token, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(server.count_rows("refresh_token_reuse").await, 2);
}

#[tokio::test]
async fn a_thief_retrying_in_the_grace_window_is_caught_when_the_client_comes_back() {
    let (server, _, secret, tokens) =
        signed_in(|c| c.lifetimes.refresh_reuse_grace = Some(std::time::Duration::from_secs(30)))
            .await;
    let stolen = field(&tokens, "refresh_token");
    // The client rotates normally; the thief then presents the old token inside the window.
    let (_, clients) = refresh(&server, ("app", &secret), &stolen, &[]).await;
    let (status, thiefs) = refresh(&server, ("app", &secret), &stolen, &[]).await;
    assert_eq!(status, StatusCode::OK, "{thiefs}");
    // The client's next refresh uses the token it really received: that is the reuse signal.
    let (status, body) = refresh(
        &server,
        ("app", &secret),
        &field(&clients, "refresh_token"),
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let (status, _) = refresh(
        &server,
        ("app", &secret),
        &field(&thiefs, "refresh_token"),
        &[],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the thief's family is revoked"
    );
    // Both are in the reuse audit: the thief's retry within the window, then the reuse.
    assert_eq!(server.count_rows("refresh_token_reuse").await, 2);
}

#[tokio::test]
async fn a_refresh_token_is_bound_to_its_client_and_scope() {
    let (server, rp, secret, tokens) = signed_in(|_| {}).await;
    let token = field(&tokens, "refresh_token");
    let other = server.client(offline_client("other")).await.unwrap();
    let (status, body) = refresh(&server, ("other", &other), &token, &[]).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let (status, body) = refresh(
        &server,
        ("app", &secret),
        &token,
        &[("scope", "openid email")],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::BAD_REQUEST, "invalid_scope".into())
    );

    // A narrower scope is fine; the refreshed ID token keeps sub, aud, auth_time and drops nonce.
    let (status, narrowed) = refresh(
        &server,
        ("app", &secret),
        &token,
        &[("scope", "openid offline_access")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert_eq!(narrowed["scope"], "offline_access openid");
    let old: CoreIdToken = serde_json::from_value(tokens["id_token"].clone()).unwrap();
    let new: CoreIdToken = serde_json::from_value(narrowed["id_token"].clone()).unwrap();
    let verifier = rp.client.id_token_verifier();
    let old = old
        .claims(&verifier, |_: Option<&openidconnect::Nonce>| Ok(()))
        .unwrap()
        .clone();
    let new = new.claims(
        &verifier,
        |nonce: Option<&openidconnect::Nonce>| match nonce {
            None => Ok(()),
            Some(_) => Err("a refreshed ID token has no nonce".to_string()),
        },
    );
    let new = new.expect("the refreshed ID token verifies and has no nonce");
    assert_eq!(new.subject(), old.subject());
    assert_eq!(new.audiences(), old.audiences());
    assert_eq!(new.auth_time(), old.auth_time());
    assert!(new.issue_time() >= old.issue_time());
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_have_exactly_one_winner() {
    let (server, _, secret, tokens) = signed_in(|_| {}).await;
    let token = field(&tokens, "refresh_token");
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let request = http_client()
            .post(server.url("/token"))
            .basic_auth("app", Some(&secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ]);
        attempts.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = attempts.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
}

async fn revoke(server: &TestServer, client: Option<(&str, &str)>, token: &str) -> StatusCode {
    let mut request = http_client()
        .post(server.url("/revoke"))
        .form(&[("token", token)]);
    if let Some((id, secret)) = client {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn revocation_follows_rfc_7009() {
    let (server, _, secret, tokens) = signed_in(|_| {}).await;
    let app = Some(("app", secret.as_str()));
    let access = field(&tokens, "access_token");
    let refresh_token = field(&tokens, "refresh_token");

    assert_eq!(
        revoke(&server, None, &access).await,
        StatusCode::UNAUTHORIZED,
        "client auth is required"
    );
    assert_eq!(
        revoke(&server, app, "no-such-token").await,
        StatusCode::OK,
        "unknown tokens are fine"
    );
    let other = server.client(offline_client("other")).await.unwrap();
    assert_ne!(
        revoke(&server, Some(("other", &other)), &access).await,
        StatusCode::OK
    );
    assert_eq!(
        server.introspect(&access).await["active"],
        true,
        "another client cannot revoke it"
    );

    // Revoking an access token kills it alone.
    assert_eq!(revoke(&server, app, &access).await, StatusCode::OK);
    assert_eq!(
        server.introspect(&access).await,
        serde_json::json!({"active": false})
    );
    let (status, refreshed) = refresh(&server, ("app", &secret), &refresh_token, &[]).await;
    assert_eq!(status, StatusCode::OK);

    // Revoking a refresh token kills its family.
    let family_access = field(&refreshed, "access_token");
    assert_eq!(
        revoke(&server, app, &field(&refreshed, "refresh_token")).await,
        StatusCode::OK
    );
    assert_eq!(
        server.introspect(&family_access).await,
        serde_json::json!({"active": false})
    );
    let (status, _) = refresh(
        &server,
        ("app", &secret),
        &field(&refreshed, "refresh_token"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn introspection_describes_active_tokens_and_nothing_else() {
    let (server, _, secret, tokens) = signed_in(|_| {}).await;
    let access = server.introspect(&field(&tokens, "access_token")).await;
    assert_eq!(access["active"], true);
    assert_eq!(access["client_id"], "app");
    assert_eq!(access["token_type"], "Bearer");
    assert_eq!(access["amr"], serde_json::json!(["pwd"]));
    assert_eq!(access["mfa_verified"], false);
    for claim in ["scope", "sub", "exp", "iat", "iss"] {
        assert!(!access[claim].is_null(), "{claim} in {access}");
    }
    let refresh_info = server
        .introspect_as(("app", &secret), &field(&tokens, "refresh_token"))
        .await;
    assert_eq!(refresh_info["active"], true);
    assert_eq!(refresh_info["token_type"], "refresh_token");
    assert_eq!(
        server.introspect("garbage").await,
        serde_json::json!({"active": false})
    );

    let response = http_client()
        .post(server.url("/introspect"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let public = server
        .client(ClientRegistration {
            public: true,
            ..web_registration("spa")
        })
        .await;
    assert!(public.is_none());
    let response = http_client()
        .post(server.url("/introspect"))
        .form(&[
            ("token", field(&tokens, "access_token").as_str()),
            ("client_id", "spa"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "a public client cannot introspect"
    );
}

#[tokio::test]
async fn client_credentials_issue_tokens_within_the_allowed_scopes() {
    let server = TestServer::start().await;
    let secret = server
        .client(ClientRegistration {
            client_id: "batch".into(),
            grant_types: vec!["client_credentials".into()],
            scope: Some("reports:read reports:write".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let basic = Some(("batch", secret.as_str()));
    let (status, _, body) = post_token(
        &server,
        basic,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "reports:read"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "reports:read");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let info = server.introspect(&field(&body, "access_token")).await;
    assert_eq!(
        (info["active"].clone(), info["sub"].clone()),
        (Value::Bool(true), "batch".into())
    );

    let (status, _, body) =
        post_token(&server, basic, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        (status, body["scope"].clone()),
        (StatusCode::OK, "reports:read reports:write".into())
    );
    for scope in ["admin", "openid"] {
        let (status, _, body) = post_token(
            &server,
            basic,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        assert_eq!(
            (status, body["error"].clone()),
            (StatusCode::BAD_REQUEST, "invalid_scope".into()),
            "{scope}"
        );
    }
    let (status, _, body) = post_token(
        &server,
        Some(("batch", "wrong")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
}
