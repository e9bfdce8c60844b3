//! Store outages: while the database (or the hybrid backend's Redis) is down Tessera fails closed
//! (503, nothing issued), `/readyz` says so, and service comes back by itself when it does. Redis
//! beside the database holds no data of its own: losing it changes nothing a client sees.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tessera::config::StoreBackend;
use tessera::oauth::clients::ClientRegistration;

use crate::harness::{http_client, post_token, TestServer};
use crate::servers::{OwnedPostgres, Redis};
use crate::throttle::{rule, LOCKED};

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
        config.store.database_url = database_url.clone();
        // A request waits at most this long for the database before it fails.
        config.store.pool.acquire_timeout = Duration::from_secs(2);
    })
    .await;
    fails_closed_while_down(&server, || postgres.stop(), || postgres.start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_on_the_hybrid_backend_fails_closed_and_recovers_by_itself() {
    let redis = Redis::new();
    let server = TestServer::start_with(|config| {
        config.store.backend = StoreBackend::Hybrid;
        config.store.redis_url = Some(redis.url());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_redis_the_sql_backend_keeps_serving_from_the_database() {
    let redis = Redis::new();
    let server = TestServer::start_with(|config| {
        config.store.redis_url = Some(redis.url());
        config.limits.account = rule(2, 60);
    })
    .await;
    server.user("ada").await;
    let rs_secret = server.resource_server_secret().await;
    let grant = [("grant_type", "client_credentials")];
    let issue = || async {
        let (status, _, body) = post_token(&server, Some(("rs", &rs_secret)), &grant).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    };
    let cached = issue().await;
    assert_eq!(server.introspect(&cached).await["active"], true);

    redis.stop();
    let ready = http_client()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "Redis is no store here");
    assert!(ready.text().await.unwrap().contains("Redis unreachable"));
    let token = issue().await;
    assert_eq!(server.introspect(&token).await["active"], true);
    let response = http_client()
        .post(server.url("/revoke"))
        .basic_auth("rs", Some(&rs_secret))
        .form(&[("token", cached.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.introspect(&cached).await["active"], false);

    // The lockout still holds, counted by this instance alone.
    let browser = crate::harness::Browser::new(&server);
    let page = crate::harness::login_page(&server, &browser).await;
    for _ in 0..2 {
        crate::throttle::attempt(&browser, &page, "ada", "wrong").await;
    }
    let (status, body) = browser.log_in(&page, "ada").await.page();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains(LOCKED));
}
