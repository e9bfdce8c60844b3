//! Audit events delivered to a real HTTP listener: signed, in the order of the changes, retried
//! until accepted, dead after the last attempt (and listed by the CLI), and not lost when the
//! server stops before it could deliver them.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tessera::config::Webhooks;

use crate::harness::*;
use crate::mfa::enroll;
use crate::process::{free_port, Deployment};

const SECRET: &str = "a-webhook-secret-of-at-least-32-characters";

/// What the listener received: the parsed body, and whether its signature checked out.
#[derive(Debug, Clone)]
struct Delivery {
    body: Value,
    signed: bool,
}

/// A webhook receiver on 127.0.0.1 that answers 500 to its first `failures` requests.
#[derive(Clone)]
struct Receiver {
    url: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    async fn start(failures: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(listener, failures)
    }

    fn on(listener: tokio::net::TcpListener, failures: usize) -> Self {
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let failures_left = Arc::new(AtomicUsize::new(failures));
        let seen = deliveries.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let (seen, failures_left) = (seen.clone(), failures_left.clone());
                async move {
                    let delivery = Delivery {
                        body: serde_json::from_str(&body).unwrap(),
                        signed: signature_checks_out(&headers, &body),
                    };
                    seen.lock().unwrap().push(delivery);
                    let fail = failures_left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if fail {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, deliveries }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what arrived.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        self.wait_within(Duration::from_secs(20), what, done).await
    }

    async fn wait_within(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let deadline = Instant::now() + within;
        loop {
            let deliveries = self.deliveries();
            if done(&deliveries) {
                return deliveries;
            }
            assert!(Instant::now() < deadline, "no {what}: {deliveries:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Recomputes `Tessera-Signature` (HMAC-SHA256 over "t.body") as a receiver would.
fn signature_checks_out(headers: &HeaderMap, body: &str) -> bool {
    let Some(value) = headers
        .get("tessera-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((t, v1)) = value
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let id_matches = headers
        .get("tessera-event-id")
        .and_then(|v| v.to_str().ok())
        == serde_json::from_str::<Value>(body).unwrap()["id"].as_str();
    id_matches && hex::decode(v1).is_ok_and(|mac_bytes| mac.verify_slice(&mac_bytes).is_ok())
}

fn webhooks(url: &str, max_attempts: u32) -> Webhooks {
    Webhooks {
        urls: vec![url.to_string()],
        secret: SECRET.into(),
        max_attempts,
        retry_base: Duration::from_secs(1),
    }
}

fn kinds(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries
        .iter()
        .map(|d| d.body["type"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn events_reach_the_webhook_signed_and_in_the_order_of_the_changes() {
    let receiver = Receiver::start(0).await;
    let server = TestServer::start_with(|c| c.webhooks = webhooks(&receiver.url, 5)).await;
    let ada = server.user("ada").await;
    let scim = server.scim().await;
    let grace = scim.create_user(json!({"userName": "grace"})).await;
    let grace_id = grace["id"].as_str().unwrap();
    scim.create_group("Staff", &[grace_id]).await;
    let browser = Browser::new(&server);
    enroll(&server.issuer, &browser, "ada").await;
    let (_, confirm) = browser.visit(&server.url("/logout")).await.page();
    let (status, _) = browser
        .submit_all(&confirm, "/logout/confirm", &[("decision", "allow")])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    scim.delete(&format!("/Users/{grace_id}")).await;

    let expected = [
        "user.created",
        "user.created",
        "group.created",
        "mfa.enrolled",
        "user.logged_out",
        "user.deleted",
    ];
    let deliveries = receiver
        .wait_for("events", |d| d.len() >= expected.len())
        .await;
    assert_eq!(kinds(&deliveries), expected, "{deliveries:?}");
    assert!(
        deliveries.iter().all(|d| d.signed),
        "every delivery is signed"
    );
    let first = &deliveries[0].body;
    assert_eq!(first["data"]["id"], ada.as_str());
    assert_eq!(first["data"]["userName"], "ada");
    assert!(first["time"].as_i64().is_some() && first["id"].as_str().is_some());
    assert_eq!(deliveries[4].body["data"]["id"], ada.as_str());
}

#[tokio::test]
async fn a_refused_event_is_retried_until_the_receiver_accepts_it() {
    let receiver = Receiver::start(2).await;
    let server = TestServer::start_with(|c| c.webhooks = webhooks(&receiver.url, 5)).await;
    server.user("ada").await;
    let deliveries = receiver.wait_for("third attempt", |d| d.len() >= 3).await;
    let ids: Vec<&Value> = deliveries.iter().map(|d| &d.body["id"]).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one event, three attempts"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.deliveries().len(), 3, "accepted: not sent again");
    let dead = run_cli(&server.database_url, &["events", "dead"], "");
    assert!(dead.status.success());
    assert!(dead.stdout.is_empty());
}

#[tokio::test]
async fn after_the_last_attempt_an_event_is_dead_and_listed() {
    let receiver = Receiver::start(usize::MAX).await;
    let server = TestServer::start_with(|c| c.webhooks = webhooks(&receiver.url, 2)).await;
    server.user("ada").await;
    receiver.wait_for("two attempts", |d| d.len() >= 2).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let dead = loop {
        let output = run_cli(&server.database_url, &["events", "dead"], "");
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        if let Some(line) = text.lines().next() {
            break serde_json::from_str::<Value>(line).unwrap();
        }
        assert!(Instant::now() < deadline, "never dead");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead["type"], "user.created");
    assert_eq!(dead["attempts"], 2);
    // The endpoint is named by its origin: a URL's path may hold a credential.
    let origin = receiver.url.trim_end_matches("/hook");
    assert_eq!(dead["last_error"], format!("{origin}: HTTP 500"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.deliveries().len(),
        2,
        "a dead event is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_before_a_restart_are_delivered_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let hook_port = free_port();
    let hook_url = format!("http://127.0.0.1:{hook_port}/hook");
    let deployment = Deployment {
        env: vec![
            ("DATABASE_URL", test_database(dir.path())),
            ("TESSERA_WEBHOOK_URLS", hook_url.clone()),
            ("TESSERA_WEBHOOK_SECRET", SECRET.into()),
            ("TESSERA_WEBHOOK_RETRY_SECONDS", "1".into()),
        ],
    };
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    // Nothing listens on the hook port yet: delivery fails while this instance runs.
    let first = deployment.spawn_with_stdout(&issuer, port, Stdio::null());
    first.wait_ready().await;
    deployment.cli(
        &["user", "create", "--username", "ada", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(first);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", hook_port))
        .await
        .unwrap();
    let receiver = Receiver::on(listener, 0);
    let second = deployment.spawn_with_stdout(&issuer, port, Stdio::null());
    second.wait_ready().await;
    // If the first instance was killed during a delivery attempt, its claim holds the event
    // until the lease ends (a batch of 20 events at a 10 s request timeout each, plus 30 s of
    // slack): at-least-once, not lost.
    let deliveries = receiver
        .wait_within(Duration::from_secs(240), "the event", |d| !d.is_empty())
        .await;
    assert_eq!(kinds(&deliveries), ["user.created"]);
    assert_eq!(deliveries[0].body["data"]["userName"], "ada");
    assert_eq!(
        deliveries[0].body["data"]["origin"], "cli",
        "how the user was made"
    );
    assert!(deliveries[0].signed);
}
