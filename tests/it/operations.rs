//! Operations: Prometheus metrics and the store circuit breaker.

use std::time::Duration;

use reqwest::StatusCode;
use tessera::oauth::clients::ClientRegistration;

use crate::harness::*;
use crate::servers::OwnedPostgres;
use crate::token_lifecycle::{refresh, signed_in};

pub async fn metrics(server: &TestServer) -> String {
    let response = http_client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels, exactly as exposed), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

#[tokio::test]
async fn metrics_count_requests_tokens_sign_ins_and_refresh_reuse() {
    let (server, _, secret, tokens) = signed_in(|_| {}).await;
    let old = tokens["refresh_token"].as_str().unwrap();
    let (status, _) = refresh(&server, ("app", &secret), old, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = refresh(&server, ("app", &secret), old, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "reuse");
    let browser = Browser::new(&server);
    let rp = RelyingParty::discover(&server, "app", None).await;
    let (_, page) = browser
        .visit(rp.authorize(&[], &[]).url.as_str())
        .await
        .page();
    browser
        .submit(
            &page,
            "/login",
            &[("username", "ada"), ("password", "wrong")],
        )
        .await;
    let scim = server.scim().await;
    let user = scim
        .create_user(serde_json::json!({"userName": "grace"}))
        .await;
    scim.get(&format!("/Users/{}", user["id"].as_str().unwrap()))
        .await;

    let text = metrics(&server).await;
    let count = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}\n{text}"));
    assert_eq!(
        count(r#"tessera_tokens_issued_total{grant_type="authorization_code"}"#),
        1.0
    );
    assert_eq!(
        count(r#"tessera_tokens_issued_total{grant_type="refresh_token"}"#),
        1.0
    );
    assert_eq!(
        count(r#"tessera_tokens_issued_total{grant_type="client_credentials"}"#),
        1.0,
        "the SCIM admin's token"
    );
    assert_eq!(count("tessera_refresh_token_reuse_detected_total"), 1.0);
    assert_eq!(count(r#"tessera_logins_total{outcome="success"}"#), 1.0);
    assert_eq!(count(r#"tessera_logins_total{outcome="failure"}"#), 1.0);
    assert_eq!(
        count(r#"tessera_http_requests_total{route="/token",method="POST",status="200"}"#),
        3.0
    );
    assert_eq!(
        count(r#"tessera_http_requests_total{route="/token",method="POST",status="400"}"#),
        1.0
    );
    // Routes are patterns: the user's id never becomes a label.
    assert_eq!(
        count(
            r#"tessera_http_requests_total{route="/scim/v2/Users/{id}",method="GET",status="200"}"#
        ),
        1.0
    );
    assert!(!text.contains(user["id"].as_str().unwrap()));
    assert_eq!(
        count(
            r#"tessera_http_request_duration_seconds_count{route="/token",method="POST",status="200"}"#
        ),
        3.0
    );
    assert_eq!(count("tessera_store_errors_total"), 0.0);
    assert_eq!(count("tessera_store_circuit_open"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_breaker_fails_fast_while_the_database_is_down_and_closes_by_itself() {
    let postgres = OwnedPostgres::new();
    let database_url = postgres.database();
    let server = TestServer::start_with(|config| {
        config.store.database_url = database_url.clone();
        config.store.pool.acquire_timeout = Duration::from_secs(2);
        config.circuit.failures = 2;
        config.circuit.open = Duration::from_secs(1);
    })
    .await;
    let secret = server
        .client(ClientRegistration {
            client_id: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            ..ClientRegistration::default()
        })
        .await
        .unwrap();
    let grant = [("grant_type", "client_credentials")];
    let token = || post_token(&server, Some(("svc", &secret)), &grant);

    postgres.stop();
    for _ in 0..2 {
        let (status, _, body) = token().await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    let text = metrics(&server).await;
    assert_eq!(sample(&text, "tessera_store_errors_total"), Some(2.0));
    assert_eq!(sample(&text, "tessera_store_circuit_open"), Some(1.0));

    // Open: refused in each surface's own format, without asking the database.
    let (status, _, body) = token().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "temporarily_unavailable");
    let scim = http_client()
        .get(server.url("/scim/v2/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(scim.status(), StatusCode::SERVICE_UNAVAILABLE);
    let scim: serde_json::Value = scim.json().await.unwrap();
    assert_eq!(scim["status"], "503");
    let discovery = http_client()
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.status(), StatusCode::OK, "needs no store");
    let text = metrics(&server).await;
    assert_eq!(
        sample(&text, "tessera_store_errors_total"),
        Some(2.0),
        "refused requests never reached the store"
    );

    postgres.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, _, _) = token().await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the circuit never closed"
        );
    }
    let text = metrics(&server).await;
    assert_eq!(sample(&text, "tessera_store_circuit_open"), Some(0.0));
}
