//! Errors at the authorization endpoint: an HTML page until client and redirect URI are known,
//! an error redirect (with state and iss) after that, and never a code.

use reqwest::StatusCode;
use tessera::oauth::clients::ClientRegistration;

use crate::harness::*;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn authorize_url(server: &TestServer, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// A complete valid request for `webapp`, with `changes` applied (an empty value removes one).
fn request(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut params = vec![
        ("client_id", "webapp"),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st4te"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in changes {
        params.retain(|(n, _)| n != name);
        if !value.is_empty() {
            params.push((name, value));
        }
    }
    params
}

async fn setup() -> TestServer {
    let server = TestServer::start().await;
    server.web_client("webapp").await;
    server
        .client(ClientRegistration {
            public: true,
            ..web_registration("spa")
        })
        .await;
    server
}

#[tokio::test]
async fn unknown_client_or_unregistered_redirect_uri_is_an_html_page_never_a_redirect() {
    let server = setup().await;
    for changes in [
        vec![("client_id", "nobody")],
        vec![("client_id", "")],
        vec![("redirect_uri", "https://attacker.example/callback")],
        vec![("redirect_uri", "https://rp.example/callback/extra")],
        vec![("redirect_uri", "")],
    ] {
        let response = http_client()
            .get(authorize_url(&server, &request(&changes)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{changes:?}");
        assert!(
            response.headers().get("location").is_none(),
            "{changes:?} must not redirect"
        );
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let body = response.text().await.unwrap();
        assert!(body.contains(&request_id), "the page shows the request id");
    }
}

#[tokio::test]
async fn invalid_requests_redirect_with_error_state_and_iss_and_no_code() {
    let server = setup().await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (
            vec![("client_id", "spa"), ("code_challenge", "")],
            "invalid_request",
        ),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("response_type", "")], "invalid_request"),
        (vec![("scope", "openid admin")], "invalid_scope"),
        (vec![("prompt", "none login")], "invalid_request"),
        (vec![("max_age", "-1")], "invalid_request"),
        (
            vec![("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
    ];
    for (changes, expected) in cases {
        let response = http_client()
            .get(authorize_url(&server, &request(&changes)))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_redirection(),
            "{changes:?}: {}",
            response.status()
        );
        let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        assert!(location.as_str().starts_with(REDIRECT_URI), "{changes:?}");
        let params = query(&location);
        assert_eq!(params["error"], expected, "{changes:?}");
        assert!(params.contains_key("error_description"));
        assert_eq!(params["state"], "st4te");
        assert_eq!(params["iss"], server.issuer);
        assert!(!params.contains_key("code"), "{changes:?} issued a code");
    }
}

#[tokio::test]
async fn repeated_parameters_are_refused() {
    let server = setup().await;
    let mut params = request(&[]);
    params.push(("client_id", "webapp"));
    let response = http_client()
        .get(authorize_url(&server, &params))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn a_denied_consent_redirects_with_access_denied() {
    let server = setup().await;
    server.user("ada").await;
    let browser = Browser::new(&server);
    let (_, login) = browser
        .visit(&authorize_url(&server, &request(&[])))
        .await
        .page();
    let (_, consent) = browser.log_in(&login, "ada").await.page();
    let params = query(&browser.consent(&consent, "deny").await.left());
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st4te");
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn a_client_that_requires_mfa_gets_no_code_for_a_password_login() {
    let server = TestServer::start().await;
    server.user("ada").await;
    server
        .client(ClientRegistration {
            client_id: "vault".into(),
            require_mfa: true,
            skip_consent: true,
            ..web_registration("vault")
        })
        .await;
    let browser = Browser::new(&server);
    let (_, login) = browser
        .visit(&authorize_url(&server, &request(&[("client_id", "vault")])))
        .await
        .page();
    let params = query(&browser.log_in(&login, "ada").await.left());
    assert_eq!(params["error"], "unmet_authentication_requirements");
    assert_eq!(params["state"], "st4te");
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn a_consent_form_submitted_twice_at_once_yields_one_code() {
    let server = setup().await;
    server.user("ada").await;
    let browser = Browser::new(&server);
    let (_, login) = browser
        .visit(&authorize_url(&server, &request(&[])))
        .await
        .page();
    let (_, consent) = browser.log_in(&login, "ada").await.page();
    let (first, second) = tokio::join!(
        browser.consent(&consent, "allow"),
        browser.consent(&consent, "allow")
    );
    let codes = [first, second]
        .into_iter()
        .filter(|landing| matches!(landing, Landing::Left(url) if query(url).contains_key("code")))
        .count();
    assert_eq!(codes, 1);
}
