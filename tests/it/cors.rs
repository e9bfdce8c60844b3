//! CORS: only the endpoints browser apps call cross-origin answer, and only configured origins.

use reqwest::{Method, StatusCode};
use tessera::config::CorsOrigins;

use crate::harness::*;

const APP: &str = "https://spa.example";

async fn preflight(server: &TestServer, path: &str, origin: &str) -> reqwest::Response {
    http_client()
        .request(Method::OPTIONS, server.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

fn allowed_origin(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn configured_origins_may_call_the_browser_endpoints_and_nothing_else() {
    let server = TestServer::start_with(|c| {
        c.web.cors_origins = CorsOrigins::List(vec![APP.into()]);
    })
    .await;
    for path in [
        "/token",
        "/revoke",
        "/userinfo",
        "/jwks",
        "/.well-known/openid-configuration",
        "/api/v1/users/me",
        "/api/v1/users/me/sessions/some-id",
    ] {
        let response = preflight(&server, path, APP).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        assert_eq!(allowed_origin(&response), Some(APP), "{path}");
        let methods = response.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(methods.contains("POST"), "{path}: {methods}");
        assert!(
            methods.contains("DELETE"),
            "the API deletes: {path}: {methods}"
        );
    }
    // A real cross-origin call gets the header too, errors included.
    let response = http_client()
        .post(server.url("/token"))
        .header("origin", APP)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(allowed_origin(&response), Some(APP));

    let response = preflight(&server, "/token", "https://evil.example").await;
    assert_eq!(allowed_origin(&response), None, "an unlisted origin");
    for path in ["/introspect", "/login", "/scim/v2/Users"] {
        let response = preflight(&server, path, APP).await;
        assert_eq!(
            allowed_origin(&response),
            None,
            "{path} is same-origin only"
        );
    }
}

#[tokio::test]
async fn without_configuration_no_endpoint_answers_cross_origin() {
    let server = TestServer::start().await;
    let response = preflight(&server, "/token", APP).await;
    assert_eq!(allowed_origin(&response), None);
    let response = http_client()
        .get(server.url("/jwks"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(allowed_origin(&response), None);
}
