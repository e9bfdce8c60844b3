//! Crash safety (issue 15, item 12): a `tessera serve` killed with SIGKILL in the middle of a
//! token load, or whose PostgreSQL restarts under it, loses nothing it acknowledged. Every access
//! token a client received is still active afterwards, every refresh token it received is still
//! stored, and each was rotated at most once: into the next one the client received, or, for the
//! last one, into a successor whose response was lost.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Row;
use tessera::secret;
use tokio::task::JoinSet;

use crate::cluster::authorize_on;
use crate::harness::{test_database, Browser};
use crate::process::{free_port, Deployment, Instance};
use crate::servers::OwnedPostgres;

/// What the clients were answered before the kill.
#[derive(Default)]
struct Acknowledged {
    access_tokens: Vec<String>,
    /// Per chain, every refresh token received, in order.
    chains: Vec<Vec<String>>,
}

/// How a token request was answered.
enum Answer {
    Issued(Value),
    /// 503: the store is unavailable; nothing was issued.
    Unavailable,
    /// Any other status, or no answer at all (the server is gone).
    Failed,
}

async fn token(http: &reqwest::Client, load: &Load, form: &[(&str, &str)]) -> Answer {
    let sent = http
        .post(format!("{}/token", load.server))
        .basic_auth("web", Some(&load.secret))
        .form(form)
        .send()
        .await;
    let Ok(response) = sent else {
        return Answer::Failed;
    };
    match response.status() {
        StatusCode::OK => match response.json().await {
            Ok(body) => Answer::Issued(body),
            Err(_) => Answer::Failed,
        },
        StatusCode::SERVICE_UNAVAILABLE => Answer::Unavailable,
        _ => Answer::Failed,
    }
}

/// Clients hammering one server: four refresh chains and four client-credentials loops.
#[derive(Clone)]
struct Load {
    server: String,
    secret: String,
    seen: Arc<Mutex<Acknowledged>>,
    /// Whether a 503 is retried after a pause (a client honouring `temporarily_unavailable`)
    /// rather than ending the task.
    retry_unavailable: bool,
    stop: Arc<AtomicBool>,
    unavailable: Arc<AtomicUsize>,
    /// Answers that were neither a token nor a 503 (a 500, a dropped connection), which end
    /// their task.
    failed: Arc<AtomicUsize>,
}

const CHAINS: usize = 4;

impl Load {
    /// Starts the load on `server`, each chain from a code exchanged there.
    async fn start(
        server: &Instance,
        secret: &str,
        retry_unavailable: bool,
    ) -> (Load, JoinSet<()>) {
        let load = Load {
            server: server.base.clone(),
            secret: secret.to_string(),
            seen: Arc::new(Mutex::new(Acknowledged {
                chains: vec![Vec::new(); CHAINS],
                ..Acknowledged::default()
            })),
            retry_unavailable,
            stop: Arc::default(),
            unavailable: Arc::default(),
            failed: Arc::default(),
        };
        let mut tasks = JoinSet::new();
        for chain in 0..CHAINS {
            let (code, verifier) = authorize_on(server, &Browser::for_issuer(&server.base)).await;
            let tokens = server.redeem(secret, &code, &verifier).await;
            let first = tokens["refresh_token"].as_str().unwrap().to_string();
            load.seen.lock().unwrap().chains[chain].push(first);
            tasks.spawn(load.clone().rotate(chain));
            tasks.spawn(load.clone().issue());
        }
        (load, tasks)
    }

    /// The next issued answer to `form`, or `None` when this task ends.
    async fn send(&self, http: &reqwest::Client, form: &[(&str, &str)]) -> Option<Value> {
        while !self.stop.load(Ordering::Relaxed) {
            match token(http, self, form).await {
                Answer::Issued(body) => return Some(body),
                Answer::Unavailable if self.retry_unavailable => {
                    self.unavailable.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Answer::Unavailable | Answer::Failed => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        None
    }

    /// Rotates the chain's newest refresh token, again and again, recording every answer.
    async fn rotate(self, chain: usize) {
        let http = crate::harness::http_client();
        let mut current = self.seen.lock().unwrap().chains[chain][0].clone();
        loop {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", current.as_str()),
            ];
            let Some(body) = self.send(&http, &form).await else {
                return;
            };
            let refresh = body["refresh_token"].as_str().unwrap().to_string();
            let mut seen = self.seen.lock().unwrap();
            seen.access_tokens
                .push(body["access_token"].as_str().unwrap().to_string());
            seen.chains[chain].push(refresh.clone());
            current = refresh;
        }
    }

    /// Issues client-credentials tokens, recording every one.
    async fn issue(self) {
        let http = crate::harness::http_client();
        let form = [("grant_type", "client_credentials")];
        while let Some(body) = self.send(&http, &form).await {
            let access = body["access_token"].as_str().unwrap().to_string();
            self.seen.lock().unwrap().access_tokens.push(access);
        }
    }

    /// What the clients were answered, once every task has ended.
    async fn finish(self, tasks: JoinSet<()>) -> Acknowledged {
        self.stop.store(true, Ordering::Relaxed);
        tasks.join_all().await;
        std::mem::take(&mut *self.seen.lock().unwrap())
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

    let (load, tasks) = Load::start(&server, &secret, false).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    drop(server); // SIGKILL, in the middle of the load
    let seen = load.finish(tasks).await;

    let restarted: Instance = deployment.spawn(&issuer, port);
    restarted.wait_ready().await;
    assert_nothing_lost(&seen, &database_url, &restarted, &secret).await;
}

/// PostgreSQL stops (fast shutdown: connections cut, open transactions rolled back) in the middle
/// of the load and comes back: requests get 503 meanwhile, service resumes by itself, and nothing
/// acknowledged is lost. Clients retry their 503s; the grace window lets a rotation whose answer
/// was lost with the connection be retried, as RFC 9700 §4.14.2 intends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_loses_no_acknowledged_token() {
    let postgres = OwnedPostgres::new();
    let database_url = postgres.database();
    let deployment = Deployment {
        env: vec![
            ("DATABASE_URL", database_url.clone()),
            ("DATABASE_ACQUIRE_TIMEOUT_SECONDS", "1".into()),
            ("TESSERA_CIRCUIT_OPEN_SECONDS", "1".into()),
            ("TESSERA_REFRESH_REUSE_GRACE_SECONDS", "60".into()),
        ],
    };
    let secret = deployment.register_ada_and_web();
    let port = free_port();
    let server = deployment.spawn(&format!("http://127.0.0.1:{port}"), port);
    server.wait_ready().await;

    let (load, tasks) = Load::start(&server, &secret, true).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    postgres.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    postgres.start();
    let before_restart = load.seen.lock().unwrap().access_tokens.len();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let (unavailable, failed) = (load.unavailable.clone(), load.failed.clone());
    let seen = load.finish(tasks).await;

    assert!(
        unavailable.load(Ordering::Relaxed) > 0,
        "requests got 503 while PostgreSQL was down"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "every other answer was a token"
    );
    assert!(
        seen.access_tokens.len() > before_restart + 20,
        "service resumed by itself"
    );
    assert_nothing_lost(&seen, &database_url, &server, &secret).await;
}

/// Every acknowledged access token is stored and unrevoked (the newest also introspected as
/// active by `server`), and every chain's refresh tokens are stored, each rotated into the next.
async fn assert_nothing_lost(
    seen: &Acknowledged,
    database_url: &str,
    server: &Instance,
    secret: &str,
) {
    assert!(seen.access_tokens.len() > 100, "the load ran");
    let pool = {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(database_url).await.unwrap()
    };
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
        let (status, answer) = server
            .post("/introspect", secret, &[("token", token)])
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
