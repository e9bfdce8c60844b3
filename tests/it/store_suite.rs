//! One behaviour suite for every storage backend. Each `async fn` below checks one behaviour of
//! [`Store`] against a fresh store; `backend_suite!` turns the whole list into one `#[tokio::test]`
//! per check for a backend, so every backend is held to exactly the same expected results
//! (the SCIM listings included). Add a backend with one line:
//! `backend_suite!(sqlite, sqlite_store().await);`.
//! The constructor expression yields `(Arc<dyn Store>, guard)`; the guard lives as long as the
//! test (a temp dir, a database to drop).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use serde_json::{json, Value};
use tessera::scim::query::ListParams;
use tessera::scim::schema::{ResourceType, ENTERPRISE_USER_SCHEMA, GROUP_TYPE, USER_TYPE};
use tessera::store::events::Channel;
use tessera::store::query::{Filter, ListQuery};
use tessera::store::*;
use tokio::sync::Barrier;

/// Expands to `mod $backend { #[tokio::test] async fn <check>() { … } … }`, one test per check.
macro_rules! backend_suite {
    (@tests $store:expr; $attr:meta; $($check:ident),+ $(,)?) => {
        $(
            #[$attr]
            async fn $check() {
                let (store, _guard) = $store;
                super::$check(store).await;
            }
        )+
    };
    ($backend:ident, $store:expr) => {
        mod $backend {
            use super::*;

            backend_suite!(@tests $store; tokio::test;
                ping_answers,
                clients_insert_read_and_conflict,
                consents_recorded_and_overwritten,
                code_redeemed_once,
                code_expired_or_unknown_is_invalid,
                tokens_stored_read_and_revoked,
                revoke_grant_ends_the_whole_grant,
                refresh_token_rotation,
                refresh_grace_window_replaces_successor_once,
                grant_tokens_stored_in_one_write,
                grants_of_session_lists_each_grant_once,
                artifacts_upsert_expire_and_delete,
                user_artifacts_lists_the_live_ones_of_a_kind,
                signing_keys_in_insertion_order,
                mfa_enrollment_steps_recovery_and_failures,
                passkeys_belong_to_one_user_and_count_forward,
                purge_removes_expired_rows_in_batches,
                purge_removes_expired_artifacts,
                login_attempts_recorded_listed_and_purged,
                outbox_records_each_change_with_its_event,
                outbox_claims_retries_and_buries_events,
                outbox_keeps_mail_apart_from_audit_events,
                users_insert_read_update_and_conflicts,
                user_deactivation_ends_access,
                user_deletion_ends_access_and_membership,
                groups_insert_read_and_references,
                group_changes_bump_versions,
                scim_user_filters,
                scim_user_sorting_and_paging,
                scim_group_listing,
                value_filters_select_what_the_patch_matcher_selects,
            );
            backend_suite!(@tests $store; tokio::test(flavor = "multi_thread", worker_threads = 4);
                code_redeemed_once_under_concurrency,
                refresh_rotated_once_under_concurrency,
                a_failing_write_fails_alone,
            );
        }
    };
}

backend_suite!(sqlite, sqlite_store().await);
backend_suite!(postgres, postgres_store().await);
backend_suite!(memory, memory_store().await);
backend_suite!(hybrid_redis, hybrid_store().await);
backend_suite!(sqlite_token_cache, sqlite_with_token_cache().await);

/// A fresh database on the run's PostgreSQL server.
async fn postgres_store() -> (Arc<dyn Store>, ()) {
    let url = crate::servers::postgres().database();
    let store = SqlStore::connect(&url, &tessera::Config::default().store.pool)
        .await
        .expect("open the PostgreSQL store");
    (Arc::new(store), ())
}

/// A Redis key prefix no other test uses.
fn redis_prefix() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("suite:{}:{n}:", std::process::id())
}

/// A hybrid store on the run's Redis under a key prefix of its own.
async fn hybrid_store() -> (Arc<dyn Store>, ()) {
    (hybrid_instance(&redis_prefix()).await, ())
}

/// One hybrid instance (its own memory) on the run's Redis under `prefix`.
async fn hybrid_instance(prefix: &str) -> Arc<dyn Store> {
    let redis = RedisStore::connect(&crate::servers::redis().url(), prefix)
        .await
        .expect("connect to Redis");
    Arc::new(
        HybridStore::new(redis)
            .await
            .expect("open the hybrid store"),
    )
}

/// SQLite in this process's memory (`STORE_BACKEND=memory`, and the hybrid backend's directory):
/// shared-cache connections, no WAL, table locks.
async fn memory_store() -> (Arc<dyn Store>, ()) {
    let store = SqlStore::in_memory()
        .await
        .expect("open the in-memory store");
    (Arc::new(store), ())
}

/// Two hybrid instances on one Redis answer like one (finding 7): what either writes to users,
/// groups and consents the other reads at once, one of two writes of the same version or user
/// name wins, and each change's event is recorded once, in the outbox they share.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hybrid_instances_share_one_directory() {
    let prefix = redis_prefix();
    let (a, b) = (
        hybrid_instance(&prefix).await,
        hybrid_instance(&prefix).await,
    );
    let app = Client {
        client_id: "app".into(),
        redirect_uris: vec!["https://app.example/cb".into()],
        grant_types: vec!["authorization_code".into()],
        scope: "openid".into(),
        ..Client::default()
    };
    // Clients are per process (from the seed file on every instance).
    a.insert_client(&app).await.unwrap();
    b.insert_client(&app).await.unwrap();

    a.insert_user(&user("u1", "alice"), UserOrigin::Scim)
        .await
        .unwrap();
    assert_eq!(
        b.user_by_username("ALICE").await.unwrap(),
        Some(user("u1", "alice"))
    );
    b.record_consent("u1", "app", "openid", NOW).await.unwrap();
    assert_eq!(
        a.granted_scope("u1", "app").await.unwrap().as_deref(),
        Some("openid")
    );
    b.insert_group(&group("g1", "pilots", &["u1"]))
        .await
        .unwrap();
    let on_a = a.group("g1").await.unwrap().expect("the group B made");
    assert_eq!(on_a.members[0].user_id, "u1");

    // The same version written on both at once: exactly one is done.
    let stored = a.user("u1").await.unwrap().unwrap();
    let renamed = |name: &str| User {
        attributes: attributes(json!({"displayName": name})),
        version: stored.version + 1,
        ..stored.clone()
    };
    let (as_a, as_b) = (renamed("A"), renamed("B"));
    let (on_a, on_b) = tokio::join!(
        a.update_user(&as_a, stored.version, NOW + 1),
        b.update_user(&as_b, stored.version, NOW + 1),
    );
    let mut outcomes = [on_a.unwrap(), on_b.unwrap()].map(|o| format!("{o:?}"));
    outcomes.sort();
    assert_eq!(outcomes, ["Done", "Stale"]);
    assert_eq!(a.user("u1").await.unwrap(), b.user("u1").await.unwrap());

    // One user name, taken on both at once: one of them gets it.
    let (bob_a, bob_b) = (user("u2", "bob"), user("u3", "BOB"));
    let (on_a, on_b) = tokio::join!(
        a.insert_user(&bob_a, UserOrigin::Scim),
        b.insert_user(&bob_b, UserOrigin::Scim)
    );
    assert_eq!([&on_a, &on_b].iter().filter(|r| r.is_ok()).count(), 1);
    let bob = a.user_by_username("bob").await.unwrap().unwrap();
    assert_eq!(b.user_by_username("bob").await.unwrap().unwrap().id, bob.id);

    a.record_consent(&bob.id, "app", "openid profile", NOW + 2)
        .await
        .unwrap();

    // A passkey registered through A is B's to check, and one use of its counter counts once.
    let passkey = PasskeyRecord {
        credential_id: "c1".into(),
        user_id: "u1".into(),
        name: "Laptop".into(),
        credential: "{}".into(),
        sign_count: 1,
        created_at: NOW,
        last_used_at: None,
    };
    a.insert_passkey(&passkey).await.unwrap();
    assert_eq!(b.passkeys("u1").await.unwrap(), [passkey]);
    assert!(b.use_passkey("c1", "{}", 2, NOW + 1).await.unwrap());
    assert!(
        !a.use_passkey("c1", "{}", 2, NOW + 1).await.unwrap(),
        "the same counter"
    );

    // Deleted on B, gone on A with its membership and consent.
    assert!(b.delete_user("u1", NOW + 2).await.unwrap());
    assert_eq!(a.user("u1").await.unwrap(), None);
    assert_eq!(a.granted_scope("u1", "app").await.unwrap(), None);
    assert!(a.group("g1").await.unwrap().unwrap().members.is_empty());

    // A third instance started now replays everything, consents too before it has loaded any
    // client (clients are each process's own). The outbox is shared: C, which changed nothing,
    // claims every change's event, each once, in the order they happened; A and B find them
    // leased.
    let c = hybrid_instance(&prefix).await;
    assert_eq!(c.user_by_username("bob").await.unwrap().unwrap().id, bob.id);
    let granted = c.granted_scope(&bob.id, "app").await.unwrap();
    assert_eq!(granted.as_deref(), Some("openid profile"));
    let kinds = |events: Vec<events::OutboxEvent>| {
        events
            .into_iter()
            .map(|e| e.event.kind.name().to_string())
            .collect::<Vec<_>>()
    };
    let on_c = kinds(
        c.claim_events(Channel::Webhooks, NOW + 10, NOW + 20, 100)
            .await
            .unwrap(),
    );
    let count = |kind: &str| on_c.iter().filter(|k| *k == kind).count();
    assert_eq!(count("user.created"), 2, "alice and one bob: {on_c:?}");
    assert_eq!(
        (
            count("group.created"),
            count("user.updated"),
            count("user.deleted")
        ),
        (1, 1, 1),
        "{on_c:?}"
    );
    assert_eq!(on_c.first().map(String::as_str), Some("user.created"));
    assert_eq!(on_c.last().map(String::as_str), Some("user.deleted"));
    for other in [&a, &b] {
        let leased = other
            .claim_events(Channel::Webhooks, NOW + 10, NOW + 20, 100)
            .await
            .unwrap();
        assert!(leased.is_empty(), "claimed twice: {leased:?}");
    }

    // Redis loses the log (a restart without persistence): a fresh instance starts a new one,
    // and an instance that applied the old one refuses to go on rather than diverge.
    let mut conn = redis_connection(&crate::servers::redis().url())
        .await
        .unwrap();
    redis::cmd("DEL")
        .arg(format!("{prefix}directory"))
        .arg(format!("{prefix}directory-epoch"))
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let fresh = hybrid_instance(&prefix).await;
    fresh
        .insert_user(&user("u9", "zed"), UserOrigin::Scim)
        .await
        .unwrap();
    let err = a.user("u9").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

/// A SQLite store in its own temp dir (the guard).
async fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let (store, dir) = open_sqlite().await;
    (Arc::new(store), dir)
}

/// A SQLite store whose access-token lookups go through a Redis cache.
async fn sqlite_with_token_cache() -> (Arc<dyn Store>, tempfile::TempDir) {
    let (store, dir) = open_sqlite().await;
    let ttl = std::time::Duration::from_secs(600);
    let cache = TokenCache::connect(&crate::servers::redis().url(), &redis_prefix(), ttl)
        .await
        .expect("connect to Redis");
    (Arc::new(store.with_token_cache(cache)), dir)
}

async fn open_sqlite() -> (SqlStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("store.db").display()
    );
    let store = SqlStore::connect(&url, &tessera::Config::default().store.pool)
        .await
        .expect("open the SQLite store");
    (store, dir)
}

/// User names stored by an older Tessera (lowercased, not folded by RFC 8265) are re-keyed once
/// at start-up, on both SQL backends; one whose folded form another user holds keeps its key.
#[tokio::test]
async fn sqlite_user_names_stored_before_rfc_8265_are_rekeyed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("store.db").display()
    );
    user_names_are_rekeyed(&url).await;
}

#[tokio::test]
async fn postgres_user_names_stored_before_rfc_8265_are_rekeyed() {
    user_names_are_rekeyed(&crate::servers::postgres().database()).await;
}

async fn user_names_are_rekeyed(url: &str) {
    let settings = tessera::Config::default().store.pool;
    let connect = || SqlStore::connect(url, &settings);
    let store = connect().await.unwrap();
    for (id, name) in [("u1", "legacy-1"), ("u2", "legacy-2"), ("u3", "ada")] {
        store
            .insert_user(&user(id, name), UserOrigin::Scim)
            .await
            .unwrap();
    }
    drop(store);
    let database = sqlx::AnyPool::connect(url).await.unwrap();
    // Full-width letters, as an older Tessera keyed them.
    for (id, name) in [("u1", "\u{ff2a}OSE"), ("u2", "\u{ff21}DA")] {
        sqlx::query("UPDATE users SET username = $1, username_normalized = $2 WHERE id = $3")
            .bind(name)
            .bind(name.to_lowercase())
            .bind(id)
            .execute(&database)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM data_migrations")
        .execute(&database)
        .await
        .unwrap();

    let store = connect().await.unwrap();
    let found = |name: &'static str| {
        let store = &store;
        async move { store.user_by_username(name).await.unwrap().map(|u| u.id) }
    };
    assert_eq!(found("jose").await.as_deref(), Some("u1"), "re-keyed");
    assert_eq!(found("JOSE").await.as_deref(), Some("u1"));
    assert_eq!(found("ada").await.as_deref(), Some("u3"), "not merged");
    let kept = store.user("u2").await.unwrap().expect("kept");
    assert_eq!(kept.username, "\u{ff21}DA");
    let key: String = sqlx::query_scalar("SELECT username_normalized FROM users WHERE id = 'u2'")
        .fetch_one(&database)
        .await
        .unwrap();
    assert_eq!(key, "\u{ff41}da", "its old key, for an operator to rename");
    database.close().await;
}

// ---------------------------------------------------------------------------------------------
// Fixtures

const NOW: UnixTime = 1_800_000_000;
const HOUR: UnixTime = 3600;

fn attributes(value: Value) -> Attributes {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn user(id: &str, username: &str) -> User {
    User {
        id: id.into(),
        username: username.into(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        active: true,
        // Round-trips on every backend with the rest of the record.
        verified_email: Some(format!("{username}@example.com")),
        attributes: attributes(json!({
            "name": {"givenName": username},
            "emails": [{"value": format!("{username}@example.com"), "primary": true}],
        })),
        version: 1,
        created_at: NOW,
        updated_at: NOW,
    }
}

fn code(grant_id: &str, user_id: &str, session_id: &str, expires_at: UnixTime) -> AuthCode {
    AuthCode {
        grant_id: grant_id.into(),
        client_id: "app".into(),
        user_id: user_id.into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: "openid profile".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        session_id: session_id.into(),
        auth_time: NOW - 60,
        acr: "urn:tessera:acr:mfa".into(),
        amr: vec!["pwd".into(), "otp".into()],
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
        amr: user_id.map_or_else(Vec::new, |_| vec!["pwd".into()]),
        auth_time: user_id.map(|_| NOW - 60),
        issued_at: NOW - 10,
        expires_at,
        revoked: false,
    }
}

fn refresh(
    hash: &str,
    family: &str,
    user_id: &str,
    session: Option<&str>,
    expires_at: UnixTime,
) -> RefreshTokenRecord {
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
        expires_at,
        rotated_at: None,
        replaced_by: None,
        grace_used: false,
        revoked: false,
    }
}

fn group(id: &str, name: &str, members: &[&str]) -> Group {
    Group {
        id: id.into(),
        display_name: name.into(),
        members: members
            .iter()
            .map(|m| Member {
                user_id: m.to_string(),
                display: String::new(),
            })
            .collect(),
        attributes: attributes(json!({"externalId": format!("ext-{id}")})),
        version: 1,
        created_at: NOW,
        updated_at: NOW,
    }
}

/// A group's members as (user id, display) pairs; member order is not part of the contract.
fn members(group: &Group) -> BTreeSet<(String, String)> {
    group
        .members
        .iter()
        .map(|m| (m.user_id.clone(), m.display.clone()))
        .collect()
}

async fn version_of(store: &Arc<dyn Store>, user_id: &str) -> i64 {
    store.user(user_id).await.unwrap().expect("user").version
}

async fn token_revoked(store: &Arc<dyn Store>, hash: &str) -> bool {
    store
        .token_by_hash(hash)
        .await
        .unwrap()
        .expect("token")
        .revoked
}

async fn refresh_revoked(store: &Arc<dyn Store>, hash: &str) -> bool {
    store
        .refresh_token(hash)
        .await
        .unwrap()
        .expect("refresh token")
        .revoked
}

fn already_redeemed(grant_id: &str) -> CodeRedemption {
    CodeRedemption::AlreadyRedeemed {
        grant_id: grant_id.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Clients, consents

async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.expect("a fresh store answers ping");
}

async fn clients_insert_read_and_conflict(store: Arc<dyn Store>) {
    let confidential = Client {
        client_id: "app".into(),
        secret_hash: Some("c2VjcmV0".into()),
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "https://app.example/cb2".into(),
        ],
        post_logout_redirect_uris: vec!["https://app.example/bye".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scope: "openid profile email".into(),
        id_token_signed_response_alg: "ES256".into(),
        require_mfa: true,
        require_phishing_resistant: true,
        skip_consent: false,
        resource_servers: vec!["https://api.example/".into()],
        access_token_seconds: Some(120),
        refresh_token_seconds: Some(86_400),
    };
    let public = Client {
        client_id: "spa".into(),
        secret_hash: None,
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec!["authorization_code".into()],
        scope: "openid".into(),
        id_token_signed_response_alg: "RS256".into(),
        require_mfa: false,
        skip_consent: true,
        ..Client::default()
    };
    store.insert_client(&confidential).await.unwrap();
    store.insert_client(&public).await.unwrap();
    assert_eq!(
        store.client("app").await.unwrap(),
        Some(confidential.clone())
    );
    assert_eq!(store.client("spa").await.unwrap(), Some(public));
    assert_eq!(
        store.client("APP").await.unwrap(),
        None,
        "client ids are exact"
    );
    assert_eq!(store.client("nope").await.unwrap(), None);

    let again = Client {
        scope: "openid".into(),
        ..confidential.clone()
    };
    let err = store.insert_client(&again).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.client("app").await.unwrap(), Some(confidential));
}

async fn consents_recorded_and_overwritten(store: Arc<dyn Store>) {
    store
        .insert_user(&user("u1", "alice"), UserOrigin::Scim)
        .await
        .unwrap();
    for client_id in ["app", "other"] {
        let client = Client {
            client_id: client_id.into(),
            secret_hash: None,
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: Vec::new(),
            grant_types: vec!["authorization_code".into()],
            scope: "openid profile email".into(),
            id_token_signed_response_alg: "RS256".into(),
            require_mfa: false,
            skip_consent: false,
            ..Client::default()
        };
        store.insert_client(&client).await.unwrap();
    }
    assert_eq!(store.granted_scope("u1", "app").await.unwrap(), None);
    store
        .record_consent("u1", "app", "openid", NOW)
        .await
        .unwrap();
    assert_eq!(
        store.granted_scope("u1", "app").await.unwrap().as_deref(),
        Some("openid")
    );
    store
        .record_consent("u1", "app", "openid profile", NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store.granted_scope("u1", "app").await.unwrap().as_deref(),
        Some("openid profile"),
        "a new consent replaces the old one"
    );
    assert_eq!(store.granted_scope("u1", "other").await.unwrap(), None);
    assert_eq!(store.granted_scope("u2", "app").await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Authorization codes

async fn code_redeemed_once(store: Arc<dyn Store>) {
    let with_nonce = code("g1", "u1", "s1", NOW + 60);
    let without_nonce = AuthCode {
        nonce: None,
        amr: Vec::new(),
        ..code("g2", "u1", "s1", NOW + 60)
    };
    store.insert_code("c1", &with_nonce).await.unwrap();
    store.insert_code("c2", &without_nonce).await.unwrap();

    assert_eq!(
        store.redeem_code("c1", NOW).await.unwrap(),
        CodeRedemption::Redeemed(Box::new(with_nonce))
    );
    assert_eq!(
        store.redeem_code("c1", NOW + 1).await.unwrap(),
        already_redeemed("g1")
    );
    assert_eq!(
        store.redeem_code("c1", NOW + 2).await.unwrap(),
        already_redeemed("g1"),
        "every replay is reported"
    );
    assert_eq!(
        store.redeem_code("c2", NOW).await.unwrap(),
        CodeRedemption::Redeemed(Box::new(without_nonce))
    );
}

async fn code_redeemed_once_under_concurrency(store: Arc<dyn Store>) {
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
            other => assert_eq!(other, already_redeemed("g1")),
        }
    }
    assert_eq!(redeemed, 1, "exactly one concurrent redemption wins");
}

async fn code_expired_or_unknown_is_invalid(store: Arc<dyn Store>) {
    store
        .insert_code("at-expiry", &code("g1", "u1", "s1", NOW))
        .await
        .unwrap();
    store
        .insert_code("before-expiry", &code("g2", "u1", "s1", NOW + 1))
        .await
        .unwrap();
    assert_eq!(
        store.redeem_code("at-expiry", NOW).await.unwrap(),
        CodeRedemption::Invalid,
        "a code is dead at its expiry time"
    );
    assert_eq!(
        store.redeem_code("at-expiry", NOW + 5).await.unwrap(),
        CodeRedemption::Invalid,
        "a failed redemption does not count as a use"
    );
    assert!(matches!(
        store.redeem_code("before-expiry", NOW).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        store.redeem_code("unknown", NOW).await.unwrap(),
        CodeRedemption::Invalid
    );
}

// ---------------------------------------------------------------------------------------------
// Access tokens and grants

async fn tokens_stored_read_and_revoked(store: Arc<dyn Store>) {
    let user_token = access("t1", "g1", Some("u1"), NOW + HOUR);
    // A client-credentials token: no user, no authentication context.
    let client_token = access("t2", "g2", None, NOW + HOUR);
    store.insert_token(&user_token).await.unwrap();
    store.insert_token(&client_token).await.unwrap();
    assert_eq!(store.token_by_hash("t1").await.unwrap(), Some(user_token));
    assert_eq!(
        store.token_by_hash("t2").await.unwrap(),
        Some(client_token.clone())
    );
    assert_eq!(store.token_by_hash("unknown").await.unwrap(), None);

    store.revoke_token("t1", NOW).await.unwrap();
    assert!(token_revoked(&store, "t1").await);
    assert_eq!(
        store.token_by_hash("t2").await.unwrap(),
        Some(client_token),
        "revoking one token leaves the others"
    );
    store.revoke_token("t1", NOW + 1).await.unwrap();
    assert!(
        token_revoked(&store, "t1").await,
        "revoking twice is harmless"
    );
    store.revoke_token("unknown", NOW).await.unwrap();
}

async fn revoke_grant_ends_the_whole_grant(store: Arc<dyn Store>) {
    // Grant g: two access tokens (one already revoked), two refresh tokens, a redeemed and an
    // unredeemed code. Grant h is a bystander.
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
    store
        .insert_token(&access("g-a1", "g", Some("u1"), NOW + HOUR))
        .await
        .unwrap();
    store
        .insert_token(&access("g-a2", "g", Some("u1"), NOW + HOUR))
        .await
        .unwrap();
    store.revoke_token("g-a2", NOW - 1).await.unwrap();
    store
        .insert_refresh_token(&refresh("g-r1", "g", "u1", Some("s1"), NOW + HOUR))
        .await
        .unwrap();
    let rotated = store
        .rotate_refresh_token(
            "g-r1",
            &refresh("g-r2", "g", "u1", Some("s1"), NOW + HOUR),
            NOW - 1,
        )
        .await
        .unwrap();
    assert_eq!(rotated, Rotation::Rotated);
    store
        .insert_code("h-fresh", &code("h", "u1", "s1", NOW + 60))
        .await
        .unwrap();
    store
        .insert_token(&access("h-a1", "h", Some("u1"), NOW + HOUR))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("h-r1", "h", "u1", Some("s1"), NOW + HOUR))
        .await
        .unwrap();

    // g-a1, g-r1, g-r2 and the unredeemed code. (Reading g-a1 first puts it in a token cache.)
    assert!(!token_revoked(&store, "g-a1").await);
    assert_eq!(store.revoke_grant("g", NOW).await.unwrap(), 4);
    assert!(token_revoked(&store, "g-a1").await);
    assert!(token_revoked(&store, "g-a2").await);
    assert!(refresh_revoked(&store, "g-r1").await);
    assert!(refresh_revoked(&store, "g-r2").await);
    assert_eq!(
        store.redeem_code("g-fresh", NOW).await.unwrap(),
        already_redeemed("g"),
        "a code of a revoked grant redeemed later is a replay"
    );
    assert_eq!(
        store.redeem_code("g-used", NOW).await.unwrap(),
        already_redeemed("g")
    );
    let rotation = store
        .rotate_refresh_token("g-r2", &refresh("g-r3", "g", "u1", None, NOW + HOUR), NOW)
        .await
        .unwrap();
    assert_eq!(
        rotation,
        Rotation::Lost,
        "a revoked refresh token cannot rotate"
    );

    assert!(!token_revoked(&store, "h-a1").await);
    assert!(!refresh_revoked(&store, "h-r1").await);
    assert!(matches!(
        store.redeem_code("h-fresh", NOW).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));

    assert_eq!(
        store.revoke_grant("g", NOW + 1).await.unwrap(),
        0,
        "nothing left to revoke"
    );
    assert_eq!(store.revoke_grant("unknown", NOW).await.unwrap(), 0);

    // Reuse detection revokes the same way (h's code was redeemed above); a dead family again
    // revokes nothing.
    assert_eq!(
        store
            .revoke_reused_family("h", "app", "u1", NOW + 2)
            .await
            .unwrap(),
        2
    );
    assert!(token_revoked(&store, "h-a1").await);
    assert!(refresh_revoked(&store, "h-r1").await);
    assert_eq!(
        store
            .revoke_reused_family("h", "app", "u1", NOW + 3)
            .await
            .unwrap(),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// Refresh tokens

async fn refresh_token_rotation(store: Arc<dyn Store>) {
    let r0 = refresh("r0", "fam", "u1", Some("s1"), NOW + HOUR);
    store.insert_refresh_token(&r0).await.unwrap();
    assert_eq!(store.refresh_token("r0").await.unwrap(), Some(r0.clone()));
    assert_eq!(store.refresh_token("unknown").await.unwrap(), None);

    let r1 = RefreshTokenRecord {
        issued_at: NOW,
        session_id: None,
        ..refresh("r1", "fam", "u1", None, NOW + 2 * HOUR)
    };
    assert_eq!(
        store.rotate_refresh_token("r0", &r1, NOW).await.unwrap(),
        Rotation::Rotated
    );
    assert_eq!(
        store.refresh_token("r0").await.unwrap(),
        Some(RefreshTokenRecord {
            rotated_at: Some(NOW),
            replaced_by: Some("r1".into()),
            ..r0
        })
    );
    assert_eq!(store.refresh_token("r1").await.unwrap(), Some(r1.clone()));

    let loser = refresh("r1-bis", "fam", "u1", None, NOW + 2 * HOUR);
    assert_eq!(
        store
            .rotate_refresh_token("r0", &loser, NOW + 1)
            .await
            .unwrap(),
        Rotation::Lost,
        "a rotated token cannot rotate again"
    );
    assert_eq!(
        store.refresh_token("r1-bis").await.unwrap(),
        None,
        "Lost writes nothing"
    );

    let r2 = refresh("r2", "fam", "u1", None, NOW + 3 * HOUR);
    assert_eq!(
        store
            .rotate_refresh_token("r1", &r2, NOW + 3)
            .await
            .unwrap(),
        Rotation::Rotated
    );

    // Revoked, expired and unknown tokens lose.
    store
        .insert_refresh_token(&refresh("rv", "fam-v", "u1", None, NOW + HOUR))
        .await
        .unwrap();
    store.revoke_grant("fam-v", NOW).await.unwrap();
    let expired = refresh("rx", "fam-x", "u1", None, NOW);
    store.insert_refresh_token(&expired).await.unwrap();
    for old in ["rv", "rx", "unknown"] {
        let new = refresh(&format!("{old}-next"), "fam-z", "u1", None, NOW + HOUR);
        assert_eq!(
            store.rotate_refresh_token(old, &new, NOW).await.unwrap(),
            Rotation::Lost,
            "{old}"
        );
        assert_eq!(store.refresh_token(&new.token_hash).await.unwrap(), None);
    }
    assert_eq!(
        store.refresh_token("rx").await.unwrap(),
        Some(expired),
        "a failed rotation leaves the token as it was"
    );
}

async fn refresh_rotated_once_under_concurrency(store: Arc<dyn Store>) {
    store
        .insert_refresh_token(&refresh("old", "fam", "u1", None, NOW + HOUR))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let new = refresh(&format!("new-{i}"), "fam", "u1", None, NOW + HOUR);
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
        match rotation {
            Rotation::Rotated => {
                assert!(stored.is_some());
                winners.push(hash);
            }
            Rotation::Lost => assert_eq!(stored, None, "a loser's successor is not stored"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one concurrent rotation wins");
    let old = store.refresh_token("old").await.unwrap().unwrap();
    assert_eq!(old.replaced_by.as_ref(), Some(&winners[0]));
    assert_eq!(old.rotated_at, Some(NOW));
}

/// Token-endpoint writes of every kind arrive together, as a burst of requests does (on SQLite
/// they share one group commit), and one of them breaks a unique key: it fails, and only it.
async fn a_failing_write_fails_alone(store: Arc<dyn Store>) {
    store
        .insert_token(&access("taken", "g0", None, NOW + HOUR))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("r-old", "fam", "u1", None, NOW + HOUR))
        .await
        .unwrap();
    store
        .insert_code("c1", &code("g1", "u1", "s1", NOW + 60))
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(12));
    let spawn_write = |write: std::pin::Pin<Box<dyn Future<Output = bool> + Send>>| {
        let barrier = barrier.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            write.await
        })
    };
    let mut writes = Vec::new();
    for i in 0..9 {
        let store = store.clone();
        let token = access(&format!("t{i}"), &format!("g-{i}"), None, NOW + HOUR);
        writes.push(spawn_write(Box::pin(async move {
            store.insert_token(&token).await.is_ok()
        })));
    }
    let duplicate = {
        let store = store.clone();
        spawn_write(Box::pin(async move {
            let token = access("taken", "g-dup", None, NOW + HOUR);
            store.insert_token(&token).await.is_ok()
        }))
    };
    let rotation = {
        let store = store.clone();
        spawn_write(Box::pin(async move {
            let new = refresh("r-new", "fam", "u1", None, NOW + HOUR);
            store
                .rotate_refresh_token("r-old", &new, NOW)
                .await
                .unwrap()
                == Rotation::Rotated
        }))
    };
    let redemption = {
        let store = store.clone();
        spawn_write(Box::pin(async move {
            matches!(
                store.redeem_code("c1", NOW).await.unwrap(),
                CodeRedemption::Redeemed(_)
            )
        }))
    };
    assert!(
        !duplicate.await.unwrap(),
        "a second token with a taken hash is refused"
    );
    assert!(rotation.await.unwrap(), "the rotation beside it happens");
    assert!(
        redemption.await.unwrap(),
        "the redemption beside it happens"
    );
    for (i, write) in writes.into_iter().enumerate() {
        assert!(write.await.unwrap(), "token t{i} is stored");
        assert!(store
            .token_by_hash(&format!("t{i}"))
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(
        store
            .token_by_hash("taken")
            .await
            .unwrap()
            .unwrap()
            .grant_id,
        "g0",
        "the refused write changed nothing"
    );
    assert!(store.refresh_token("r-new").await.unwrap().is_some());
}

/// The token endpoint's combined writes: a new grant's tokens, and a rotation with its access
/// token, which is stored only if the rotation wins.
async fn grant_tokens_stored_in_one_write(store: Arc<dyn Store>) {
    let first = refresh("r1", "fam", "u1", None, NOW + HOUR);
    store
        .issue_tokens(&access("a1", "fam", Some("u1"), NOW + HOUR), Some(&first))
        .await
        .unwrap();
    store
        .issue_tokens(&access("a-alone", "g2", Some("u1"), NOW + HOUR), None)
        .await
        .unwrap();
    assert!(store.token_by_hash("a1").await.unwrap().is_some());
    assert!(store.token_by_hash("a-alone").await.unwrap().is_some());
    assert_eq!(store.refresh_token("r1").await.unwrap(), Some(first));

    let second = refresh("r2", "fam", "u1", None, NOW + HOUR);
    let rotation = store
        .rotate_and_issue(
            "r1",
            &second,
            &access("a2", "fam", Some("u1"), NOW + HOUR),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(rotation, Rotation::Rotated);
    assert!(store.token_by_hash("a2").await.unwrap().is_some());
    assert_eq!(
        store
            .refresh_token("r1")
            .await
            .unwrap()
            .unwrap()
            .replaced_by
            .as_deref(),
        Some("r2")
    );

    let late = refresh("r2-late", "fam", "u1", None, NOW + HOUR);
    let rotation = store
        .rotate_and_issue(
            "r1",
            &late,
            &access("a-late", "fam", Some("u1"), NOW + HOUR),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(rotation, Rotation::Lost);
    assert_eq!(
        store.token_by_hash("a-late").await.unwrap(),
        None,
        "a lost rotation stores no access token"
    );
    assert_eq!(store.refresh_token("r2-late").await.unwrap(), None);
}

/// Inserts `old` and rotates it into `new` at `at`.
async fn rotated_pair(store: &Arc<dyn Store>, old: &str, new: &str, family: &str, at: UnixTime) {
    store
        .insert_refresh_token(&refresh(old, family, "u1", None, NOW + HOUR))
        .await
        .unwrap();
    let next = refresh(new, family, "u1", None, NOW + HOUR);
    assert_eq!(
        store.rotate_refresh_token(old, &next, at).await.unwrap(),
        Rotation::Rotated
    );
}

async fn refresh_grace_window_replaces_successor_once(store: Arc<dyn Store>) {
    // a → b at NOW; the client never got b and retries a within the window.
    rotated_pair(&store, "a", "b", "fam-a", NOW).await;
    let c = refresh("c", "fam-a", "u1", None, NOW + 2 * HOUR);
    assert_eq!(
        store
            .replace_successor("a", NOW - 30, &c, NOW + 5)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    assert!(
        refresh_revoked(&store, "b").await,
        "the unused successor is revoked"
    );
    assert_eq!(store.refresh_token("c").await.unwrap(), Some(c));
    let a = store.refresh_token("a").await.unwrap().unwrap();
    assert_eq!(a.replaced_by.as_deref(), Some("c"));
    assert!(a.grace_used);
    assert!(!a.revoked);
    // Once per token.
    let d = refresh("d", "fam-a", "u1", None, NOW + 2 * HOUR);
    assert_eq!(
        store
            .replace_successor("a", NOW - 30, &d, NOW + 6)
            .await
            .unwrap(),
        Rotation::Lost
    );
    assert_eq!(store.refresh_token("d").await.unwrap(), None);
    assert!(!refresh_revoked(&store, "c").await);

    // Rotated before the window opened.
    rotated_pair(&store, "e", "f", "fam-e", NOW).await;
    let g = refresh("g", "fam-e", "u1", None, NOW + HOUR);
    assert_eq!(
        store
            .replace_successor("e", NOW + 1, &g, NOW + 5)
            .await
            .unwrap(),
        Rotation::Lost
    );
    assert!(!refresh_revoked(&store, "f").await);
    assert_eq!(store.refresh_token("g").await.unwrap(), None);
    // The window includes its start.
    assert_eq!(
        store
            .replace_successor("e", NOW, &g, NOW + 5)
            .await
            .unwrap(),
        Rotation::Rotated
    );

    // The successor was used already.
    rotated_pair(&store, "h", "i", "fam-h", NOW).await;
    let j = refresh("j", "fam-h", "u1", None, NOW + HOUR);
    assert_eq!(
        store.rotate_refresh_token("i", &j, NOW + 1).await.unwrap(),
        Rotation::Rotated
    );
    let k = refresh("k", "fam-h", "u1", None, NOW + HOUR);
    assert_eq!(
        store
            .replace_successor("h", NOW - 30, &k, NOW + 2)
            .await
            .unwrap(),
        Rotation::Lost
    );
    assert!(!refresh_revoked(&store, "j").await);
    assert_eq!(store.refresh_token("k").await.unwrap(), None);

    // Never rotated, revoked, unknown.
    store
        .insert_refresh_token(&refresh("l", "fam-l", "u1", None, NOW + HOUR))
        .await
        .unwrap();
    rotated_pair(&store, "n", "o", "fam-n", NOW).await;
    store.revoke_grant("fam-n", NOW + 1).await.unwrap();
    for old in ["l", "n", "unknown"] {
        let new = refresh(&format!("{old}-next"), "fam-z", "u1", None, NOW + HOUR);
        assert_eq!(
            store
                .replace_successor(old, 0, &new, NOW + 2)
                .await
                .unwrap(),
            Rotation::Lost,
            "{old}"
        );
        assert_eq!(store.refresh_token(&new.token_hash).await.unwrap(), None);
    }
}

async fn grants_of_session_lists_each_grant_once(store: Arc<dyn Store>) {
    // g1 through a code and a refresh token, g2 through a refresh token only, g3 elsewhere.
    store
        .insert_code("c1", &code("g1", "u1", "s1", NOW + 60))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("r1", "g1", "u1", Some("s1"), NOW + HOUR))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("r2", "g2", "u1", Some("s1"), NOW + HOUR))
        .await
        .unwrap();
    store
        .insert_code("c3", &code("g3", "u1", "s2", NOW + 60))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("r4", "g4", "u1", None, NOW + HOUR))
        .await
        .unwrap();
    let sorted = |mut grants: Vec<String>| {
        grants.sort();
        grants
    };
    assert_eq!(
        sorted(store.grants_of_session("s1").await.unwrap()),
        ["g1", "g2"]
    );
    assert_eq!(store.grants_of_session("s2").await.unwrap(), ["g3"]);
    assert!(store.grants_of_session("s3").await.unwrap().is_empty());

    // The user's grants that still hold a refresh token, each once: g2 after a rotation too,
    // g4 without a session; not g1 once revoked, nor another user's g5.
    store
        .rotate_refresh_token(
            "r2",
            &refresh("r3", "g2", "u1", Some("s1"), NOW + HOUR),
            NOW,
        )
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh("r5", "g5", "u2", Some("s9"), NOW + HOUR))
        .await
        .unwrap();
    store.revoke_grant("g1", NOW).await.unwrap();
    assert_eq!(
        store.refresh_grants_of_user("u1").await.unwrap(),
        [
            ("g2".to_string(), Some("s1".to_string())),
            ("g4".to_string(), None)
        ]
    );
    assert!(store
        .refresh_grants_of_user("nobody")
        .await
        .unwrap()
        .is_empty());
}

// ---------------------------------------------------------------------------------------------
// Artifacts, signing keys

async fn artifacts_upsert_expire_and_delete(store: Arc<dyn Store>) {
    use ArtifactKind::{Interaction, Session};
    store
        .insert_user(&user("u1", "alice"), UserOrigin::Scim)
        .await
        .unwrap();
    store
        .put_artifact(Session, "id1", Some("u1"), "session-1", NOW + 100)
        .await
        .unwrap();
    assert_eq!(
        store
            .artifact(Session, "id1", NOW)
            .await
            .unwrap()
            .as_deref(),
        Some("session-1")
    );
    assert_eq!(
        store.artifact(Interaction, "id1", NOW).await.unwrap(),
        None,
        "kinds are separate"
    );
    store
        .put_artifact(Interaction, "id1", None, "interaction-1", NOW + 100)
        .await
        .unwrap();
    assert_eq!(
        store
            .artifact(Interaction, "id1", NOW)
            .await
            .unwrap()
            .as_deref(),
        Some("interaction-1")
    );

    // Upsert replaces payload and expiry.
    store
        .put_artifact(Session, "id1", Some("u1"), "session-2", NOW + 200)
        .await
        .unwrap();
    assert_eq!(
        store
            .artifact(Session, "id1", NOW + 150)
            .await
            .unwrap()
            .as_deref(),
        Some("session-2")
    );
    assert_eq!(
        store
            .artifact(Session, "id1", NOW + 199)
            .await
            .unwrap()
            .as_deref(),
        Some("session-2")
    );
    assert_eq!(
        store.artifact(Session, "id1", NOW + 200).await.unwrap(),
        None,
        "an artifact is gone at its expiry time"
    );

    assert!(store.delete_artifact(Session, "id1").await.unwrap());
    assert_eq!(store.artifact(Session, "id1", NOW).await.unwrap(), None);
    assert!(!store.delete_artifact(Session, "id1").await.unwrap());
    assert!(!store.delete_artifact(Session, "unknown").await.unwrap());
    assert_eq!(
        store
            .artifact(Interaction, "id1", NOW)
            .await
            .unwrap()
            .as_deref(),
        Some("interaction-1"),
        "deleting one kind leaves the other"
    );
}

async fn user_artifacts_lists_the_live_ones_of_a_kind(store: Arc<dyn Store>) {
    use ArtifactKind::{Interaction, Session};
    for (kind, id, user, expires_at) in [
        (Session, "s-b", Some("u1"), NOW + HOUR),
        (Session, "s-a", Some("u1"), NOW + HOUR),
        (Session, "s-expired", Some("u1"), NOW - 1),
        (Session, "s-other", Some("u2"), NOW + HOUR),
        (Session, "s-anonymous", None, NOW + HOUR),
        (Interaction, "i-1", Some("u1"), NOW + HOUR),
    ] {
        store
            .put_artifact(kind, id, user, &format!("payload-{id}"), expires_at)
            .await
            .unwrap();
    }
    let listed = |kind, user: &'static str| {
        let store = store.clone();
        async move { store.user_artifacts(kind, user, NOW).await.unwrap() }
    };
    let pair = |id: &str, payload: &str| (id.to_string(), payload.to_string());
    assert_eq!(
        listed(Session, "u1").await,
        [pair("s-a", "payload-s-a"), pair("s-b", "payload-s-b")]
    );
    assert_eq!(
        listed(Interaction, "u1").await,
        [pair("i-1", "payload-i-1")]
    );
    assert!(listed(Session, "nobody").await.is_empty());

    assert!(store.delete_artifact(Session, "s-a").await.unwrap());
    // Re-putting an artifact for another user moves it.
    store
        .put_artifact(Session, "s-b", Some("u2"), "moved", NOW + HOUR)
        .await
        .unwrap();
    assert!(listed(Session, "u1").await.is_empty());
    assert_eq!(
        listed(Session, "u2").await,
        [pair("s-b", "moved"), pair("s-other", "payload-s-other")]
    );
}

async fn signing_keys_in_insertion_order(store: Arc<dyn Store>) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    let key = |kid: &str, alg: &str, created_at| SigningKeyRecord {
        kid: kid.into(),
        alg: alg.into(),
        private_pem: format!("-----BEGIN PRIVATE KEY-----\n{kid}\n-----END PRIVATE KEY-----\n"),
        created_at,
    };
    // Neither kid nor created_at order: insertion order.
    let keys = [
        key("k-m", "RS256", NOW),
        key("k-a", "ES256", NOW),
        key("k-z", "EdDSA", NOW - 10),
    ];
    for k in &keys {
        store.insert_signing_key(k).await.unwrap();
    }
    assert_eq!(store.signing_keys().await.unwrap(), keys);

    let err = store
        .insert_signing_key(&key("k-a", "RS256", NOW + 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.signing_keys().await.unwrap(), keys);

    store.delete_signing_key("k-a").await.unwrap();
    store.delete_signing_key("unknown").await.unwrap();
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [keys[0].clone(), keys[2].clone()]
    );
    let newest = key("k-b", "RS256", NOW + 5);
    store.insert_signing_key(&newest).await.unwrap();
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [keys[0].clone(), keys[2].clone(), newest]
    );
}

// ---------------------------------------------------------------------------------------------
// MFA

/// A credential id is registered once, to one user; a use is recorded only when the counter
/// grows (or the authenticator keeps none); removal is by the owner; a user's deletion takes
/// their passkeys.
async fn passkeys_belong_to_one_user_and_count_forward(store: Arc<dyn Store>) {
    for (id, name) in [("u1", "alice"), ("u2", "bob")] {
        store
            .insert_user(&user(id, name), UserOrigin::Scim)
            .await
            .unwrap();
    }
    let passkey = |id: &str, user_id: &str, sign_count: u32, created_at: UnixTime| PasskeyRecord {
        credential_id: id.into(),
        user_id: user_id.into(),
        name: format!("key {id}"),
        credential: format!("{{\"cred\": \"{id}\"}}"),
        sign_count,
        created_at,
        last_used_at: None,
    };
    store
        .insert_passkey(&passkey("c2", "u1", 5, NOW + 1))
        .await
        .unwrap();
    store
        .insert_passkey(&passkey("c1", "u1", 0, NOW))
        .await
        .unwrap();
    let taken = store.insert_passkey(&passkey("c1", "u2", 0, NOW)).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let nobody = store.insert_passkey(&passkey("c9", "nobody", 0, NOW)).await;
    assert!(
        matches!(nobody, Err(StoreError::MissingReference(_))),
        "{nobody:?}"
    );
    let ids = |keys: Vec<PasskeyRecord>| {
        keys.into_iter()
            .map(|k| k.credential_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.passkeys("u1").await.unwrap()),
        ["c1", "c2"],
        "oldest first"
    );
    assert!(store.passkeys("u2").await.unwrap().is_empty());

    // c2 counts: only a higher counter is a use; c1 keeps no counter: 0 after 0 is.
    assert!(
        !store.use_passkey("c2", "{}", 5, NOW + 2).await.unwrap(),
        "not forward"
    );
    assert!(
        !store.use_passkey("c2", "{}", 4, NOW + 2).await.unwrap(),
        "backwards"
    );
    assert!(store
        .use_passkey("c2", "{\"n\": 6}", 6, NOW + 3)
        .await
        .unwrap());
    assert!(store.use_passkey("c1", "{}", 0, NOW + 4).await.unwrap());
    assert!(
        !store.use_passkey("c9", "{}", 1, NOW + 4).await.unwrap(),
        "unknown"
    );
    let used = store.passkeys("u1").await.unwrap();
    assert_eq!(
        (
            used[1].sign_count,
            used[1].credential.as_str(),
            used[1].last_used_at
        ),
        (6, "{\"n\": 6}", Some(NOW + 3))
    );
    assert_eq!(used[1].created_at, NOW + 1);
    assert_eq!(used[0].last_used_at, Some(NOW + 4));

    assert!(
        !store.delete_passkey("u2", "c1").await.unwrap(),
        "not bob's"
    );
    assert!(store.delete_passkey("u1", "c1").await.unwrap());
    assert_eq!(ids(store.passkeys("u1").await.unwrap()), ["c2"]);
    assert!(!store.delete_mfa("u1").await.unwrap(), "no TOTP");
    assert_eq!(
        ids(store.passkeys("u1").await.unwrap()),
        ["c2"],
        "turning TOTP off leaves passkeys"
    );

    store
        .insert_passkey(&passkey("c3", "u2", 0, NOW))
        .await
        .unwrap();
    assert!(store.delete_user("u2", NOW + 5).await.unwrap());
    assert!(store.passkeys("u2").await.unwrap().is_empty());
    store
        .insert_user(&user("u3", "carol"), UserOrigin::Scim)
        .await
        .unwrap();
    store
        .insert_passkey(&passkey("c3", "u3", 0, NOW))
        .await
        .expect("a deleted user's credential id is free again");
}

async fn mfa_enrollment_steps_recovery_and_failures(store: Arc<dyn Store>) {
    store
        .insert_user(&user("u1", "alice"), UserOrigin::Scim)
        .await
        .unwrap();
    store
        .insert_user(&user("u2", "bob"), UserOrigin::Scim)
        .await
        .unwrap();
    assert_eq!(store.totp("u1").await.unwrap(), None);
    assert!(
        !store.confirm_totp("u1", "sealed-1", 10, &[]).await.unwrap(),
        "nothing pending"
    );

    assert!(store.put_pending_totp("u1", "sealed-1", NOW).await.unwrap());
    assert!(
        store
            .put_pending_totp("u1", "sealed-2", NOW + 1)
            .await
            .unwrap(),
        "a pending seed is replaced"
    );
    let pending = store.totp("u1").await.unwrap().unwrap();
    assert_eq!(pending.secret_sealed, "sealed-2");
    assert!(!pending.confirmed);
    assert!(
        !store.use_totp_step("u1", 5).await.unwrap(),
        "an unconfirmed seed accepts no code"
    );

    let codes = ["rc-1".to_string(), "rc-2".to_string(), "rc-3".to_string()];
    assert!(
        !store
            .confirm_totp("u1", "sealed-1", 100, &codes)
            .await
            .unwrap(),
        "the seed another tab replaced"
    );
    assert!(store
        .confirm_totp("u1", "sealed-2", 100, &codes)
        .await
        .unwrap());
    assert!(
        !store
            .confirm_totp("u1", "sealed-2", 101, &codes)
            .await
            .unwrap(),
        "confirmed once"
    );
    assert!(
        !store
            .put_pending_totp("u1", "sealed-3", NOW + 2)
            .await
            .unwrap(),
        "a confirmed enrollment is left alone"
    );
    let confirmed = store.totp("u1").await.unwrap().unwrap();
    assert_eq!(confirmed.secret_sealed, "sealed-2");
    assert!(confirmed.confirmed);
    assert_eq!(confirmed.last_used_step, 100);
    assert_eq!(confirmed.failures, 0);

    // Steps are accepted once, in increasing order only.
    assert!(
        !store.use_totp_step("u1", 100).await.unwrap(),
        "the confirming step is used"
    );
    assert!(!store.use_totp_step("u1", 99).await.unwrap());
    assert!(store.use_totp_step("u1", 102).await.unwrap());
    assert!(!store.use_totp_step("u1", 101).await.unwrap());
    assert!(!store.use_totp_step("u1", 102).await.unwrap());
    assert_eq!(store.totp("u1").await.unwrap().unwrap().last_used_step, 102);
    assert!(
        !store.use_totp_step("u2", 500).await.unwrap(),
        "no enrollment"
    );

    // Recovery codes are single use and per user.
    assert!(!store.use_recovery_code("u2", "rc-1").await.unwrap());
    assert!(store.use_recovery_code("u1", "rc-1").await.unwrap());
    assert!(!store.use_recovery_code("u1", "rc-1").await.unwrap());
    assert!(!store.use_recovery_code("u1", "rc-unknown").await.unwrap());

    // Attempts are counted when claimed, within a window that starts at the first attempt after
    // `window_start`; a full window refuses further claims.
    let limit = |window_start, max, lock_after| MfaLimit {
        window_start,
        max,
        lock_after,
    };
    let allowed = |failures, consecutive| MfaAttempt::Allowed {
        failures,
        consecutive,
    };
    for (at, expected) in [(NOW, allowed(1, 1)), (NOW + 10, allowed(2, 2))] {
        let claim = store
            .claim_mfa_attempt("u1", at, &limit(NOW - 100, 2, 100))
            .await;
        assert_eq!(claim.unwrap(), expected);
    }
    assert_eq!(
        store
            .claim_mfa_attempt("u1", NOW + 20, &limit(NOW - 80, 2, 100))
            .await
            .unwrap(),
        MfaAttempt::Limited
    );
    let counted = store.totp("u1").await.unwrap().unwrap();
    assert_eq!((counted.failures, counted.failures_since), (2, NOW));
    // The window that started at NOW is over: the window count starts again, the consecutive
    // count goes on.
    assert_eq!(
        store
            .claim_mfa_attempt("u1", NOW + 500, &limit(NOW + 400, 2, 100))
            .await
            .unwrap(),
        allowed(1, 3)
    );
    assert_eq!(
        store.totp("u1").await.unwrap().unwrap().failures_since,
        NOW + 500
    );
    // Past the consecutive limit the factor stays locked, whatever the window.
    assert_eq!(
        store
            .claim_mfa_attempt("u1", NOW + 510, &limit(NOW + 510, 5, 3))
            .await
            .unwrap(),
        MfaAttempt::Locked
    );
    // Parallel claims: exactly `max` get through.
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_mfa_attempt("u1", NOW + 2000, &limit(NOW + 1000, 5, 100))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut passed = 0;
    for claim in burst {
        if matches!(claim.await.unwrap(), MfaAttempt::Allowed { .. }) {
            passed += 1;
        }
    }
    assert_eq!(passed, 5, "of parallel attempts, only the limit is checked");
    // A good code clears both counts; so does a recovery code.
    assert!(store.use_totp_step("u1", 103).await.unwrap());
    let cleared = store.totp("u1").await.unwrap().unwrap();
    assert_eq!((cleared.failures, cleared.consecutive_failures), (0, 0));
    store
        .claim_mfa_attempt("u1", NOW + 2001, &limit(NOW + 1000, 5, 100))
        .await
        .unwrap();
    assert!(store.use_recovery_code("u1", "rc-2").await.unwrap());
    assert_eq!(
        store
            .totp("u1")
            .await
            .unwrap()
            .unwrap()
            .consecutive_failures,
        0
    );
    assert_eq!(
        store
            .claim_mfa_attempt("u2", NOW, &limit(NOW - 100, 5, 100))
            .await
            .unwrap(),
        MfaAttempt::NotEnrolled,
        "no enrollment, nothing counted"
    );
    store.record_mfa_locked("u1", NOW).await.unwrap();

    assert!(store.delete_mfa("u1").await.unwrap());
    assert_eq!(store.totp("u1").await.unwrap(), None);
    assert!(
        !store.use_recovery_code("u1", "rc-3").await.unwrap(),
        "recovery codes go with the enrollment"
    );
    assert!(!store.delete_mfa("u1").await.unwrap());

    // Enrolling again starts from scratch.
    assert!(store
        .put_pending_totp("u1", "sealed-4", NOW + 600)
        .await
        .unwrap());
    assert!(store
        .confirm_totp("u1", "sealed-4", 7, &["rc-4".to_string()])
        .await
        .unwrap());
    let again = store.totp("u1").await.unwrap().unwrap();
    assert_eq!(
        (again.secret_sealed.as_str(), again.last_used_step),
        ("sealed-4", 7)
    );
    assert!(store.use_recovery_code("u1", "rc-4").await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Purge

async fn purge_removes_expired_rows_in_batches(store: Arc<dyn Store>) {
    // Codes are redeemed while live, so a kept one answers AlreadyRedeemed and a purged one
    // Invalid. "old" codes expired before the cut-off, "recent" after it.
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
        assert!(matches!(
            store.redeem_code(hash, NOW - 2000).await.unwrap(),
            CodeRedemption::Redeemed(_)
        ));
    }
    store
        .insert_code("live", &code("g-live", "u1", "s1", NOW + 100))
        .await
        .unwrap();
    for (hash, expires_at) in [("t-x1", NOW - 1), ("t-x2", NOW - 50), ("t-live", NOW + 100)] {
        store
            .insert_token(&access(hash, "g", Some("u1"), expires_at))
            .await
            .unwrap();
    }
    for (hash, expires_at) in [("r-x1", NOW - 1), ("r-x2", NOW - 50), ("r-live", NOW + 100)] {
        store
            .insert_refresh_token(&refresh(hash, "g", "u1", None, expires_at))
            .await
            .unwrap();
    }

    let kept_code =
        |redemption: CodeRedemption| matches!(redemption, CodeRedemption::AlreadyRedeemed { .. });
    assert_eq!(
        store.purge_expired(NOW, cutoff, 1).await.unwrap(),
        3,
        "one row of each table"
    );
    let mut codes_kept = 0;
    for hash in ["old-1", "old-2"] {
        codes_kept += usize::from(kept_code(store.redeem_code(hash, NOW).await.unwrap()));
    }
    assert_eq!(codes_kept, 1);
    let mut tokens_kept = 0;
    for hash in ["t-x1", "t-x2"] {
        tokens_kept += usize::from(store.token_by_hash(hash).await.unwrap().is_some());
    }
    assert_eq!(tokens_kept, 1);
    let mut refresh_kept = 0;
    for hash in ["r-x1", "r-x2"] {
        refresh_kept += usize::from(store.refresh_token(hash).await.unwrap().is_some());
    }
    assert_eq!(refresh_kept, 1);

    assert_eq!(store.purge_expired(NOW, cutoff, 100).await.unwrap(), 3);
    assert_eq!(store.purge_expired(NOW, cutoff, 100).await.unwrap(), 0);

    for hash in ["old-1", "old-2"] {
        assert_eq!(
            store.redeem_code(hash, NOW).await.unwrap(),
            CodeRedemption::Invalid
        );
    }
    assert_eq!(
        store.redeem_code("recent", NOW).await.unwrap(),
        already_redeemed("g-recent"),
        "a code expired after the cut-off is kept, so a replay is still detected"
    );
    assert!(matches!(
        store.redeem_code("live", NOW).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    for hash in ["t-x1", "t-x2"] {
        assert_eq!(store.token_by_hash(hash).await.unwrap(), None);
    }
    assert!(store.token_by_hash("t-live").await.unwrap().is_some());
    for hash in ["r-x1", "r-x2"] {
        assert_eq!(store.refresh_token(hash).await.unwrap(), None);
    }
    assert!(store.refresh_token("r-live").await.unwrap().is_some());
}

async fn login_attempts_recorded_listed_and_purged(store: Arc<dyn Store>) {
    let attempt = |name: &str, outcome, at| LoginAttempt {
        username_hash: format!("hash-of-{name}"),
        ip: "192.0.2.1".into(),
        outcome,
        at,
    };
    let old = attempt(
        "ada",
        LoginOutcome::Failure,
        NOW - LOGIN_ATTEMPT_RETENTION - 10,
    );
    let recent = [
        attempt("ada", LoginOutcome::Failure, NOW - 20),
        attempt("ada", LoginOutcome::Failure, NOW - 10),
        attempt("grace", LoginOutcome::Success, NOW - 5),
        attempt("ada", LoginOutcome::Success, NOW),
    ];
    for entry in recent.iter().chain([&old]) {
        store.record_login_attempt(entry).await.unwrap();
    }
    let newest_first = vec![
        recent[3].clone(),
        recent[1].clone(),
        recent[0].clone(),
        old.clone(),
    ];
    assert_eq!(
        store.login_attempts("hash-of-ada", 10).await.unwrap(),
        newest_first
    );
    assert_eq!(
        store.login_attempts("hash-of-ada", 2).await.unwrap(),
        newest_first[..2]
    );
    assert!(store
        .login_attempts("hash-of-nobody", 10)
        .await
        .unwrap()
        .is_empty());

    assert_eq!(
        store.purge_expired(NOW, NOW - HOUR, 100).await.unwrap(),
        1,
        "only the attempt older than the retention"
    );
    assert_eq!(
        store.login_attempts("hash-of-ada", 10).await.unwrap(),
        newest_first[..3]
    );
    assert_eq!(
        store.login_attempts("hash-of-grace", 10).await.unwrap(),
        [recent[2].clone()]
    );
}

/// Every event type, written by the change it reports, claimed in the order of the changes.
async fn outbox_records_each_change_with_its_event(store: Arc<dyn Store>) {
    let claim = || {
        let store = store.clone();
        async move {
            let claimed = store
                .claim_events(Channel::Webhooks, NOW + 10, NOW + 20, 100)
                .await
                .unwrap();
            claimed
                .into_iter()
                .map(|e| (e.event.kind.name(), e.event.data))
                .collect::<Vec<_>>()
        }
    };
    let mut ada = user("u1", "ada");
    store.insert_user(&ada, UserOrigin::Scim).await.unwrap();
    ada.active = false;
    ada.version = 2;
    store.update_user(&ada, 1, NOW + 1).await.unwrap();
    assert_eq!(
        store.update_user(&ada, 1, NOW + 1).await.unwrap(),
        Update::Stale,
        "a refused update records nothing"
    );
    let staff = group("g1", "Staff", &["u1"]);
    store.insert_group(&staff).await.unwrap();
    store
        .update_group(
            &Group {
                version: 2,
                ..staff
            },
            1,
            NOW + 2,
        )
        .await
        .unwrap();
    assert!(store.delete_group("g1", NOW + 3).await.unwrap());
    assert!(!store.delete_group("g1", NOW + 3).await.unwrap(), "nothing");
    assert!(store.put_pending_totp("u1", "sealed", NOW).await.unwrap());
    assert!(store.confirm_totp("u1", "sealed", 7, &[]).await.unwrap());
    store
        .insert_refresh_token(&refresh("r1", "family", "u1", None, NOW + HOUR))
        .await
        .unwrap();
    for again in [false, true] {
        let revoked = store
            .revoke_reused_family("family", "app", "u1", NOW + 4)
            .await
            .unwrap();
        assert_eq!(revoked == 0, again, "recorded once, with the revocation");
    }
    store
        .put_artifact(
            ArtifactKind::Session,
            "s-hash",
            Some("u1"),
            "{}",
            NOW + HOUR,
        )
        .await
        .unwrap();
    assert!(store
        .log_out("s-hash", "u1", "sid-1", NOW + 5)
        .await
        .unwrap());
    assert!(
        !store
            .log_out("s-hash", "u1", "sid-1", NOW + 5)
            .await
            .unwrap(),
        "nothing"
    );
    assert!(store.delete_user("u1", NOW + 6).await.unwrap());
    assert!(!store.delete_user("u1", NOW + 6).await.unwrap(), "nothing");

    let user_data = |active: bool| json!({"id": "u1", "userName": "ada", "active": active});
    assert_eq!(
        claim().await,
        [
            (
                "user.created",
                json!({"id": "u1", "userName": "ada", "active": true, "origin": "scim"}),
            ),
            ("user.updated", user_data(false)),
            (
                "group.created",
                json!({"id": "g1", "displayName": "Staff", "members": ["u1"]})
            ),
            (
                "group.updated",
                json!({"id": "g1", "displayName": "Staff", "members": ["u1"]})
            ),
            ("group.deleted", json!({"id": "g1"})),
            ("mfa.enrolled", json!({"user_id": "u1", "method": "totp"})),
            (
                "token.reuse_detected",
                json!({"grant_id": "family", "client_id": "app", "user_id": "u1"})
            ),
            ("user.logged_out", json!({"id": "u1", "sid": "sid-1"})),
            ("user.deleted", json!({"id": "u1"})),
        ]
    );
}

/// Claims are leased; a failure is retried when due, the last one buries the event; delivered
/// events are never claimed again; the purge drops events after the retention.
async fn outbox_claims_retries_and_buries_events(store: Arc<dyn Store>) {
    for (id, name) in [("u1", "ada"), ("u2", "grace"), ("u3", "edsger")] {
        store
            .insert_user(&user(id, name), UserOrigin::Scim)
            .await
            .unwrap();
    }
    let ids = |claimed: Vec<events::OutboxEvent>| -> Vec<String> {
        claimed
            .into_iter()
            .map(|e| e.event.data["id"].as_str().unwrap().to_string())
            .collect()
    };
    let claimed = store
        .claim_events(Channel::Webhooks, NOW, NOW + 60, 2)
        .await
        .unwrap();
    let (first, second) = (claimed[0].event.id.clone(), claimed[1].event.id.clone());
    assert_eq!(
        ids(claimed),
        ["u1", "u2"],
        "oldest first, at most the limit"
    );
    assert_eq!(
        ids(store
            .claim_events(Channel::Webhooks, NOW, NOW + 60, 10)
            .await
            .unwrap()),
        ["u3"]
    );
    assert!(
        store
            .claim_events(Channel::Webhooks, NOW + 59, NOW + 120, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );

    store
        .event_delivered(&first, NOW + 60, NOW + 1)
        .await
        .unwrap();
    let refused = "https://hooks.example: HTTP 500";
    store
        .event_failed(&second, NOW + 60, refused, Some(NOW + 100), NOW + 1)
        .await
        .unwrap();
    // At NOW + 60 the lease of u3 ran out, so it is claimed again; u2 waits for its retry.
    let again = store
        .claim_events(Channel::Webhooks, NOW + 60, NOW + 200, 10)
        .await
        .unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    let third = again[0].event.id.clone();
    // The first claim of u3 reports late: the newer claim decides, so this is ignored.
    store
        .event_delivered(&third, NOW + 60, NOW + 61)
        .await
        .unwrap();

    let retried = store
        .claim_events(Channel::Webhooks, NOW + 100, NOW + 160, 10)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].event.id, second);
    assert_eq!(retried[0].attempts, 2, "every claim counts an attempt");
    assert_eq!(retried[0].last_error.as_deref(), Some(refused));
    let timed_out = "https://hooks.example: timed out";
    store
        .event_failed(&second, NOW + 160, timed_out, None, NOW + 101)
        .await
        .unwrap();
    let dead = store.dead_events(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].event.id.as_str(), dead[0].attempts),
        (second.as_str(), 2)
    );
    assert_eq!(dead[0].last_error.as_deref(), Some(timed_out));
    let last = store
        .claim_events(Channel::Webhooks, NOW + 10_000, NOW + 10_060, 10)
        .await
        .unwrap();
    assert_eq!(
        last.iter().map(|e| &e.event.id).collect::<Vec<_>>(),
        [&third],
        "only u3, whose claim ran out again; the dead and the delivered stay put"
    );

    let later = NOW + events::EVENT_RETENTION + 1;
    assert!(store.purge_expired(later, later, 100).await.unwrap() >= 2);
    assert!(store.dead_events(10).await.unwrap().is_empty());
    assert!(store
        .claim_events(Channel::Webhooks, later, later + 60, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Queued mail is claimed only by the mail channel, and audit events only by the webhooks; a
/// dead message is listed with the dead events.
async fn outbox_keeps_mail_apart_from_audit_events(store: Arc<dyn Store>) {
    store
        .insert_user(&user("u1", "ada"), UserOrigin::Scim)
        .await
        .unwrap();
    let mut message = events::mail("ada@example.com", "Reset your password", NOW);
    message.data["sealed"] = "opaque".into();
    store.enqueue(&message).await.unwrap();
    let kinds = |claimed: &[events::OutboxEvent]| -> Vec<&'static str> {
        claimed.iter().map(|e| e.event.kind.name()).collect()
    };
    let audit = store
        .claim_events(Channel::Webhooks, NOW, NOW + 60, 10)
        .await
        .unwrap();
    assert_eq!(kinds(&audit), ["user.created"]);
    let mail = store
        .claim_events(Channel::Mail, NOW, NOW + 60, 10)
        .await
        .unwrap();
    assert_eq!(kinds(&mail), ["mail"]);
    assert_eq!(mail[0].event, message, "queued as written");
    store
        .event_failed(&message.id, NOW + 60, "SMTP: refused", None, NOW + 1)
        .await
        .unwrap();
    let dead = store.dead_events(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event.data["to"], "ada@example.com");
}

async fn purge_removes_expired_artifacts(store: Arc<dyn Store>) {
    use ArtifactKind::{Interaction, Session};
    store
        .put_artifact(Session, "x1", None, "p", NOW - 1)
        .await
        .unwrap();
    store
        .put_artifact(Interaction, "x2", None, "p", NOW - 60)
        .await
        .unwrap();
    store
        .put_artifact(Session, "live", None, "kept", NOW + 60)
        .await
        .unwrap();
    assert_eq!(store.purge_expired(NOW, NOW, 1).await.unwrap(), 1);
    assert_eq!(store.purge_expired(NOW, NOW, 10).await.unwrap(), 1);
    assert_eq!(store.purge_expired(NOW, NOW, 10).await.unwrap(), 0);
    assert_eq!(
        store
            .artifact(Session, "live", NOW)
            .await
            .unwrap()
            .as_deref(),
        Some("kept")
    );
}

// ---------------------------------------------------------------------------------------------
// Users and groups

async fn users_insert_read_update_and_conflicts(store: Arc<dyn Store>) {
    let alice = User {
        attributes: attributes(json!({
            "name": {"givenName": "Alice", "familyName": "Anderson"},
            "displayName": "Alice A",
            "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
            ENTERPRISE_USER_SCHEMA: {"department": "R&D"},
        })),
        ..user("u1", "Alice")
    };
    store.insert_user(&alice, UserOrigin::Scim).await.unwrap();
    assert_eq!(store.user("u1").await.unwrap(), Some(alice.clone()));
    assert_eq!(
        store.user_by_username("ALICE").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.user_by_username("alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user("U1").await.unwrap(), None, "ids are exact");
    assert_eq!(store.user_by_username("alic").await.unwrap(), None);

    let err = store
        .insert_user(&user("u2", "aLiCe"), UserOrigin::Scim)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.user("u2").await.unwrap(), None);
    let bob = User {
        password_hash: None,
        ..user("u2", "bob")
    };
    store.insert_user(&bob, UserOrigin::Scim).await.unwrap();
    assert_eq!(store.user("u2").await.unwrap(), Some(bob.clone()));

    // Conditional update: the stored version must be the expected one.
    let renamed = User {
        username: "alice.smith".into(),
        attributes: attributes(json!({"displayName": "Alice Smith", "title": "CTO"})),
        version: 2,
        updated_at: NOW + 10,
        ..alice.clone()
    };
    assert_eq!(
        store.update_user(&renamed, 1, NOW + 10).await.unwrap(),
        Update::Done
    );
    assert_eq!(store.user("u1").await.unwrap(), Some(renamed.clone()));
    assert_eq!(store.user_by_username("Alice").await.unwrap(), None);
    assert_eq!(
        store.user_by_username("ALICE.SMITH").await.unwrap(),
        Some(renamed.clone())
    );
    let stale = User {
        version: 3,
        username: "stale".into(),
        ..renamed.clone()
    };
    assert_eq!(
        store.update_user(&stale, 1, NOW + 20).await.unwrap(),
        Update::Stale
    );
    assert_eq!(store.user("u1").await.unwrap(), Some(renamed.clone()));
    assert_eq!(
        store
            .update_user(&user("u9", "nobody"), 1, NOW)
            .await
            .unwrap(),
        Update::NotFound
    );
    assert_eq!(store.user("u9").await.unwrap(), None);

    // The old name is free again; a taken one (in any case) is a conflict.
    store
        .insert_user(&user("u3", "alice"), UserOrigin::Scim)
        .await
        .unwrap();
    let clash = User {
        username: "Alice.Smith".into(),
        version: 2,
        ..bob.clone()
    };
    let err = store.update_user(&clash, 1, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.user("u2").await.unwrap(), Some(bob));
    // Changing only the case of one's own name is fine.
    let recased = User {
        username: "ALICE.SMITH".into(),
        version: 3,
        ..renamed
    };
    assert_eq!(
        store.update_user(&recased, 2, NOW + 30).await.unwrap(),
        Update::Done
    );
    assert_eq!(
        store.user_by_username("alice.smith").await.unwrap(),
        Some(recased)
    );
}

/// Gives `user_id` a code, an access token, a refresh token and a session, all live.
async fn hand_out_access(store: &Arc<dyn Store>, user_id: &str) {
    let grant = format!("grant-{user_id}");
    store
        .insert_code(
            &format!("code-{user_id}"),
            &code(&grant, user_id, "s", NOW + 60),
        )
        .await
        .unwrap();
    store
        .insert_token(&access(
            &format!("at-{user_id}"),
            &grant,
            Some(user_id),
            NOW + HOUR,
        ))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh(
            &format!("rt-{user_id}"),
            &grant,
            user_id,
            None,
            NOW + HOUR,
        ))
        .await
        .unwrap();
    store
        .put_artifact(
            ArtifactKind::Session,
            &format!("session-{user_id}"),
            Some(user_id),
            "{}",
            NOW + HOUR,
        )
        .await
        .unwrap();
}

/// Whether everything `hand_out_access` gave the user is still usable. Redeems the code.
async fn access_intact(store: &Arc<dyn Store>, user_id: &str) -> [bool; 4] {
    let code = store
        .redeem_code(&format!("code-{user_id}"), NOW)
        .await
        .unwrap();
    let token = store.token_by_hash(&format!("at-{user_id}")).await.unwrap();
    let refresh = store.refresh_token(&format!("rt-{user_id}")).await.unwrap();
    let session = store
        .artifact(ArtifactKind::Session, &format!("session-{user_id}"), NOW)
        .await
        .unwrap();
    [
        matches!(code, CodeRedemption::Redeemed(_)),
        token.is_some_and(|t| !t.revoked),
        refresh.is_some_and(|r| !r.revoked),
        session.is_some(),
    ]
}

async fn user_deactivation_ends_access(store: Arc<dyn Store>) {
    for (id, name) in [("u1", "alice"), ("u2", "bob")] {
        store
            .insert_user(&user(id, name), UserOrigin::Scim)
            .await
            .unwrap();
        hand_out_access(&store, id).await;
    }
    store
        .put_artifact(ArtifactKind::Interaction, "pending", None, "{}", NOW + HOUR)
        .await
        .unwrap();

    // An update that leaves the user active ends nothing.
    let mut alice = store.user("u1").await.unwrap().unwrap();
    alice.attributes.insert("title".into(), json!("Engineer"));
    alice.version = 2;
    assert_eq!(
        store.update_user(&alice, 1, NOW).await.unwrap(),
        Update::Done
    );
    assert!(!token_revoked(&store, "at-u1").await);
    assert!(!refresh_revoked(&store, "rt-u1").await);
    assert!(store
        .artifact(ArtifactKind::Session, "session-u1", NOW)
        .await
        .unwrap()
        .is_some());

    alice.active = false;
    alice.version = 3;
    assert_eq!(
        store.update_user(&alice, 2, NOW + 1).await.unwrap(),
        Update::Done
    );
    assert_eq!(store.user("u1").await.unwrap(), Some(alice));
    assert_eq!(
        store.redeem_code("code-u1", NOW).await.unwrap(),
        already_redeemed("grant-u1"),
        "the user's unredeemed code is burnt"
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

    assert_eq!(
        access_intact(&store, "u2").await,
        [true; 4],
        "other users keep theirs"
    );
    assert!(store
        .artifact(ArtifactKind::Interaction, "pending", NOW)
        .await
        .unwrap()
        .is_some());
}

async fn user_deletion_ends_access_and_membership(store: Arc<dyn Store>) {
    for (id, name) in [("u1", "alice"), ("u2", "bob")] {
        store
            .insert_user(&user(id, name), UserOrigin::Scim)
            .await
            .unwrap();
        hand_out_access(&store, id).await;
    }
    store
        .insert_group(&group("g1", "Staff", &["u1", "u2"]))
        .await
        .unwrap();
    let group_version = store.group("g1").await.unwrap().unwrap().version;

    assert!(!token_revoked(&store, "at-u1").await, "read (and cached)");
    assert!(store.delete_user("u1", NOW).await.unwrap());
    assert_eq!(store.user("u1").await.unwrap(), None);
    assert_eq!(store.user_by_username("alice").await.unwrap(), None);
    assert_eq!(access_intact(&store, "u1").await, [false; 4]);
    assert_eq!(access_intact(&store, "u2").await, [true; 4]);

    let staff = store.group("g1").await.unwrap().unwrap();
    assert_eq!(
        members(&staff),
        BTreeSet::from([("u2".into(), "bob".into())])
    );
    assert!(
        staff.version > group_version,
        "the group lost a member: new version"
    );
    assert!(store.memberships(&["u1".into()]).await.unwrap().is_empty());

    assert!(!store.delete_user("u1", NOW).await.unwrap());
    assert!(!store.delete_user("unknown", NOW).await.unwrap());
    store
        .insert_user(&user("u3", "alice"), UserOrigin::Scim)
        .await
        .unwrap();
}

async fn groups_insert_read_and_references(store: Arc<dyn Store>) {
    let ann = User {
        attributes: attributes(json!({"displayName": "Ann A"})),
        ..user("u1", "ann")
    };
    let bert = User {
        attributes: Attributes::new(),
        ..user("u2", "bert")
    };
    store.insert_user(&ann, UserOrigin::Scim).await.unwrap();
    store.insert_user(&bert, UserOrigin::Scim).await.unwrap();
    store
        .insert_user(&user("u3", "cy"), UserOrigin::Scim)
        .await
        .unwrap();

    let staff = group("g1", "Staff", &["u1", "u2"]);
    store.insert_group(&staff).await.unwrap();
    let read = store.group("g1").await.unwrap().unwrap();
    assert_eq!(
        Group {
            members: Vec::new(),
            ..read.clone()
        },
        Group {
            members: Vec::new(),
            ..staff.clone()
        }
    );
    assert_eq!(
        members(&read),
        BTreeSet::from([("u1".into(), "Ann A".into()), ("u2".into(), "bert".into())]),
        "a member shows as the user's displayName, else the user name"
    );
    assert!(
        version_of(&store, "u1").await > 1,
        "joining changes the user's groups"
    );
    assert_eq!(version_of(&store, "u3").await, 1);
    assert_eq!(store.group("unknown").await.unwrap(), None);

    let err = store
        .insert_group(&group("g2", "STAFF", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let versions = (
        version_of(&store, "u1").await,
        version_of(&store, "u3").await,
    );
    let err = store
        .insert_group(&group("g3", "Other", &["u3", "ghost"]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::MissingReference(_)), "{err:?}");
    assert_eq!(
        store.group("g3").await.unwrap(),
        None,
        "nothing of a refused group stays"
    );
    assert_eq!(
        (
            version_of(&store, "u1").await,
            version_of(&store, "u3").await
        ),
        versions
    );
    store
        .insert_group(&group("g4", "Empty", &[]))
        .await
        .unwrap();
    assert!(store.group("g4").await.unwrap().unwrap().members.is_empty());

    let refs: BTreeSet<_> = store
        .memberships(&["u1".into(), "u2".into(), "u3".into(), "ghost".into()])
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.user_id, r.group_id, r.display_name))
        .collect();
    assert_eq!(
        refs,
        BTreeSet::from([
            ("u1".into(), "g1".into(), "Staff".into()),
            ("u2".into(), "g1".into(), "Staff".into()),
        ])
    );
}

async fn group_changes_bump_versions(store: Arc<dyn Store>) {
    for (id, name) in [("a", "amy"), ("b", "ben"), ("c", "cat")] {
        store
            .insert_user(&user(id, name), UserOrigin::Scim)
            .await
            .unwrap();
    }
    store
        .insert_group(&group("g", "Team", &["a", "b"]))
        .await
        .unwrap();
    store.insert_group(&group("o", "Other", &[])).await.unwrap();
    let versions = |store: Arc<dyn Store>| async move {
        [
            version_of(&store, "a").await,
            version_of(&store, "b").await,
            version_of(&store, "c").await,
        ]
    };

    // A rename changes every member's `groups`.
    let [a, b, c] = versions(store.clone()).await;
    let renamed = Group {
        display_name: "Crew".into(),
        version: 2,
        updated_at: NOW + 10,
        ..group("g", "Team", &["a", "b"])
    };
    assert_eq!(
        store.update_group(&renamed, 1, NOW + 10).await.unwrap(),
        Update::Done
    );
    let [a2, b2, c2] = versions(store.clone()).await;
    assert!(
        a2 > a && b2 > b,
        "members of a renamed group get new versions"
    );
    assert_eq!(c2, c);
    let read = store.group("g").await.unwrap().unwrap();
    assert_eq!(
        (read.display_name.as_str(), read.version, read.updated_at),
        ("Crew", 2, NOW + 10)
    );
    let refs = store.memberships(&["a".into()]).await.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].display_name, "Crew");

    // A membership change affects who joined or left, nobody else.
    let moved = Group {
        version: 3,
        ..group("g", "Crew", &["b", "c"])
    };
    assert_eq!(
        store.update_group(&moved, 2, NOW + 20).await.unwrap(),
        Update::Done
    );
    let [a3, b3, c3] = versions(store.clone()).await;
    assert!(a3 > a2 && c3 > c2);
    assert_eq!(b3, b2);
    assert_eq!(
        members(&store.group("g").await.unwrap().unwrap()),
        BTreeSet::from([("b".into(), "ben".into()), ("c".into(), "cat".into())])
    );

    assert_eq!(
        store.update_group(&moved, 2, NOW + 30).await.unwrap(),
        Update::Stale
    );
    assert_eq!(
        store
            .update_group(&group("nope", "Nope", &[]), 1, NOW)
            .await
            .unwrap(),
        Update::NotFound
    );
    let ghostly = Group {
        version: 4,
        ..group("g", "Crew", &["b", "ghost"])
    };
    let err = store.update_group(&ghostly, 3, NOW + 30).await.unwrap_err();
    assert!(matches!(err, StoreError::MissingReference(_)), "{err:?}");
    let clash = Group {
        version: 4,
        ..group("g", "OTHER", &["b", "c"])
    };
    let err = store.update_group(&clash, 3, NOW + 30).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let unchanged = store.group("g").await.unwrap().unwrap();
    assert_eq!(
        (unchanged.display_name.as_str(), unchanged.version),
        ("Crew", 3)
    );
    assert_eq!(members(&unchanged).len(), 2);
    assert_eq!(versions(store.clone()).await, [a3, b3, c3]);

    // A member's new display name changes the group.
    let mut ben = store.user("b").await.unwrap().unwrap();
    ben.attributes
        .insert("displayName".into(), json!("Benjamin"));
    let expected = ben.version;
    ben.version += 1;
    assert_eq!(
        store.update_user(&ben, expected, NOW + 40).await.unwrap(),
        Update::Done
    );
    let regrouped = store.group("g").await.unwrap().unwrap();
    assert!(regrouped.version > 3);
    assert!(members(&regrouped).contains(&("b".into(), "Benjamin".into())));
    assert_eq!(store.group("o").await.unwrap().unwrap().version, 1);

    // Deleting the group changes its members.
    let [a4, b4, c4] = versions(store.clone()).await;
    assert!(store.delete_group("g", NOW + 50).await.unwrap());
    assert_eq!(store.group("g").await.unwrap(), None);
    let [a5, b5, c5] = versions(store.clone()).await;
    assert!(b5 > b4 && c5 > c4);
    assert_eq!(a5, a4);
    assert!(store
        .memberships(&["b".into(), "c".into()])
        .await
        .unwrap()
        .is_empty());
    assert!(!store.delete_group("g", NOW + 60).await.unwrap());
    assert!(
        store.user("b").await.unwrap().is_some(),
        "users outlive their groups"
    );
}

// ---------------------------------------------------------------------------------------------
// SCIM listings: one directory, filters and sort orders written as SCIM text and resolved by the
// SCIM layer, the expected user names fixed here.

const T0: UnixTime = 1_704_067_200; // 2024-01-01T00:00:00Z
const EXT: &str = ENTERPRISE_USER_SCHEMA;

/// Twelve users, `u01`…`u12` (created 100 s apart from T0 + 100, modified 50 s after), in three
/// groups: g1 Engineering {alice, bob, heidi}, g2 Sales {carol, dave}, g3 Admins {alice, erin}.
async fn directory(store: &Arc<dyn Store>) {
    let people = [
        (
            "alice",
            true,
            json!({
                "name": {"givenName": "Alice", "familyName": "Anderson"},
                "displayName": "Alice Anderson",
                "emails": [
                    {"value": "alice@example.com", "type": "work", "primary": true},
                    {"value": "alice.home@example.org", "type": "home"}],
                "title": "Engineer", "externalId": "EXT-1", "active": true,
                EXT: {"department": "Engineering", "employeeNumber": "1001", "manager": {"value": "u05"}},
            }),
        ),
        (
            "bob",
            false,
            json!({
                "name": {"givenName": "Bob", "familyName": "Brown"},
                "displayName": "Bob Brown",
                "emails": [{"value": "BOB@Example.com", "type": "work"}],
                "title": "Engineer", "active": false,
                EXT: {"department": "engineering", "employeeNumber": "1002"},
            }),
        ),
        (
            "carol",
            true,
            json!({
                "name": {"givenName": "Carol", "familyName": "Clark"},
                "emails": [{"value": "carol@example.org", "type": "home", "primary": true}],
                "title": "Manager",
                EXT: {"department": "Sales", "employeeNumber": "2001"},
            }),
        ),
        (
            "dave",
            true,
            json!({
                "name": {"givenName": "Dave"}, "displayName": "Dave", "emails": [],
                EXT: {"department": "Sales"},
            }),
        ),
        (
            "erin",
            true,
            json!({
                "name": {"givenName": "Erin", "familyName": "Evans"},
                "displayName": "Erin Evans",
                "emails": [
                    {"value": "erin@example.com", "type": "work"},
                    {"value": "z.erin@personal.net", "type": "home", "primary": true}],
                "title": "Director", "externalId": "ext-5",
            }),
        ),
        ("frank", false, json!({EXT: {"employeeNumber": "3001"}})),
        (
            "grace",
            true,
            json!({
                "name": {"givenName": "Grace", "familyName": "Green"},
                "displayName": "Grace Green",
                "emails": [{"value": "grace@example.com"}],
                "title": "", "nickName": "gg",
                EXT: {"department": "Support"},
            }),
        ),
        (
            "heidi",
            true,
            json!({
                "name": {"givenName": "Heidi", "familyName": "Hill"},
                "displayName": "Heidi Hill",
                "emails": [
                    {"value": "x.heidi@example.net", "type": "other"},
                    {"value": "b.heidi@example.net", "type": "home"}],
                "title": "Engineer",
                EXT: {"department": "Engineering", "employeeNumber": "1003", "costCenter": "CC-7"},
            }),
        ),
        (
            "ivan",
            true,
            json!({
                "name": {"givenName": "Ivan", "familyName": "Irwin"},
                "displayName": "Ivan",
                "emails": [
                    {"value": "ivan@example.com", "type": "work", "primary": false},
                    {"value": "a.ivan@example.org", "type": "home", "primary": true}],
                EXT: {"department": "Support"},
            }),
        ),
        (
            "judy",
            false,
            json!({
                "name": {"givenName": "Judy", "familyName": "Johnson"},
                "displayName": "Judy J",
                "emails": [{"value": "judy@example.com", "type": "work", "primary": true}],
                "title": "Manager", "active": false,
            }),
        ),
        (
            "mallory",
            true,
            json!({
                "name": {"givenName": "Mallory", "familyName": "anders"},
                "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
            }),
        ),
        (
            "Zed",
            true,
            json!({
                "name": {"givenName": "Zed", "familyName": "Zimmer"},
                "displayName": "zed zimmer",
                "emails": [{"value": "zed@EXAMPLE.com", "type": "work"}],
            }),
        ),
    ];
    for (n, (username, active, attrs)) in (1..).zip(people) {
        let created_at = T0 + n * 100;
        let person = User {
            id: format!("u{n:02}"),
            username: username.into(),
            password_hash: None,
            active,
            verified_email: None,
            attributes: attributes(attrs),
            version: 1,
            created_at,
            updated_at: created_at + 50,
        };
        store.insert_user(&person, UserOrigin::Scim).await.unwrap();
    }
    for (id, name, members) in [
        ("g1", "Engineering", "u01 u02 u08"),
        ("g2", "Sales", "u03 u04"),
        ("g3", "Admins", "u01 u05"),
    ] {
        let members: Vec<&str> = members.split_whitespace().collect();
        store
            .insert_group(&group(id, name, &members))
            .await
            .unwrap();
    }
}

/// A listing as the SCIM layer builds it from request parameters.
fn listing(rt: &ResourceType, params: ListParams) -> ListQuery {
    let described = format!("{params:?}");
    params
        .listing(rt)
        .unwrap_or_else(|err| panic!("{described}: {err:?}"))
        .query
}

fn filtered(filter: &str) -> ListParams {
    ListParams {
        filter: Some(filter.into()),
        ..ListParams::default()
    }
}

/// Space-separated names, as the tables below write them.
fn names_of(list: &str) -> Vec<String> {
    list.split_whitespace().map(String::from).collect()
}

async fn user_names(store: &Arc<dyn Store>, query: &ListQuery) -> (u64, Vec<String>) {
    let page = store.list_users(query).await.unwrap();
    (
        page.total,
        page.items.into_iter().map(|u| u.username).collect(),
    )
}

async fn scim_user_filters(store: Arc<dyn Store>) {
    directory(&store).await;
    let dept = format!("{EXT}:department");
    let cases: Vec<(String, &str)> = vec![
        (r#"userName eq "ALICE""#.into(), "alice"),
        (
            r#"userName co "A""#.into(),
            "alice carol dave frank grace ivan mallory",
        ),
        (
            r#"userName gt "J" and userName le "mallory""#.into(),
            "judy mallory",
        ),
        (r#"name.familyName eq "anderson""#.into(), "alice"),
        (
            "name.familyName pr".into(),
            "alice bob carol erin grace heidi ivan judy mallory Zed",
        ),
        ("not (name.familyName pr)".into(), "dave frank"),
        (
            r#"name.givenName gt "h" and name.givenName lt "K""#.into(),
            "heidi ivan judy",
        ),
        (r#"displayName sw "j""#.into(), "judy"),
        (r#"displayName co "ZIMMER""#.into(), "Zed"),
        (r#"emails eq "bob@example.com""#.into(), "bob"),
        (r#"emails ew "EXAMPLE.ORG""#.into(), "alice carol ivan"),
        (
            r#"emails[type eq "work" and value co "example.com"]"#.into(),
            "alice bob erin ivan judy Zed",
        ),
        (
            "emails[primary eq true]".into(),
            "alice carol erin ivan judy",
        ),
        (
            r#"emails.type eq "home""#.into(),
            "alice carol erin heidi ivan",
        ),
        (
            r#"emails[value ew ".net"] and active eq true"#.into(),
            "erin heidi",
        ),
        (
            "emails pr".into(),
            "alice bob carol erin grace heidi ivan judy Zed",
        ),
        ("not (emails pr)".into(), "dave frank mallory"),
        (r#"phoneNumbers[type eq "mobile"]"#.into(), "mallory"),
        ("active eq false".into(), "bob frank judy"),
        (
            r#"active eq true and title eq "engineer""#.into(),
            "alice heidi",
        ),
        (
            r#"title ne "Engineer""#.into(),
            "carol dave erin frank grace ivan judy mallory Zed",
        ),
        ("title eq null".into(), "dave frank ivan mallory Zed"),
        ("title pr".into(), "alice bob carol erin heidi judy"),
        (
            r#"(title eq "Manager" or title eq "Director") and not (active eq false)"#.into(),
            "carol erin",
        ),
        ("nickName pr".into(), "grace"),
        (format!(r#"{dept} eq "Engineering""#), "alice bob heidi"),
        (r#"department eq "sales""#.into(), "carol dave"),
        (format!(r#"{EXT}:employeeNumber sw "1""#), "alice bob heidi"),
        (format!("not ({dept} pr)"), "erin frank judy mallory Zed"),
        (format!(r#"{EXT}:manager.value eq "u05""#), "alice"),
        (format!(r#"{EXT}:manager.value eq "U05""#), ""),
        (r#"externalId eq "ext-5""#.into(), "erin"),
        (r#"externalId eq "EXT-5""#.into(), ""),
        (
            r#"externalId eq "EXT-1" or externalId eq "ext-1""#.into(),
            "alice",
        ),
        (r#"id eq "u07""#.into(), "grace"),
        (
            r#"meta.created ge "2024-01-01T00:16:40Z""#.into(),
            "judy mallory Zed",
        ),
        // Joining a group (at NOW, in 2027) modifies a user.
        (
            r#"meta.lastModified le "2024-01-01T00:12:30Z""#.into(),
            "frank grace",
        ),
        (
            r#"meta.lastModified ge "2027-01-01T00:00:00Z""#.into(),
            "alice bob carol dave erin heidi",
        ),
        (
            r#"groups.display eq "engineering""#.into(),
            "alice bob heidi",
        ),
        (r#"groups eq "g3""#.into(), "alice erin"),
        (
            r#"groups[display eq "Sales" or value eq "g3"]"#.into(),
            "alice carol dave erin",
        ),
        (
            "not (groups pr)".into(),
            "frank grace ivan judy mallory Zed",
        ),
    ];
    let mut wrong = Vec::new();
    for (filter, expected) in &cases {
        let query = listing(&USER_TYPE, filtered(filter));
        let (total, mut names) = user_names(&store, &query).await;
        names.sort();
        let mut expected = names_of(expected);
        expected.sort();
        if names != expected || total != expected.len() as u64 {
            wrong.push(format!(
                "{filter}\n    expected {expected:?}\n    got      {names:?} (total {total})"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "filters gave wrong users:\n{}",
        wrong.join("\n")
    );
}

async fn scim_user_sorting_and_paging(store: Arc<dyn Store>) {
    directory(&store).await;
    let sorted = |by: &str, order: &str| ListParams {
        sort_by: Some(by.into()),
        sort_order: Some(order.into()),
        ..ListParams::default()
    };
    // Case-insensitive order, missing values last either way (then by id); a multi-valued
    // attribute sorts by its primary value, else its first.
    let cases: [(ListParams, &str); 5] = [
        (
            sorted("name.familyName", "ascending"),
            "mallory alice bob carol erin grace heidi ivan judy Zed dave frank",
        ),
        (
            sorted("name.familyName", "descending"),
            "Zed judy ivan heidi grace erin carol bob alice mallory dave frank",
        ),
        (
            sorted("emails", "ascending"),
            "ivan alice bob carol grace judy heidi erin Zed dave frank mallory",
        ),
        (
            sorted("emails", "descending"),
            "Zed erin heidi judy grace carol bob alice ivan dave frank mallory",
        ),
        (
            sorted("meta.created", "descending"),
            "Zed mallory judy ivan heidi grace frank erin dave carol bob alice",
        ),
    ];
    for (params, expected) in cases {
        let described = format!("{:?} {:?}", params.sort_by, params.sort_order);
        let (total, names) = user_names(&store, &listing(&USER_TYPE, params)).await;
        assert_eq!(names, names_of(expected), "{described}");
        assert_eq!(total, 12);
    }

    // Pages: startIndex is 1-based, the total counts every match.
    let page = |filter: Option<&str>, start: u64, count: u64| ListParams {
        filter: filter.map(Into::into),
        sort_by: Some("userName".into()),
        start_index: Some(start.to_string()),
        count: Some(count.to_string()),
        ..ListParams::default()
    };
    let pages: [(ListParams, u64, &str); 5] = [
        (page(None, 4, 3), 12, "dave erin frank"),
        (page(None, 11, 5), 12, "mallory Zed"),
        (page(None, 13, 5), 12, ""),
        (page(Some("active eq true"), 1, 0), 9, ""),
        (page(Some("active eq true"), 8, 5), 9, "mallory Zed"),
    ];
    for (params, total, expected) in pages {
        let described = format!("{params:?}");
        assert_eq!(
            user_names(&store, &listing(&USER_TYPE, params)).await,
            (total, names_of(expected)),
            "{described}"
        );
    }

    // Without a sort order, pages still cover every user exactly once.
    let mut seen = Vec::new();
    for start in [1, 6, 11] {
        let params = ListParams {
            start_index: Some(start.to_string()),
            count: Some("5".into()),
            ..ListParams::default()
        };
        let (total, names) = user_names(&store, &listing(&USER_TYPE, params)).await;
        assert_eq!(total, 12);
        assert!(names.len() <= 5);
        seen.extend(names);
    }
    seen.sort();
    let mut all: Vec<String> = user_names(&store, &listing(&USER_TYPE, ListParams::default()))
        .await
        .1;
    all.sort();
    assert_eq!(all.len(), 12);
    assert_eq!(seen, all);
}

async fn scim_group_listing(store: Arc<dyn Store>) {
    directory(&store).await;
    let list = |params: ListParams, with_members: bool| {
        let store = store.clone();
        async move {
            let query = listing(&GROUP_TYPE, params);
            store.list_groups(&query, with_members).await.unwrap()
        }
    };
    let names = |page: &query::Page<Group>| -> Vec<String> {
        page.items.iter().map(|g| g.display_name.clone()).collect()
    };
    let cases: [(&str, &str); 5] = [
        (r#"displayName eq "SALES""#, "Sales"),
        (
            r#"displayName sw "a" or displayName ew "ING""#,
            "Admins Engineering",
        ),
        (r#"members[value eq "u01"]"#, "Admins Engineering"),
        (r#"members.display co "brown""#, "Engineering"),
        (r#"externalId eq "ext-g2""#, "Sales"),
    ];
    for (filter, expected) in cases {
        let params = ListParams {
            sort_by: Some("displayName".into()),
            ..filtered(filter)
        };
        let page = list(params, false).await;
        assert_eq!(names(&page), names_of(expected), "{filter}");
        assert_eq!(page.total, names_of(expected).len() as u64, "{filter}");
    }

    let by_name = || ListParams {
        sort_by: Some("displayName".into()),
        ..ListParams::default()
    };
    let bare = list(by_name(), false).await;
    assert_eq!(names(&bare), ["Admins", "Engineering", "Sales"]);
    assert!(
        bare.items.iter().all(|g| g.members.is_empty()),
        "members not asked for"
    );
    let full = list(by_name(), true).await;
    assert_eq!(full.total, 3);
    let shown: Vec<BTreeSet<(String, String)>> = full.items.iter().map(members).collect();
    let set = |pairs: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        pairs
            .iter()
            .map(|(id, d)| (id.to_string(), d.to_string()))
            .collect()
    };
    assert_eq!(
        shown,
        [
            set(&[("u01", "Alice Anderson"), ("u05", "Erin Evans")]),
            set(&[
                ("u01", "Alice Anderson"),
                ("u02", "Bob Brown"),
                ("u08", "Heidi Hill")
            ]),
            set(&[("u03", "carol"), ("u04", "Dave")]),
        ]
    );
    // `group` and `list_groups` agree (member order is not part of the contract).
    for item in &full.items {
        let single = store
            .group(&item.id)
            .await
            .unwrap()
            .expect("a listed group");
        assert_eq!(members(&single), members(item));
        let bare = |g: &Group| Group {
            members: Vec::new(),
            ..g.clone()
        };
        assert_eq!(bare(&single), bare(item));
    }
    let paged = ListParams {
        start_index: Some("2".into()),
        count: Some("1".into()),
        ..by_name()
    };
    let second = list(paged, true).await;
    assert_eq!(
        (second.total, names(&second)),
        (3, vec!["Engineering".to_string()])
    );
    assert_eq!(second.items[0].members.len(), 3);
}

/// One meaning per value filter: for random users and random `emails[…]` filters, the users a
/// backend's listing selects are those with an element PATCH's matcher (`Filter::matches`)
/// selects. Texts mix case and non-ASCII letters, elements miss sub-attributes, so case folding,
/// presence and null comparisons are all exercised.
async fn value_filters_select_what_the_patch_matcher_selects(store: Arc<dyn Store>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let texts = [
        "work",
        "Work",
        "WORK",
        "home",
        "",
        "a",
        "A@Example.COM",
        "a@example.com",
        "é",
        "É",
        "Zoë",
        "ZOË",
        "ß",
        "ss",
    ];
    let pick = |rng: &mut rand::rngs::StdRng| texts[rng.gen_range(0..texts.len())];
    let mut people = Vec::new();
    for n in 0..24 {
        let emails: Vec<Value> = (0..rng.gen_range(0..4))
            .map(|_| {
                let mut element = serde_json::Map::new();
                for sub in ["value", "type", "display"] {
                    if rng.gen_bool(0.7) {
                        element.insert(sub.into(), json!(pick(&mut rng)));
                    }
                }
                if rng.gen_bool(0.5) {
                    element.insert("primary".into(), json!(rng.gen_bool(0.5)));
                }
                Value::Object(element)
            })
            .collect();
        let mut person = user(&format!("p{n:02}"), &format!("p{n:02}"));
        person.attributes.insert("emails".into(), json!(emails));
        store.insert_user(&person, UserOrigin::Scim).await.unwrap();
        people.push((person.username, emails));
    }
    let operators = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
    let term = |rng: &mut rand::rngs::StdRng| {
        let sub = ["value", "type", "display", "primary"][rng.gen_range(0..4)];
        let value = match (sub, rng.gen_range(0..6)) {
            (_, 0) => "null".to_string(),
            ("primary", _) => rng.gen_bool(0.5).to_string(),
            _ => json!(pick(rng)).to_string(),
        };
        match rng.gen_range(0..8) {
            0 => format!("{sub} pr"),
            _ => format!(
                "{sub} {} {value}",
                operators[rng.gen_range(0..operators.len())]
            ),
        }
    };
    let mut compared = 0;
    for _ in 0..400 {
        let mut text = term(&mut rng);
        for _ in 0..rng.gen_range(0..3) {
            text = match rng.gen_range(0..3) {
                0 => format!("not ({text})"),
                1 => format!("({text}) and {}", term(&mut rng)),
                _ => format!("({text}) or {}", term(&mut rng)),
            };
        }
        // Orderings on booleans are refused by the SCIM layer before any store sees them.
        let Ok(listing) = filtered(&format!("emails[{text}]")).listing(&USER_TYPE) else {
            continue;
        };
        let Some(Filter::ValuePath { filter, .. }) = &listing.query.filter else {
            panic!("{text}: not a value path");
        };
        let want: Vec<String> = people
            .iter()
            .filter(|(_, emails)| emails.iter().any(|e| filter.matches(e)))
            .map(|(name, _)| name.clone())
            .collect();
        let (_, mut got) = user_names(&store, &listing.query).await;
        got.sort();
        assert_eq!(got, want, "emails[{text}]");
        compared += 1;
    }
    assert!(compared >= 200, "only {compared} filters were valid");
}

/// The token cache really answers reads (a change made behind its back is not seen), yet every
/// revocation through the store shows at once, and without Redis reads go to the database.
#[tokio::test]
async fn the_token_cache_answers_reads_but_never_hides_a_revocation() {
    let redis = crate::servers::Redis::new();
    let (store, dir) = open_sqlite().await;
    let ttl = std::time::Duration::from_secs(600);
    let cache = TokenCache::connect(&redis.url(), "cache-test:", ttl)
        .await
        .unwrap();
    let store = store.with_token_cache(cache);
    let token = access("t1", "g1", Some("u1"), NOW + HOUR);
    store.insert_token(&token).await.unwrap();
    assert_eq!(
        store.token_by_hash("t1").await.unwrap(),
        Some(token.clone())
    );

    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let database = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE tokens SET scope = 'changed behind the cache'")
        .execute(&database)
        .await
        .unwrap();
    assert_eq!(
        store.token_by_hash("t1").await.unwrap(),
        Some(token.clone()),
        "served from the cache"
    );

    store.revoke_token("t1", NOW).await.unwrap();
    let read = store.token_by_hash("t1").await.unwrap().unwrap();
    assert!(read.revoked);
    assert_eq!(
        read.scope, "changed behind the cache",
        "read from the database"
    );

    redis.stop();
    let other = access("t2", "g2", None, NOW + HOUR);
    store.insert_token(&other).await.unwrap();
    assert_eq!(store.token_by_hash("t2").await.unwrap(), Some(other));
    store.revoke_grant("g2", NOW).await.unwrap();
    assert!(store.token_by_hash("t2").await.unwrap().unwrap().revoked);
}

/// A request that goes away in the middle of a store transaction (a client closing its connection,
/// as every load generator does at the end of a run) must not leave its pooled connection inside
/// that transaction: the connection would read one old snapshot for ever, or hold the write lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_transaction_leaves_no_connection_behind_in_it() {
    let (store, _dir) = open_sqlite().await;
    let store: Arc<dyn Store> = Arc::new(store);
    for n in 0..300 {
        store
            .insert_user(
                &user(&format!("old-{n}"), &format!("old{n}")),
                UserOrigin::Scim,
            )
            .await
            .unwrap();
    }
    // Listings dropped at every point of their way, some while their snapshot transaction
    // begins: after 0, 1, 2… turns of the runtime, from several tasks at once.
    let cancelling = (0..8).map(|task| {
        let store = store.clone();
        tokio::spawn(async move {
            let query = listing(&USER_TYPE, filtered(r#"userName sw "old""#));
            for n in 0..100 {
                tokio::select! {
                    biased;
                    _ = store.list_users(&query) => {}
                    _ = turns((n + task) % 25) => {}
                }
            }
        })
    });
    for task in cancelling.collect::<Vec<_>>() {
        task.await.unwrap();
    }
    for n in 0..30 {
        let new = user(&format!("id-{n}"), &format!("u{n}"));
        store.insert_user(&new, UserOrigin::Scim).await.unwrap();
        let read = store.user(&new.id).await.unwrap();
        assert_eq!(
            read.map(|u| u.username),
            Some(new.username),
            "read {n} sees the write before it"
        );
    }
}

async fn turns(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}
