//! Against a real `redis-server` (Debian's package), one per test on a free port, so a test can
//! stop and restart its own. The shared behaviour suite in `tests/it/store_suite.rs` holds the
//! hybrid store to the SQL results; these check the Redis specifics: atomicity under
//! concurrency, expiry by the caller's clock, purge batches, index upkeep and reconnection.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Barrier;

use super::*;

/// A fixed "now" in 2027; [`PAST`] is long gone in wall-clock time, to show Redis's own expiry
/// never decides what the caller's clock does.
const NOW: UnixTime = 1_800_000_000;
const PAST: UnixTime = 1_000_000;
const HOUR: UnixTime = 3600;

/// A `redis-server` without persistence, killed when dropped.
struct Server {
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Server { port, child: None };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn store() -> (RedisStore, Server) {
    let server = Server::start();
    let store = RedisStore::connect(&server.url(), "test:")
        .await
        .expect("connect");
    (store, server)
}

fn code(grant_id: &str, user_id: &str, session_id: &str, expires_at: UnixTime) -> AuthCode {
    AuthCode {
        grant_id: grant_id.into(),
        client_id: "app".into(),
        user_id: user_id.into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: "openid".into(),
        nonce: Some("n".into()),
        code_challenge: "challenge".into(),
        session_id: session_id.into(),
        auth_time: NOW - 60,
        acr: "urn:tessera:acr:pwd".into(),
        amr: vec!["pwd".into()],
        expires_at,
    }
}

fn access(hash: &str, grant_id: &str, user_id: Option<&str>, expires_at: UnixTime) -> TokenRecord {
    TokenRecord {
        token_hash: hash.into(),
        jti: format!("jti-{hash}"),
        grant_id: grant_id.into(),
        client_id: "app".into(),
        user_id: user_id.map(Into::into),
        scope: "openid".into(),
        mfa_verified: user_id.is_some(),
        acr: user_id.map(|_| "urn:tessera:acr:pwd".into()),
        amr: Vec::new(),
        auth_time: user_id.map(|_| NOW - 60),
        issued_at: NOW - 10,
        expires_at,
        revoked: false,
    }
}

fn refresh(hash: &str, family: &str, user_id: &str, session: Option<&str>) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.into(),
        family_id: family.into(),
        client_id: "app".into(),
        user_id: user_id.into(),
        scope: "openid offline_access".into(),
        session_id: session.map(Into::into),
        auth_time: NOW - 60,
        acr: "urn:tessera:acr:pwd".into(),
        amr: vec!["pwd".into()],
        issued_at: NOW - 10,
        expires_at: NOW + HOUR,
        rotated_at: None,
        replaced_by: None,
        grace_used: false,
        revoked: false,
    }
}

fn replay(grant_id: &str) -> CodeRedemption {
    CodeRedemption::AlreadyRedeemed {
        grant_id: grant_id.into(),
    }
}

async fn token_revoked(store: &RedisStore, hash: &str) -> bool {
    store.token_by_hash(hash).await.unwrap().unwrap().revoked
}

async fn refresh_revoked(store: &RedisStore, hash: &str) -> bool {
    store.refresh_token(hash).await.unwrap().unwrap().revoked
}

#[tokio::test]
async fn records_round_trip_and_duplicates_fail() {
    let (store, _server) = store().await;
    store.ping().await.unwrap();
    let token = access("t1", "g1", Some("u1"), NOW + HOUR);
    let client_token = access("t2", "g2", None, NOW + HOUR);
    store.insert_token(&token).await.unwrap();
    store.insert_token(&client_token).await.unwrap();
    assert_eq!(
        store.token_by_hash("t1").await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(store.token_by_hash("t2").await.unwrap(), Some(client_token));
    assert_eq!(store.token_by_hash("t3").await.unwrap(), None);
    let same_jti = TokenRecord {
        token_hash: "t3".into(),
        ..token.clone()
    };
    for duplicate in [&token, &same_jti] {
        let err = store.insert_token(duplicate).await.unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    }

    let rt = RefreshTokenRecord {
        session_id: None,
        amr: Vec::new(),
        ..refresh("r1", "g1", "u1", None)
    };
    store.insert_refresh_token(&rt).await.unwrap();
    assert_eq!(store.refresh_token("r1").await.unwrap(), Some(rt.clone()));
    assert!(store.insert_refresh_token(&rt).await.is_err());

    let c = AuthCode {
        nonce: None,
        ..code("g1", "u1", "s1", NOW + 60)
    };
    store.insert_code("c1", &c).await.unwrap();
    assert!(store.insert_code("c1", &c).await.is_err());
    assert_eq!(
        store.redeem_code("c1", NOW).await.unwrap(),
        CodeRedemption::Redeemed(Box::new(c))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_concurrent_redemptions_wins() {
    let (store, _server) = store().await;
    let store = Arc::new(store);
    store
        .insert_code("c1", &code("g1", "u1", "s1", NOW + 60))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.redeem_code("c1", NOW).await.unwrap()
            })
        })
        .collect();
    let mut redeemed = 0;
    for task in tasks {
        match task.await.unwrap() {
            CodeRedemption::Redeemed(code) => {
                assert_eq!(code.grant_id, "g1");
                redeemed += 1;
            }
            other => assert_eq!(other, replay("g1")),
        }
    }
    assert_eq!(redeemed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_concurrent_rotations_wins() {
    let (store, _server) = store().await;
    let store = Arc::new(store);
    store
        .insert_refresh_token(&refresh("old", "fam", "u1", Some("s1")))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let new = refresh(&format!("new-{i}"), "fam", "u1", Some("s1"));
                barrier.wait().await;
                let rotation = store.rotate_refresh_token("old", &new, NOW).await.unwrap();
                (new.token_hash, rotation)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (hash, rotation) = task.await.unwrap();
        let stored = store.refresh_token(&hash).await.unwrap();
        assert_eq!(stored.is_some(), rotation == Rotation::Rotated, "{hash}");
        if rotation == Rotation::Rotated {
            winners.push(hash);
        }
    }
    assert_eq!(winners.len(), 1);
    let old = store.refresh_token("old").await.unwrap().unwrap();
    assert_eq!(old.replaced_by.as_ref(), Some(&winners[0]));
    assert_eq!(old.rotated_at, Some(NOW));
    // Only the winner's successor joined the family and session indexes.
    assert_eq!(store.grants_of_session("s1").await.unwrap(), ["fam"]);
    assert_eq!(store.revoke_grant("fam", NOW).await.unwrap(), 2);
}

#[tokio::test]
async fn rotation_needs_a_live_unrotated_token_and_a_free_hash() {
    let (store, _server) = store().await;
    store
        .insert_refresh_token(&refresh("a", "fam", "u1", None))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("taken", "fam", "u1", None))
        .await
        .unwrap();
    let err = store
        .rotate_refresh_token("a", &refresh("taken", "fam", "u1", None), NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert_eq!(
        store.refresh_token("a").await.unwrap().unwrap().rotated_at,
        None,
        "a failed rotation writes nothing"
    );
    let expired = RefreshTokenRecord {
        expires_at: NOW,
        ..refresh("x", "fam-x", "u1", None)
    };
    store.insert_refresh_token(&expired).await.unwrap();
    let next = refresh("x-next", "fam-x", "u1", None);
    assert_eq!(
        store.rotate_refresh_token("x", &next, NOW).await.unwrap(),
        Rotation::Lost,
        "dead at its expiry time"
    );
    assert_eq!(
        store
            .rotate_refresh_token("x", &next, NOW - 1)
            .await
            .unwrap(),
        Rotation::Rotated
    );
}

#[tokio::test]
async fn grace_window_replaces_an_unused_successor_once() {
    let (store, _server) = store().await;
    store
        .insert_refresh_token(&refresh("a", "fam", "u1", None))
        .await
        .unwrap();
    let b = refresh("b", "fam", "u1", None);
    assert_eq!(
        store.rotate_refresh_token("a", &b, NOW).await.unwrap(),
        Rotation::Rotated
    );
    let c = refresh("c", "fam", "u1", None);
    assert_eq!(
        store
            .replace_successor("a", NOW + 1, &c, NOW + 5)
            .await
            .unwrap(),
        Rotation::Lost,
        "rotated before the window"
    );
    assert_eq!(
        store
            .replace_successor("a", NOW, &c, NOW + 5)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    assert!(refresh_revoked(&store, "b").await);
    let a = store.refresh_token("a").await.unwrap().unwrap();
    assert_eq!(a.replaced_by.as_deref(), Some("c"));
    assert!(a.grace_used && !a.revoked);
    let d = refresh("d", "fam", "u1", None);
    assert_eq!(
        store
            .replace_successor("a", NOW, &d, NOW + 6)
            .await
            .unwrap(),
        Rotation::Lost,
        "once per token"
    );
    assert_eq!(store.refresh_token("d").await.unwrap(), None);
}

#[tokio::test]
async fn revoke_grant_counts_what_it_changed() {
    let (store, _server) = store().await;
    store
        .insert_code("g-used", &code("g", "u1", "s1", NOW + 60))
        .await
        .unwrap();
    assert!(matches!(
        store.redeem_code("g-used", NOW - 5).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    store
        .insert_code("g-fresh", &code("g", "u1", "s1", NOW + 60))
        .await
        .unwrap();
    for hash in ["g-a1", "g-a2"] {
        store
            .insert_token(&access(hash, "g", Some("u1"), NOW + HOUR))
            .await
            .unwrap();
    }
    store.revoke_token("g-a2", NOW - 1).await.unwrap();
    store
        .insert_refresh_token(&refresh("g-r1", "g", "u1", Some("s1")))
        .await
        .unwrap();
    let r2 = refresh("g-r2", "g", "u1", Some("s1"));
    store
        .rotate_refresh_token("g-r1", &r2, NOW - 1)
        .await
        .unwrap();
    store
        .insert_token(&access("h-a1", "h", Some("u1"), NOW + HOUR))
        .await
        .unwrap();

    assert_eq!(store.revoke_grant("g", NOW).await.unwrap(), 4);
    assert!(token_revoked(&store, "g-a1").await);
    assert!(refresh_revoked(&store, "g-r2").await);
    assert_eq!(
        store.redeem_code("g-fresh", NOW).await.unwrap(),
        replay("g")
    );
    assert!(!token_revoked(&store, "h-a1").await);
    assert_eq!(store.revoke_grant("g", NOW + 1).await.unwrap(), 0);
    assert_eq!(store.revoke_grant("unknown", NOW).await.unwrap(), 0);
}

#[tokio::test]
async fn expiry_follows_the_callers_clock_not_redis() {
    use ArtifactKind::{Interaction, Session};
    let (store, _server) = store().await;
    // Expired long ago in wall-clock time: Redis still keeps the records.
    store
        .insert_code("old", &code("g1", "u1", "s1", PAST + 60))
        .await
        .unwrap();
    store
        .insert_token(&access("t-old", "g1", Some("u1"), PAST + 60))
        .await
        .unwrap();
    store
        .put_artifact(Session, "s-old", None, "p", PAST + 60)
        .await
        .unwrap();
    assert!(store.token_by_hash("t-old").await.unwrap().is_some());
    assert_eq!(
        store
            .artifact(Session, "s-old", PAST)
            .await
            .unwrap()
            .as_deref(),
        Some("p")
    );
    assert_eq!(
        store.artifact(Session, "s-old", PAST + 60).await.unwrap(),
        None
    );
    assert_eq!(
        store.artifact(Interaction, "s-old", PAST).await.unwrap(),
        None
    );
    assert_eq!(
        store.redeem_code("old", PAST + 60).await.unwrap(),
        CodeRedemption::Invalid
    );
    assert!(matches!(
        store.redeem_code("old", PAST + 59).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        store.redeem_code("old", PAST + 99).await.unwrap(),
        replay("g1")
    );

    // Redis drops records by itself a margin after they expire, counted from now at the latest.
    let mut conn = store.conn.clone();
    for key in ["test:code:old", "test:token:t-old", "test:jti:jti-t-old"] {
        let ttl: i64 = ::redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(
            (EXPIRY_MARGIN - 60..=EXPIRY_MARGIN).contains(&ttl),
            "{key}: {ttl}"
        );
    }
    store
        .insert_code("far", &code("g2", "u1", "s1", clock::now() + 10 * HOUR))
        .await
        .unwrap();
    let ttl: i64 = ::redis::cmd("TTL")
        .arg("test:code:far")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((10 * HOUR + EXPIRY_MARGIN - 60..=10 * HOUR + EXPIRY_MARGIN).contains(&ttl));
}

#[tokio::test]
async fn artifacts_upsert_move_owner_and_delete_once() {
    use ArtifactKind::Session;
    let (store, _server) = store().await;
    store
        .put_artifact(Session, "id1", Some("u1"), "one", NOW + 100)
        .await
        .unwrap();
    // Moved to u2: ending u1's access leaves it, ending u2's removes it.
    store
        .put_artifact(Session, "id1", Some("u2"), "two", NOW + 200)
        .await
        .unwrap();
    assert_eq!(
        store
            .artifact(Session, "id1", NOW + 150)
            .await
            .unwrap()
            .as_deref(),
        Some("two")
    );
    store.end_user_access("u1", NOW).await.unwrap();
    assert!(store.artifact(Session, "id1", NOW).await.unwrap().is_some());
    store.end_user_access("u2", NOW).await.unwrap();
    assert_eq!(store.artifact(Session, "id1", NOW).await.unwrap(), None);

    store
        .put_artifact(Session, "id2", None, "x", NOW + 100)
        .await
        .unwrap();
    assert!(store.delete_artifact(Session, "id2").await.unwrap());
    assert!(!store.delete_artifact(Session, "id2").await.unwrap());
    // Upsert moved the expiry too: only the latest one is in the purge's set.
    store
        .put_artifact(Session, "id3", None, "x", NOW - 10)
        .await
        .unwrap();
    store
        .put_artifact(Session, "id3", None, "x", NOW + 10)
        .await
        .unwrap();
    assert_eq!(store.purge_expired(NOW, NOW, 10).await.unwrap(), 0);
    assert!(store.artifact(Session, "id3", NOW).await.unwrap().is_some());
}

#[tokio::test]
async fn purge_removes_at_most_a_batch_of_each_kind() {
    let (store, _server) = store().await;
    let cutoff = NOW - 500;
    for (hash, expires_at) in [
        ("old-1", NOW - 1000),
        ("old-2", NOW - 900),
        ("recent", NOW - 10),
    ] {
        store
            .insert_code(hash, &code(&format!("g-{hash}"), "u1", "s1", expires_at))
            .await
            .unwrap();
    }
    for (hash, expires_at) in [("t-x1", NOW - 1), ("t-x2", NOW - 50), ("t-live", NOW + 100)] {
        store
            .insert_token(&access(hash, "g", Some("u1"), expires_at))
            .await
            .unwrap();
    }
    for (hash, expires_at) in [("r-x1", NOW - 1), ("r-x2", NOW - 50)] {
        let token = RefreshTokenRecord {
            expires_at,
            ..refresh(hash, "g", "u1", Some("s1"))
        };
        store.insert_refresh_token(&token).await.unwrap();
    }
    store
        .put_artifact(ArtifactKind::Session, "a", Some("u1"), "p", NOW)
        .await
        .unwrap();

    assert_eq!(store.purge_expired(NOW, cutoff, 0).await.unwrap(), 0);
    assert_eq!(store.purge_expired(NOW, cutoff, 1).await.unwrap(), 3);
    assert_eq!(store.purge_expired(NOW, cutoff, 100).await.unwrap(), 3);
    assert_eq!(store.purge_expired(NOW, cutoff, 100).await.unwrap(), 0);
    // Expiring exactly at `now` is not yet "before now".
    assert_eq!(store.purge_expired(NOW + 1, cutoff, 100).await.unwrap(), 1);

    for hash in ["old-1", "old-2"] {
        assert_eq!(
            store.redeem_code(hash, NOW - 2000).await.unwrap(),
            CodeRedemption::Invalid
        );
    }
    assert!(matches!(
        store.redeem_code("recent", NOW - 2000).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert!(store.token_by_hash("t-x1").await.unwrap().is_none());
    assert!(store.token_by_hash("t-live").await.unwrap().is_some());
    assert_eq!(store.refresh_token("r-x2").await.unwrap(), None);
    // A purged token frees its jti.
    store
        .insert_token(&access("t-x1", "g", None, NOW + 100))
        .await
        .unwrap();

    // Purged records left every index: the session lists only what is left.
    assert_eq!(store.grants_of_session("s1").await.unwrap(), ["g-recent"]);
    let mut conn = store.conn.clone();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("test:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "test:code:recent",
            "test:expiry:code",
            "test:expiry:token",
            "test:grant-codes:g-recent",
            "test:grant-tokens:g",
            "test:jti:jti-t-live",
            "test:jti:jti-t-x1",
            "test:session-codes:s1",
            "test:token:t-live",
            "test:token:t-x1",
            "test:user-codes:u1",
            "test:user-tokens:u1",
        ]
    );
}

#[tokio::test]
async fn end_user_access_ends_only_that_users_records() {
    let (store, _server) = store().await;
    for user in ["u1", "u2"] {
        let grant = format!("grant-{user}");
        store
            .insert_code(&format!("code-{user}"), &code(&grant, user, "s", NOW + 60))
            .await
            .unwrap();
        store
            .insert_token(&access(
                &format!("at-{user}"),
                &grant,
                Some(user),
                NOW + HOUR,
            ))
            .await
            .unwrap();
        store
            .insert_refresh_token(&refresh(&format!("rt-{user}"), &grant, user, None))
            .await
            .unwrap();
        store
            .put_artifact(
                ArtifactKind::Session,
                &format!("session-{user}"),
                Some(user),
                "{}",
                NOW + HOUR,
            )
            .await
            .unwrap();
    }
    store
        .put_artifact(ArtifactKind::Interaction, "pending", None, "{}", NOW + HOUR)
        .await
        .unwrap();

    store.end_user_access("u1", NOW).await.unwrap();
    assert_eq!(
        store.redeem_code("code-u1", NOW).await.unwrap(),
        replay("grant-u1")
    );
    assert!(token_revoked(&store, "at-u1").await);
    assert!(refresh_revoked(&store, "rt-u1").await);
    assert_eq!(
        store
            .artifact(ArtifactKind::Session, "session-u1", NOW)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store.redeem_code("code-u2", NOW).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert!(!token_revoked(&store, "at-u2").await);
    assert!(!refresh_revoked(&store, "rt-u2").await);
    assert!(store
        .artifact(ArtifactKind::Session, "session-u2", NOW)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .artifact(ArtifactKind::Interaction, "pending", NOW)
        .await
        .unwrap()
        .is_some());
    // Already ended: revoking the grant finds nothing left.
    assert_eq!(store.revoke_grant("grant-u1", NOW).await.unwrap(), 0);
    store.end_user_access("nobody", NOW).await.unwrap();
}

#[tokio::test]
async fn signing_keys_keep_insertion_order_and_unique_kids() {
    let (store, _server) = store().await;
    assert!(store.signing_keys().await.unwrap().is_empty());
    let key = |kid: &str, created_at| SigningKeyRecord {
        kid: kid.into(),
        alg: "RS256".into(),
        private_pem: format!("pem of {kid}"),
        created_at,
    };
    let keys = [key("k-m", NOW), key("k-a", NOW), key("k-z", NOW - 10)];
    for k in &keys {
        store.insert_signing_key(k).await.unwrap();
    }
    assert_eq!(store.signing_keys().await.unwrap(), keys);
    let err = store
        .insert_signing_key(&key("k-a", NOW + 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    store.delete_signing_key("k-a").await.unwrap();
    store.delete_signing_key("unknown").await.unwrap();
    let newest = key("k-b", NOW + 5);
    store.insert_signing_key(&newest).await.unwrap();
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [keys[0].clone(), keys[2].clone(), newest]
    );
}

#[tokio::test]
async fn prefixes_keep_stores_apart() {
    let (one, server) = store().await;
    let two = RedisStore::connect(&server.url(), "other:").await.unwrap();
    one.insert_code("c", &code("g", "u1", "s1", NOW + 60))
        .await
        .unwrap();
    two.insert_code("c", &code("h", "u1", "s1", NOW + 60))
        .await
        .unwrap();
    one.end_user_access("u1", NOW).await.unwrap();
    assert_eq!(one.redeem_code("c", NOW).await.unwrap(), replay("g"));
    assert!(matches!(
        two.redeem_code("c", NOW).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        one.revoke_reused_family("g", "app", "u1", NOW)
            .await
            .unwrap(),
        0,
        "ended with the user already"
    );
}

#[tokio::test]
async fn requests_fail_fast_during_an_outage_and_recover_after() {
    let (store, mut server) = store().await;
    store
        .insert_code("before", &code("g", "u1", "s1", NOW + 60))
        .await
        .unwrap();

    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let err = store.ping().await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "failed after {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    assert!(store.redeem_code("before", NOW).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));

    server.restart();
    // The first request may still see the old connection fail; the manager then reconnects.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut failures = 0;
    while store.ping().await.is_err() {
        failures += 1;
        assert!(Instant::now() < deadline, "no reconnection after restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failures <= 3, "{failures} failed pings after the restart");
    // Scripts are loaded anew (the restarted server has none cached) and work as before; the
    // data did not survive, as the server persists nothing.
    store
        .insert_code("after", &code("g", "u1", "s1", NOW + 60))
        .await
        .unwrap();
    assert!(matches!(
        store.redeem_code("after", NOW).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        store.redeem_code("before", NOW).await.unwrap(),
        CodeRedemption::Invalid
    );
}

#[tokio::test]
async fn a_hung_server_fails_requests_after_the_response_timeout() {
    let (store, server) = store().await;
    store.ping().await.unwrap();
    let pid = server.child.as_ref().expect("running").id().to_string();
    let signal = |name: &str| {
        let status = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(status.success(), "kill {name}");
    };
    signal("-STOP");
    let started = Instant::now();
    let err = store.ping().await.unwrap_err();
    let waited = started.elapsed();
    signal("-CONT");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        waited < RESPONSE_TIMEOUT + Duration::from_secs(2),
        "{waited:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while store.ping().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "no recovery after the server resumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
