//! Crash safety (issue 15, item 12): a `tessera serve` killed with SIGKILL in the middle of a
//! token load loses nothing it acknowledged. Every access token a client received is still
//! active after the restart, every refresh token it received is still stored, and each was
//! rotated at most once: into the next one the client received, or, for the last one, into a
//! successor whose response the kill swallowed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Row;
use tessera::secret;

use crate::cluster::authorize_on;
use crate::harness::{test_database, Browser};
use crate::process::{free_port, Deployment, Instance};

/// What the clients were answered before the kill.
#[derive(Default)]
struct Acknowledged {
    access_tokens: Vec<String>,
    /// Per chain, every refresh token received, in order.
    chains: Vec<Vec<String>>,
}

/// A token response from `server`, or `None` once the server is gone (or refuses).
async fn token(
    http: &reqwest::Client,
    server: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> Option<Value> {
    let response = http
        .post(format!("{server}/token"))
        .basic_auth("web", Some(secret))
        .form(form)
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    response.json().await.ok()
}

/// Rotates `first` on `server` until the server goes away, recording every answer.
async fn rotate_until_killed(
    server: String,
    secret: String,
    first: String,
    seen: Arc<Mutex<Acknowledged>>,
    chain: usize,
) {
    let http = crate::harness::http_client();
    let mut current = first;
    while let Some(body) = token(
        &http,
        &server,
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &current)],
    )
    .await
    {
        let refresh = body["refresh_token"].as_str().unwrap().to_string();
        let mut seen = seen.lock().unwrap();
        seen.access_tokens
            .push(body["access_token"].as_str().unwrap().to_string());
        seen.chains[chain].push(refresh.clone());
        current = refresh;
    }
}

/// Issues client-credentials tokens on `server` until it goes away.
async fn issue_until_killed(server: String, secret: String, seen: Arc<Mutex<Acknowledged>>) {
    let http = crate::harness::http_client();
    let form = [("grant_type", "client_credentials")];
    while let Some(body) = token(&http, &server, &secret, &form).await {
        let access = body["access_token"].as_str().unwrap().to_string();
        seen.lock().unwrap().access_tokens.push(access);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_under_load_loses_no_acknowledged_token() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = test_database(dir.path());
    let deployment = Deployment {
        env: vec![("DATABASE_URL", database_url.clone())],
    };
    let secret = deployment.register_ada_and_web();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let server = deployment.spawn(&issuer, port);
    server.wait_ready().await;

    const CHAINS: usize = 4;
    let seen = Arc::new(Mutex::new(Acknowledged {
        chains: vec![Vec::new(); CHAINS],
        ..Acknowledged::default()
    }));
    let mut load = tokio::task::JoinSet::new();
    for chain in 0..CHAINS {
        let (code, verifier) = authorize_on(&server, &Browser::for_issuer(&server.base)).await;
        let tokens = server.redeem(&secret, &code, &verifier).await;
        let first = tokens["refresh_token"].as_str().unwrap().to_string();
        seen.lock().unwrap().chains[chain].push(first.clone());
        load.spawn(rotate_until_killed(
            server.base.clone(),
            secret.clone(),
            first,
            seen.clone(),
            chain,
        ));
        load.spawn(issue_until_killed(
            server.base.clone(),
            secret.clone(),
            seen.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    drop(server); // SIGKILL, in the middle of the load
    load.join_all().await;

    let restarted: Instance = deployment.spawn(&issuer, port);
    restarted.wait_ready().await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(seen.access_tokens.len() > 100, "the load ran");
    let pool = {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&database_url).await.unwrap()
    };
    // Every acknowledged access token is stored and unrevoked; the newest ones, answered just
    // before the kill, are also introspected as active.
    let live: std::collections::HashSet<String> =
        sqlx::query_scalar("SELECT token_hash FROM tokens WHERE revoked_at IS NULL")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for token in &seen.access_tokens {
        assert!(
            live.contains(&secret::hash(token)),
            "an acknowledged token was lost"
        );
    }
    for token in seen.access_tokens.iter().rev().take(40) {
        let (status, answer) = restarted
            .post("/introspect", &secret, &[("token", token)])
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["active"], true);
    }
    for chain in &seen.chains {
        assert!(chain.len() > 2, "the chain was rotated");
        for (index, token) in chain.iter().enumerate() {
            let row = sqlx::query("SELECT replaced_by FROM refresh_tokens WHERE token_hash = $1")
                .bind(secret::hash(token))
                .fetch_optional(&pool)
                .await
                .unwrap()
                .expect("an acknowledged refresh token was lost");
            let replaced_by: Option<String> = row.get("replaced_by");
            match chain.get(index + 1) {
                // Rotated once, into the token the client received next.
                Some(next) => assert_eq!(replaced_by, Some(secret::hash(next))),
                // The last one: not rotated, or once, by the request the kill cut off.
                None => {
                    if let Some(successor) = replaced_by {
                        let rotated: Option<String> = sqlx::query_scalar(
                            "SELECT replaced_by FROM refresh_tokens WHERE token_hash = $1",
                        )
                        .bind(&successor)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                        assert_eq!(rotated, None, "a lost successor was never used");
                    }
                }
            }
        }
    }
    pool.close().await;
}
