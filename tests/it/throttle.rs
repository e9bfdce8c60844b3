//! Brute-force protection: account lockout, per-address throttling of sign-in and of client
//! authentication, counters shared through Redis between instances, and the fallback to each
//! instance's own counters when Redis is gone.

use std::time::Duration;

use reqwest::StatusCode;
use tessera::config::{Limits, Rule};
use tessera::throttle::{RedisCounters, Throttle};

use crate::harness::*;
use crate::servers::Redis;

pub const LOCKED: &str = "Too many failed sign-in attempts.";

pub fn rule(max_failures: u32, lockout_secs: u64) -> Rule {
    Rule {
        max_failures,
        window: Duration::from_secs(60),
        lockout: Duration::from_secs(lockout_secs),
    }
}

pub async fn attempt(browser: &Browser, page: &str, username: &str, password: &str) -> Landing {
    browser
        .submit(
            page,
            "/login",
            &[("username", username), ("password", password)],
        )
        .await
}

fn assert_locked(landing: Landing, lockout_secs: u64) -> String {
    let Landing::Page {
        status,
        body,
        retry_after,
    } = landing
    else {
        panic!("expected the login page, got {landing:?}");
    };
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body.contains(LOCKED), "{body}");
    let wait = retry_after.expect("Retry-After");
    assert!((1..=lockout_secs).contains(&wait), "Retry-After: {wait}");
    body
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_for_the_right_password_and_unknown_names_alike()
{
    let server = TestServer::start_with(|c| c.limits.account = rule(3, 2)).await;
    server.user("ada").await;
    server.user("grace").await;
    let browser = Browser::new(&server);
    let page = login_page(&server, &browser).await;

    for _ in 0..2 {
        let (status, _) = attempt(&browser, &page, "ada", "wrong").await.page();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_locked(attempt(&browser, &page, "ada", "wrong").await, 2);
    // Locked: the right password is refused too, also when the name is typed in another case.
    let locked_ada = assert_locked(attempt(&browser, &page, "ADA", PASSWORD).await, 2);

    // A name that belongs to nobody locks the same way and shows the same page.
    for _ in 0..3 {
        attempt(&browser, &page, "nobody", "wrong").await;
    }
    let locked_nobody = assert_locked(attempt(&browser, &page, "nobody", PASSWORD).await, 2);
    assert_eq!(
        locked_ada.replace("ADA", "NAME"),
        locked_nobody.replace("nobody", "NAME"),
        "a locked account does not reveal that it exists"
    );

    // Other accounts are not affected, and the lock ends by itself.
    let (status, _) = browser.log_in(&page, "grace").await.page();
    assert_eq!(status, StatusCode::OK, "grace signs in");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let browser = Browser::new(&server);
    let page = login_page(&server, &browser).await;
    let (status, consent) = browser.log_in(&page, "ada").await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(consent.contains("name=\"decision\""));

    // Every checked attempt on the name is in `login_attempts`, newest first, however it was
    // typed; refusals while locked are only counted in the metrics.
    let attempts = server
        .state
        .store
        .login_attempts(&server.state.throttle.names().hash("Ada"), 10)
        .await
        .unwrap();
    let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome).collect();
    use tessera::store::LoginOutcome::*;
    assert_eq!(outcomes, [Success, Failure, Failure, Failure]);
    assert!(attempts.iter().all(|a| a.ip == "127.0.0.1"));
}

#[tokio::test]
async fn a_successful_sign_in_resets_the_account_count() {
    let server = TestServer::start_with(|c| c.limits.account = rule(3, 60)).await;
    server.user("ada").await;
    for _ in 0..3 {
        let browser = Browser::new(&server);
        let page = login_page(&server, &browser).await;
        for _ in 0..2 {
            let (status, _) = attempt(&browser, &page, "ada", "wrong").await.page();
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, _) = browser.log_in(&page, "ada").await.page();
        assert_eq!(
            status,
            StatusCode::OK,
            "two failures and a success never lock"
        );
    }
}

#[tokio::test]
async fn failures_from_one_address_throttle_every_account_from_it() {
    let server = TestServer::start_with(|c| c.limits.ip = rule(4, 60)).await;
    server.user("ada").await;
    let browser = Browser::new(&server);
    let page = login_page(&server, &browser).await;
    for name in ["a", "b", "c"] {
        let (status, _) = attempt(&browser, &page, name, "wrong").await.page();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_locked(attempt(&browser, &page, "d", "wrong").await, 60);
    assert_locked(browser.log_in(&page, "ada").await, 60);
}

#[tokio::test]
async fn client_authentication_failures_are_throttled_but_the_right_secret_still_works() {
    let server = TestServer::start_with(|c| c.limits.client_ip = rule(3, 60)).await;
    let secret = server.resource_server_secret().await;
    let grant = [("grant_type", "client_credentials")];
    for _ in 0..2 {
        let (status, _, body) = post_token(&server, Some(("rs", "wrong")), &grant).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid_client");
    }
    // Unknown clients count too; the third failure locks the address.
    let (status, headers, body) = post_token(&server, Some(("ghost", "wrong")), &grant).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    assert_eq!(headers["cache-control"], "no-store");
    // Introspection and revocation authenticate the same way and share the count.
    let response = http_client()
        .post(server.url("/introspect"))
        .basic_auth("rs", Some("wrong"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    // The client's own secret is not refused: throttling only answers failures.
    let (status, _, body) = post_token(&server, Some(("rs", &secret)), &grant).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn instances_sharing_redis_share_the_lockout() {
    let redis = Redis::new();
    let start = || {
        TestServer::start_with(|c| {
            c.limits.account = rule(3, 60);
            c.store.redis_url = Some(redis.url());
        })
    };
    let (a, b) = (start().await, start().await);
    a.user("ada").await;
    b.user("ada").await;
    let (on_a, on_b) = (Browser::new(&a), Browser::new(&b));
    let page_a = login_page(&a, &on_a).await;
    let page_b = login_page(&b, &on_b).await;
    attempt(&on_a, &page_a, "ada", "wrong").await;
    attempt(&on_b, &page_b, "ada", "wrong").await;
    assert_locked(attempt(&on_a, &page_a, "ada", "wrong").await, 60);
    assert_locked(on_b.log_in(&page_b, "ada").await, 60);
}

#[tokio::test]
async fn without_redis_each_instance_keeps_enforcing_its_own_limits() {
    let redis = Redis::new();
    let limits = Limits {
        account: rule(2, 60),
        ..tessera::Config::default().limits
    };
    let counters = RedisCounters::connect(&redis.url(), "throttle-test:")
        .await
        .unwrap();
    let names = tessera::username::NameHasher::new([9; 32]);
    let throttle = Throttle::shared(limits, names, counters);
    let ada = [throttle.account("ada")];
    assert_eq!(throttle.record_failure(&ada).await, None);
    assert!(throttle.record_failure(&ada).await.is_some());
    assert!(throttle.locked(&ada).await.is_some());

    redis.stop();
    let grace = [throttle.account("grace")];
    assert_eq!(throttle.locked(&grace).await, None);
    assert_eq!(throttle.record_failure(&grace).await, None);
    let left = throttle.record_failure(&grace).await;
    assert!(left.is_some(), "the fallback counters lock too");
    assert!(throttle.locked(&grace).await.is_some());
}
