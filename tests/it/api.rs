//! The JSON self-service API (`/api/v1/users/me`, scope `account`): what an app can do with the
//! user's token, its errors in the one documented shape, and the OpenAPI document.

use openidconnect::OAuth2TokenResponse;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera::oauth::clients::ClientRegistration;

use crate::harness::*;

/// An access token of `ada` for `scopes`, from a client allowed the `account` scope.
async fn token(server: &TestServer, scopes: &[&str]) -> String {
    if server.state.store.client("app").await.unwrap().is_none() {
        server
            .client(ClientRegistration {
                scope: Some("openid profile email account".into()),
                skip_consent: true,
                public: true,
                ..web_registration("app")
            })
            .await;
    }
    let rp = RelyingParty::discover(server, "app", None).await;
    let browser = Browser::new(server);
    let (tokens, _) = sign_in(server, &rp, &browser, "ada", scopes).await;
    tokens.access_token().secret().clone()
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = http_client().request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// The documented error shape, with the request id as correlation id.
fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let error = &reply.body["error"];
    assert_eq!(error["code"], code, "{}", reply.body);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error.get("details").is_some());
    assert_eq!(
        error["correlation_id"],
        reply.headers["x-request-id"].to_str().unwrap()
    );
    assert!(error["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn an_app_reads_edits_and_closes_the_account_with_an_account_token() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let token = token(&server, &["account"]).await;
    let me = call(&server, Method::GET, "/api/v1/users/me", Some(&token), None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["username"], "ada");
    assert_eq!(me.body["email"], "ada@example.com");
    assert_eq!(me.body["email_verified"], false);

    let renamed = call(
        &server,
        Method::PATCH,
        "/api/v1/users/me",
        Some(&token),
        Some(json!({"given_name": "Augusta"})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["given_name"], "Augusta");
    assert_eq!(
        renamed.body["family_name"], "Lovelace",
        "fields left out stay"
    );

    let no_password = call(
        &server,
        Method::PATCH,
        "/api/v1/users/me",
        Some(&token),
        Some(json!({"email": "a@new.example"})),
    )
    .await;
    assert_error(&no_password, StatusCode::FORBIDDEN, "wrong_password");
    let moved = call(
        &server,
        Method::PATCH,
        "/api/v1/users/me",
        Some(&token),
        Some(json!({"email": "a@new.example", "current_password": PASSWORD})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(
        moved.body["email"], "a@new.example",
        "without mail there is nothing to verify"
    );
    assert_eq!(moved.body["email_pending"], Value::Null);

    let bad = http_client()
        .patch(server.url("/api/v1/users/me"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let bad = Reply {
        status: bad.status(),
        headers: bad.headers().clone(),
        body: bad.json().await.unwrap(),
    };
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_request");

    let missing = call(
        &server,
        Method::DELETE,
        "/api/v1/users/me",
        Some(&token),
        Some(json!({})),
    )
    .await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "invalid_request");
    let closed = call(
        &server,
        Method::DELETE,
        "/api/v1/users/me",
        Some(&token),
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(closed.status, StatusCode::NO_CONTENT, "{}", closed.body);
    let after = call(&server, Method::GET, "/api/v1/users/me", Some(&token), None).await;
    assert_error(&after, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn tokens_without_the_account_scope_or_without_a_user_are_refused() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let none = call(&server, Method::GET, "/api/v1/users/me", None, None).await;
    assert_error(&none, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(none.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let forged = call(
        &server,
        Method::GET,
        "/api/v1/users/me",
        Some("not-a-token"),
        None,
    )
    .await;
    assert_error(&forged, StatusCode::UNAUTHORIZED, "invalid_token");
    let plain = token(&server, &[]).await;
    let narrow = call(&server, Method::GET, "/api/v1/users/me", Some(&plain), None).await;
    assert_error(&narrow, StatusCode::FORBIDDEN, "insufficient_scope");
    assert!(narrow.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
}

#[tokio::test]
async fn sessions_and_the_password_are_managed_through_the_api() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let token = token(&server, &["account"]).await;
    let sessions = call(
        &server,
        Method::GET,
        "/api/v1/users/me/sessions",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(sessions.status, StatusCode::OK);
    let listed = sessions.body.as_array().unwrap();
    assert_eq!(listed.len(), 1, "the sign-in that made the token");
    assert_eq!(listed[0]["amr"], json!(["pwd"]));
    let sid = listed[0]["id"].as_str().unwrap().to_string();
    let unknown = call(
        &server,
        Method::DELETE,
        "/api/v1/users/me/sessions/nope",
        Some(&token),
        None,
    )
    .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
    let ended = call(
        &server,
        Method::DELETE,
        &format!("/api/v1/users/me/sessions/{sid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    // The token was issued in that session, so it ended with it.
    let ended_with_it = call(
        &server,
        Method::GET,
        "/api/v1/users/me/sessions",
        Some(&token),
        None,
    )
    .await;
    assert_error(&ended_with_it, StatusCode::UNAUTHORIZED, "invalid_token");
    let token = self::token(&server, &["account"]).await;

    let path = "/api/v1/users/me/password";
    let wrong = call(
        &server,
        Method::POST,
        path,
        Some(&token),
        Some(json!({"current_password": "nope", "new_password": "a brand new passphrase"})),
    )
    .await;
    assert_error(&wrong, StatusCode::FORBIDDEN, "wrong_password");
    let weak = call(
        &server,
        Method::POST,
        path,
        Some(&token),
        Some(json!({"current_password": PASSWORD, "new_password": "password1"})),
    )
    .await;
    assert_error(&weak, StatusCode::BAD_REQUEST, "invalid_value");
    let changed = call(
        &server,
        Method::POST,
        path,
        Some(&token),
        Some(json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);

    // Every session ended, the token's own with the rest.
    let after = call(&server, Method::GET, "/api/v1/users/me", Some(&token), None).await;
    assert_error(&after, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let doc = get_json(&server.url("/api/v1/openapi.json")).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let token = token(&server, &["account"]).await;
    let mut operations = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "some-session");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = call(
                &server,
                method.clone(),
                &concrete,
                Some(&token),
                Some(json!({})),
            )
            .await;
            assert!(
                !matches!(
                    reply.status,
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                ) || reply.body["error"]["code"] == "not_found",
                "{method} {path}: {}",
                reply.status
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 6);
}
