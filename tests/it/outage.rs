//! Store outages: while the database (or the hybrid backend's Redis) is down Tessera fails closed
//! (503, nothing issued), `/readyz` says so, and service comes back by itself when it does.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tessera::config::StoreBackend;
use tessera::oauth::clients::ClientRegistration;

use crate::harness::{http_client, post_token, TestServer};
use crate::servers::{OwnedPostgres, Redis};

async fn readyz(server: &TestServer) -> StatusCode {
    http_client()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_fails_closed_and_recovers_by_itself() {
    let postgres = OwnedPostgres::new();
    let database_url = postgres.database();
    let server = TestServer::start_with(|config| {
        config.database_url = database_url.clone();
        // A request waits at most this long for the database before it fails.
        config.pool.acquire_timeout = Duration::from_secs(2);
    })
    .await;
    fails_closed_while_down(&server, || postgres.stop(), || postgres.start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_on_the_hybrid_backend_fails_closed_and_recovers_by_itself() {
    let redis = Redis::new();
    let server = TestServer::start_with(|config| {
        config.store_backend = StoreBackend::Hybrid;
        config.redis_url = Some(redis.url());
    })
    .await;
    fails_closed_while_down(&server, || redis.stop(), || redis.start()).await;
}

/// Issues a token, takes the store's server down, expects fast 503s and an unready `/readyz`,
/// brings it back, and expects service to resume without a restart of Tessera.
async fn fails_closed_while_down(server: &TestServer, stop: impl FnOnce(), start: impl FnOnce()) {
    let secret = server
        .client(ClientRegistration {
            client_id: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            scope: Some("read".into()),
            ..ClientRegistration::default()
        })
        .await
        .unwrap();
    let grant = [("grant_type", "client_credentials")];
    let (status, _, body) = post_token(server, Some(("svc", &secret)), &grant).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(readyz(server).await, StatusCode::OK);

    stop();
    let started = Instant::now();
    let (status, headers, body) = post_token(server, Some(("svc", &secret)), &grant).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        body.get("access_token").is_none(),
        "no token without persistence"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fails fast, not after a long hang"
    );
    assert_eq!(readyz(server).await, StatusCode::SERVICE_UNAVAILABLE);
    let discovery = http_client()
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        discovery.status(),
        StatusCode::OK,
        "what needs no store still works"
    );

    start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while readyz(server).await != StatusCode::OK {
        assert!(Instant::now() < deadline, "never became ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _, body) = post_token(server, Some(("svc", &secret)), &grant).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
