//! Token endpoint errors (RFC 6749 §5.2): JSON, the right code, no-store, and nothing issued.

use openidconnect::OAuth2TokenResponse;
use reqwest::StatusCode;
use tessera::oauth::clients::ClientRegistration;

use crate::harness::*;

/// Signs `ada` in through `webapp` and returns (code, verifier) without redeeming the code.
async fn fresh_code(server: &TestServer, rp: &RelyingParty, browser: &Browser) -> (String, String) {
    let pending = rp.authorize(&[], &[]);
    let mut landing = browser.visit(pending.url.as_str()).await;
    if let Landing::Page { body, .. } = &landing {
        landing = browser.log_in(body, "ada").await;
    }
    let code = rp.code_from(server, &pending, &landing.left());
    (code, pending.verifier.secret().clone())
}

struct Setup {
    server: TestServer,
    rp: RelyingParty,
    browser: Browser,
    secret: String,
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

async fn setup_with(adjust: impl FnOnce(&mut tessera::Config)) -> Setup {
    let server = TestServer::start_with(adjust).await;
    server.user("ada").await;
    let secret = server
        .client(ClientRegistration {
            skip_consent: true,
            ..web_registration("webapp")
        })
        .await
        .unwrap();
    let rp = RelyingParty::discover(&server, "webapp", Some(secret.clone())).await;
    let browser = Browser::new(&server);
    Setup {
        server,
        rp,
        browser,
        secret,
    }
}

fn code_form<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier),
    ]
}

fn assert_oauth_error(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &serde_json::Value,
    expected_status: u16,
    code: &str,
) {
    assert_eq!(status.as_u16(), expected_status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["request_id"].is_string());
    assert!(body.get("access_token").is_none());
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_invalid_grant() {
    let s = setup().await;
    let (code, _) = fresh_code(&s.server, &s.rp, &s.browser).await;
    let wrong = "a".repeat(43);
    let (status, headers, body) = post_token(
        &s.server,
        Some(("webapp", &s.secret)),
        &code_form(&code, &wrong),
    )
    .await;
    assert_oauth_error(status, &headers, &body, 400, "invalid_grant");
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let s = setup().await;
    let (code, verifier) = fresh_code(&s.server, &s.rp, &s.browser).await;
    let basic = Some(("webapp", s.secret.as_str()));
    let (status, headers, first) = post_token(&s.server, basic, &code_form(&code, &verifier)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(headers["cache-control"], "no-store");
    let access_token = first["access_token"].as_str().unwrap().to_string();
    let userinfo = || {
        http_client()
            .get(s.server.url("/userinfo"))
            .bearer_auth(&access_token)
            .send()
    };
    assert_eq!(userinfo().await.unwrap().status(), StatusCode::OK);

    let (status, headers, replay) =
        post_token(&s.server, basic, &code_form(&code, &verifier)).await;
    assert_oauth_error(status, &headers, &replay, 400, "invalid_grant");
    assert_eq!(
        userinfo().await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "the first token is revoked"
    );
}

#[tokio::test]
async fn concurrent_redemptions_of_one_code_have_one_winner() {
    let s = setup().await;
    let (code, verifier) = fresh_code(&s.server, &s.rp, &s.browser).await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = http_client()
            .post(s.server.url("/token"))
            .basic_auth("webapp", Some(&s.secret))
            .form(&code_form(&code, &verifier));
        attempts.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = attempts.join_all().await;
    let winners = statuses
        .iter()
        .filter(|status| **status == StatusCode::OK)
        .count();
    assert_eq!(winners, 1, "{statuses:?}");
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri() {
    let s = setup().await;
    let other_secret = s.server.web_client("other").await;
    let (code, verifier) = fresh_code(&s.server, &s.rp, &s.browser).await;
    let (status, headers, body) = post_token(
        &s.server,
        Some(("other", &other_secret)),
        &code_form(&code, &verifier),
    )
    .await;
    assert_oauth_error(status, &headers, &body, 400, "invalid_grant");

    let (code, verifier) = fresh_code(&s.server, &s.rp, &s.browser).await;
    let mut form = code_form(&code, &verifier);
    form[2] = ("redirect_uri", "https://rp.example/other");
    let (status, headers, body) = post_token(&s.server, Some(("webapp", &s.secret)), &form).await;
    assert_oauth_error(status, &headers, &body, 400, "invalid_grant");
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let s = setup_with(|config| config.lifetimes.code = std::time::Duration::from_secs(1)).await;
    let (code, verifier) = fresh_code(&s.server, &s.rp, &s.browser).await;
    wait_past(1).await;
    let (status, headers, body) = post_token(
        &s.server,
        Some(("webapp", &s.secret)),
        &code_form(&code, &verifier),
    )
    .await;
    assert_oauth_error(status, &headers, &body, 400, "invalid_grant");
}

#[tokio::test]
async fn bad_client_credentials_are_401_invalid_client() {
    let s = setup().await;
    let (code, verifier) = fresh_code(&s.server, &s.rp, &s.browser).await;
    let form = code_form(&code, &verifier);

    // Basic with a wrong secret: 401 with a Basic challenge.
    let (status, headers, body) = post_token(&s.server, Some(("webapp", "wrong")), &form).await;
    assert_oauth_error(status, &headers, &body, 401, "invalid_client");
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));

    // client_secret_post with a wrong secret, an unknown client, and no authentication at all.
    for extra in [
        vec![("client_id", "webapp"), ("client_secret", "wrong")],
        vec![("client_id", "nobody"), ("client_secret", "x")],
        vec![("client_id", "webapp")],
        vec![],
    ] {
        let mut form = form.clone();
        form.extend(extra.iter().copied());
        let (status, headers, body) = post_token(&s.server, None, &form).await;
        assert_oauth_error(status, &headers, &body, 401, "invalid_client");
        assert!(headers.get("www-authenticate").is_none());
    }

    // The failed attempts did not burn the code: the real client still redeems it.
    let tokens =
        s.rp.exchange(code, openidconnect::PkceCodeVerifier::new(verifier))
            .await;
    assert!(!tokens.access_token().secret().is_empty());
}

#[tokio::test]
async fn grant_type_and_body_errors() {
    let s = setup().await;
    let basic = Some(("webapp", s.secret.as_str()));
    let (status, headers, body) = post_token(&s.server, basic, &[("grant_type", "password")]).await;
    assert_oauth_error(status, &headers, &body, 400, "unsupported_grant_type");
    let (status, headers, body) = post_token(&s.server, basic, &[("code", "x")]).await;
    assert_oauth_error(status, &headers, &body, 400, "invalid_request");
    let (status, headers, body) = post_token(
        &s.server,
        basic,
        &[("grant_type", "authorization_code"), ("code", "unknown")],
    )
    .await;
    assert_oauth_error(status, &headers, &body, 400, "invalid_grant");

    let response = http_client()
        .post(s.server.url("/token"))
        .basic_auth("webapp", Some(&s.secret))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn a_client_without_the_grant_is_unauthorized_client() {
    let s = setup().await;
    let secret = s
        .server
        .client(ClientRegistration {
            client_id: "machine".into(),
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let (code, verifier) = fresh_code(&s.server, &s.rp, &s.browser).await;
    let (status, headers, body) = post_token(
        &s.server,
        Some(("machine", &secret)),
        &code_form(&code, &verifier),
    )
    .await;
    assert_oauth_error(status, &headers, &body, 400, "unauthorized_client");
    // The refusal came before redemption: the code's own client still redeems it.
    let tokens =
        s.rp.exchange(code, openidconnect::PkceCodeVerifier::new(verifier))
            .await;
    assert!(!tokens.access_token().secret().is_empty());
}
