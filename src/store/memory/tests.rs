//! What is easy to get subtly wrong: SCIM filter meaning, sort order and paging, the writes that
//! touch other records' versions, and the atomic claims under concurrency. Queries are built by
//! the SCIM layer's own parser and resolver, as in production.

use std::sync::Arc;

use serde_json::{json, Value};

use super::MemoryStore;
use crate::scim::query::ListParams;
use crate::scim::schema::{ResourceType, GROUP_TYPE, USER_TYPE};
use crate::store::query::{Attr, AttrKind, CompValue, CompareOp, Filter, ListQuery, Sort};
use crate::store::*;

fn user(id: &str, username: &str, created_at: UnixTime, attributes: Value) -> User {
    User {
        id: id.into(),
        username: username.into(),
        password_hash: None,
        active: true,
        attributes: attributes.as_object().cloned().unwrap_or_default(),
        version: 1,
        created_at,
        updated_at: created_at,
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
        attributes: Attributes::new(),
        version: 1,
        created_at: 50,
        updated_at: 50,
    }
}

/// Four users with different gaps, in two groups.
async fn directory() -> MemoryStore {
    let store = MemoryStore::new();
    let users = [
        user(
            "u1",
            "alice",
            100,
            json!({
                "displayName": "Alice Smith",
                "title": "Engineer",
                "emails": [
                    {"value": "zed@home.example", "type": "home"},
                    {"value": "Alice@Work.example", "type": "work", "primary": true},
                ],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
            }),
        ),
        user("u2", "bob", 200, json!({"title": "", "emails": []})),
        User {
            active: false,
            ..user(
                "u3",
                "Carol",
                300,
                json!({
                    "name": {"givenName": "Carol"},
                    "title": "engineering lead",
                    "emails": [{"value": "carol@work.example", "type": "work"}],
                }),
            )
        },
        user(
            "u4",
            "dave",
            400,
            json!({"displayName": "dave d", "emails": [{"value": "b@x.example"}]}),
        ),
    ];
    for u in &users {
        store.insert_user(u).await.expect("insert user");
    }
    for g in [
        group("g1", "Admins", &["u1", "u3"]),
        group("g2", "staff", &["u2"]),
    ] {
        store.insert_group(&g).await.expect("insert group");
    }
    store
}

fn listing(rt: &ResourceType, params: ListParams) -> ListQuery {
    params.listing(rt).expect("a valid listing").query
}

fn filtered(filter: &str) -> ListParams {
    ListParams {
        filter: Some(filter.into()),
        ..ListParams::default()
    }
}

fn sorted(sort_by: &str, descending: bool) -> ListParams {
    ListParams {
        sort_by: Some(sort_by.into()),
        sort_order: descending.then(|| "descending".into()),
        ..ListParams::default()
    }
}

async fn user_ids(store: &MemoryStore, params: ListParams) -> Vec<String> {
    let page = store.list_users(&listing(&USER_TYPE, params)).await;
    page.expect("listing")
        .items
        .into_iter()
        .map(|u| u.id)
        .collect()
}

#[tokio::test]
async fn user_filters_mean_what_the_sql_backend_means() {
    let store = directory().await;
    let cases: &[(&str, &[&str])] = &[
        // "" is not present, and neither is a missing attribute, which `not` turns true.
        ("title pr", &["u1", "u3"]),
        ("not (title pr)", &["u2", "u4"]),
        ("title eq \"ENGINEER\"", &["u1"]),
        // `ne` is `not eq`: a missing title is not "engineer".
        ("title ne \"engineer\"", &["u2", "u3", "u4"]),
        ("not (title eq \"engineer\")", &["u2", "u3", "u4"]),
        // Every present string contains "".
        ("title co \"\"", &["u1", "u2", "u3"]),
        ("title sw \"ENG\"", &["u1", "u3"]),
        ("title gt \"engineer\"", &["u3"]),
        ("userName eq \"CAROL\"", &["u3"]),
        ("userName sw \"c\"", &["u3"]),
        ("id eq \"U1\"", &[]),
        ("active eq false", &["u3"]),
        ("meta.created gt \"1970-01-01T00:03:20Z\"", &["u3", "u4"]),
        // Joining a group (at its creation, 50) modified u1, u2 and u3.
        (
            "meta.lastModified le \"1970-01-01T00:03:20Z\"",
            &["u1", "u2", "u3"],
        ),
        ("name.givenName sw \"car\"", &["u3"]),
        ("department eq \"r&d\"", &["u1"]),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr",
            &["u1"],
        ),
        // Multi-valued attributes match when one element does; an empty list has none.
        ("emails pr", &["u1", "u3", "u4"]),
        ("emails co \"WORK\"", &["u1", "u3"]),
        ("emails.type eq null", &["u4"]),
        ("emails[type eq \"work\" and value sw \"alice\"]", &["u1"]),
        ("emails[type eq \"home\" and value sw \"alice\"]", &[]),
        ("not (emails[type eq \"work\"])", &["u2", "u4"]),
        // Memberships.
        ("groups.display eq \"ADMINS\"", &["u1", "u3"]),
        ("groups[value eq \"g2\"]", &["u2"]),
        ("groups eq \"g1\"", &["u1", "u3"]),
        ("not (groups pr)", &["u4"]),
        (
            "displayName co \"smith\" or title ew \"LEAD\"",
            &["u1", "u3"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            user_ids(&store, filtered(filter)).await,
            *expected,
            "filter {filter}"
        );
    }
}

#[tokio::test]
async fn only_unique_names_fold_beyond_ascii() {
    // SQL's lower() folds ASCII only (SQLite, PostgreSQL's C locale); user names are stored
    // folded by Rust, like their uniqueness check.
    let store = MemoryStore::new();
    let olaf = user("u1", "ÅSA", 1, json!({"displayName": "Ölaf OK"}));
    store.insert_user(&olaf).await.expect("insert");
    let cases: &[(&str, &[&str])] = &[
        ("userName eq \"åsa\"", &["u1"]),
        ("displayName eq \"Ölaf ok\"", &["u1"]),
        ("displayName eq \"ölaf ok\"", &[]),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            user_ids(&store, filtered(filter)).await,
            *expected,
            "filter {filter}"
        );
    }
}

#[tokio::test]
async fn group_filters_see_members() {
    let store = directory().await;
    let cases: &[(&str, &[&str])] = &[
        ("displayName eq \"ADMINS\"", &["g1"]),
        // A member without displayName shows its user name.
        ("members.display eq \"BOB\"", &["g2"]),
        ("members.display sw \"alice\"", &["g1"]),
        ("members[value eq \"u3\"]", &["g1"]),
        ("members eq \"U3\"", &[]),
        ("not (members pr)", &[]),
    ];
    for (filter, expected) in cases {
        let query = listing(&GROUP_TYPE, filtered(filter));
        let page = store.list_groups(&query, false).await.expect("listing");
        let ids: Vec<String> = page.items.into_iter().map(|g| g.id).collect();
        assert_eq!(ids, *expected, "filter {filter}");
    }
}

#[tokio::test]
async fn unqueryable_attributes_fail_even_without_data() {
    let store = MemoryStore::new();
    let meta_version = Attr {
        schema: None,
        name: "meta",
        sub: Some("version"),
        kind: AttrKind::String,
        case_exact: true,
        multi_valued: false,
    };
    let group_type = Attr {
        name: "groups",
        sub: Some("type"),
        multi_valued: true,
        ..meta_version
    };
    for attr in [meta_version, group_type] {
        let by_filter = ListQuery {
            filter: Some(Filter::Compare {
                attr,
                op: CompareOp::Eq,
                value: CompValue::String("x".into()),
            }),
            sort: None,
            start_index: 1,
            count: 0,
        };
        let by_sort = ListQuery {
            filter: None,
            sort: Some(Sort {
                attr,
                descending: false,
            }),
            ..by_filter.clone()
        };
        for query in [by_filter, by_sort] {
            let result = store.list_users(&query).await;
            assert!(
                matches!(result, Err(StoreError::Unsupported(_))),
                "{attr:?}"
            );
        }
    }
}

#[tokio::test]
async fn missing_values_sort_last_both_ways() {
    let store = directory().await;
    let cases: &[(&str, bool, &[&str])] = &[
        ("title", false, &["u2", "u1", "u3", "u4"]),
        ("title", true, &["u3", "u1", "u2", "u4"]),
        // A list sorts by its primary value (u1: alice@work, not zed@home), else its first.
        ("emails", false, &["u1", "u4", "u3", "u2"]),
        ("emails", true, &["u3", "u4", "u1", "u2"]),
        ("userName", true, &["u4", "u3", "u2", "u1"]),
        // A relation sorts by its least value; ties go by id.
        ("groups.display", false, &["u1", "u3", "u2", "u4"]),
        ("groups.display", true, &["u2", "u1", "u3", "u4"]),
        ("meta.created", true, &["u4", "u3", "u2", "u1"]),
        ("active", false, &["u3", "u1", "u2", "u4"]),
    ];
    for (sort_by, descending, expected) in cases {
        assert_eq!(
            user_ids(&store, sorted(sort_by, *descending)).await,
            *expected,
            "sort by {sort_by}, descending {descending}"
        );
    }
}

#[tokio::test]
async fn pages_count_every_match() {
    let store = directory().await;
    let page = |start: u64, count: u64| ListQuery {
        filter: None,
        sort: None,
        start_index: start,
        count,
    };
    let listed = store.list_users(&page(2, 2)).await.expect("listing");
    let ids: Vec<&str> = listed.items.iter().map(|u| u.id.as_str()).collect();
    assert_eq!((listed.total, ids), (4, vec!["u2", "u3"]));
    let only_total = store.list_users(&page(1, 0)).await.expect("listing");
    assert_eq!((only_total.total, only_total.items.len()), (4, 0));
    let beyond = store.list_users(&page(9, 10)).await.expect("listing");
    assert_eq!((beyond.total, beyond.items.len()), (4, 0));
}

#[tokio::test]
async fn directory_writes_move_the_versions_they_change() {
    let store = directory().await;
    let version = |store: &MemoryStore, id: &'static str| {
        let store = store.clone();
        async move { store.user(id).await.expect("read").expect("user").version }
    };
    // Joining a group at its creation gave u1, u2 and u3 version 2. Now rename g1 and swap
    // carol for bob: alice stays (+1 rename), carol leaves (+1 rename, +1 left), bob joins (+1).
    let mut g1 = store.group("g1").await.expect("read").expect("group");
    assert_eq!(
        g1.members
            .iter()
            .map(|m| m.display.as_str())
            .collect::<Vec<_>>(),
        ["Alice Smith", "Carol"]
    );
    g1.display_name = "Administrators".into();
    g1.members = group("g1", "", &["u1", "u2"]).members;
    g1.version = 2;
    assert_eq!(
        store.update_group(&g1, 1, 500).await.expect("update"),
        Update::Done
    );
    assert_eq!(
        store.update_group(&g1, 1, 500).await.expect("update"),
        Update::Stale
    );
    assert_eq!(version(&store, "u1").await, 3);
    assert_eq!(version(&store, "u2").await, 3);
    assert_eq!(version(&store, "u3").await, 4);
    assert_eq!(version(&store, "u4").await, 1);

    // Unknown members and taken names leave everything as it was.
    let mut bad = g1.clone();
    bad.members = group("g1", "", &["u1", "nobody"]).members;
    let missing = store.update_group(&bad, 2, 600).await;
    assert!(matches!(missing, Err(StoreError::MissingReference(m)) if m == "user nobody"));
    bad = Group {
        display_name: "STAFF".into(),
        ..g1.clone()
    };
    let taken = store.update_group(&bad, 2, 600).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))));
    let stored = store.group("g1").await.expect("read").expect("group");
    assert_eq!(
        (stored.version, stored.display_name.as_str()),
        (2, "Administrators")
    );

    // A new display name shows in the user's groups.
    let mut alice = store.user("u1").await.expect("read").expect("user");
    alice
        .attributes
        .insert("displayName".into(), json!("Alice S."));
    alice.version = 4;
    assert_eq!(
        store.update_user(&alice, 3, 700).await.expect("update"),
        Update::Done
    );
    let stored = store.group("g1").await.expect("read").expect("group");
    assert_eq!((stored.version, stored.updated_at), (3, 700));
    let staff = store.group("g2").await.expect("read").expect("group");
    assert_eq!(staff.version, 1, "alice is no member of staff");
}

#[tokio::test]
async fn user_names_are_unique_case_insensitively() {
    let store = directory().await;
    let clash = store.insert_user(&user("u9", "ALICE", 1, json!({}))).await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))));
    let found = store.user_by_username("AlIcE").await.expect("lookup");
    assert_eq!(found.map(|u| u.id).as_deref(), Some("u1"));
    // Renaming to one's own name in other case is no clash.
    let mut alice = store.user("u1").await.expect("read").expect("user");
    alice.username = "Alice".into();
    let update = store.update_user(&alice, alice.version, 5).await;
    assert_eq!(update.expect("update"), Update::Done);
}

fn code(grant_id: &str, user_id: &str, expires_at: UnixTime) -> AuthCode {
    AuthCode {
        grant_id: grant_id.into(),
        client_id: "client".into(),
        user_id: user_id.into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: "openid".into(),
        nonce: None,
        code_challenge: "challenge".into(),
        session_id: "session".into(),
        auth_time: 1,
        acr: "1".into(),
        amr: vec!["pwd".into()],
        expires_at,
    }
}

fn token(hash: &str, grant_id: &str, user_id: &str, expires_at: UnixTime) -> TokenRecord {
    TokenRecord {
        token_hash: hash.into(),
        jti: format!("jti-{hash}"),
        grant_id: grant_id.into(),
        client_id: "client".into(),
        user_id: Some(user_id.into()),
        scope: "openid".into(),
        mfa_verified: false,
        acr: None,
        amr: Vec::new(),
        auth_time: None,
        issued_at: 1,
        expires_at,
        revoked: false,
    }
}

fn refresh(hash: &str, family_id: &str, expires_at: UnixTime) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.into(),
        family_id: family_id.into(),
        client_id: "client".into(),
        user_id: "u1".into(),
        scope: "openid offline_access".into(),
        session_id: Some("session".into()),
        auth_time: 1,
        acr: "1".into(),
        amr: Vec::new(),
        issued_at: 1,
        expires_at,
        rotated_at: None,
        replaced_by: None,
        grace_used: false,
        revoked: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_have_one_winner() {
    let store = Arc::new(MemoryStore::new());
    store
        .insert_code("code", &code("grant", "u1", 100))
        .await
        .expect("insert");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.redeem_code("code", 50).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task").expect("redeem"));
    }
    let winners = outcomes
        .iter()
        .filter(|o| matches!(o, CodeRedemption::Redeemed(_)))
        .count();
    assert_eq!(winners, 1);
    let replay = CodeRedemption::AlreadyRedeemed {
        grant_id: "grant".into(),
    };
    assert_eq!(outcomes.iter().filter(|o| **o == replay).count(), 31);

    store
        .insert_code("late", &code("grant2", "u1", 100))
        .await
        .expect("insert");
    assert_eq!(
        store.redeem_code("late", 100).await.expect("redeem"),
        CodeRedemption::Invalid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_have_one_winner() {
    let store = Arc::new(MemoryStore::new());
    store
        .insert_refresh_token(&refresh("old", "family", 1000))
        .await
        .expect("insert");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let new = refresh(&format!("new{i}"), "family", 2000);
                let outcome = store.rotate_refresh_token("old", &new, 10).await;
                (new.token_hash, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (hash, outcome) = task.await.expect("task");
        if outcome.expect("rotate") == Rotation::Rotated {
            winners.push(hash);
        }
    }
    assert_eq!(winners.len(), 1);
    let old = store
        .refresh_token("old")
        .await
        .expect("read")
        .expect("old");
    assert_eq!(
        (old.rotated_at, old.replaced_by),
        (Some(10), Some(winners[0].clone()))
    );
}

#[tokio::test]
async fn the_grace_retry_replaces_an_unused_successor_once() {
    let store = MemoryStore::new();
    let token = |hash: &str| refresh(hash, "family", 1000);
    store
        .insert_refresh_token(&token("old"))
        .await
        .expect("insert");
    let rotated = store.rotate_refresh_token("old", &token("s1"), 100).await;
    assert_eq!(rotated.expect("rotate"), Rotation::Rotated);
    // Only a rotation at or after `rotated_since` may be retried.
    let too_late = store.replace_successor("old", 101, &token("s2"), 102).await;
    assert_eq!(too_late.expect("replace"), Rotation::Lost);
    let retried = store.replace_successor("old", 90, &token("s2"), 102).await;
    assert_eq!(retried.expect("replace"), Rotation::Rotated);
    let s1 = store.refresh_token("s1").await.expect("read").expect("s1");
    assert!(s1.revoked);
    let old = store
        .refresh_token("old")
        .await
        .expect("read")
        .expect("old");
    assert_eq!(
        (old.grace_used, old.replaced_by.as_deref()),
        (true, Some("s2"))
    );
    // Once per token.
    let again = store.replace_successor("old", 90, &token("s3"), 103).await;
    assert_eq!(again.expect("replace"), Rotation::Lost);
}

#[tokio::test]
async fn revoking_a_grant_counts_what_it_ended() {
    let store = MemoryStore::new();
    for hash in ["t1", "t2"] {
        store
            .insert_token(&token(hash, "grant", "u1", 1000))
            .await
            .expect("insert");
    }
    store
        .insert_refresh_token(&refresh("r1", "grant", 1000))
        .await
        .expect("insert");
    store
        .insert_code("code", &code("grant", "u1", 1000))
        .await
        .expect("insert");
    assert_eq!(store.revoke_grant("grant", 5).await.expect("revoke"), 4);
    assert_eq!(store.revoke_grant("grant", 6).await.expect("revoke"), 0);
    assert_eq!(
        store.redeem_code("code", 7).await.expect("redeem"),
        CodeRedemption::AlreadyRedeemed {
            grant_id: "grant".into()
        }
    );
    assert_eq!(
        store.grants_of_session("session").await.expect("grants"),
        ["grant"]
    );
}

#[tokio::test]
async fn deactivation_and_deletion_end_access() {
    let store = directory().await;
    store
        .insert_token(&token("t1", "grant", "u3", 1000))
        .await
        .expect("insert");
    store
        .put_artifact(ArtifactKind::Session, "s", Some("u1"), "{}", 1000)
        .await
        .expect("put");
    // Carol is inactive already; updating her (still inactive) revokes what she holds.
    let carol = store.user("u3").await.expect("read").expect("user");
    let update = store.update_user(&carol, carol.version, 9).await;
    assert_eq!(update.expect("update"), Update::Done);
    assert!(
        store
            .token_by_hash("t1")
            .await
            .expect("read")
            .expect("token")
            .revoked
    );

    assert!(store.delete_user("u1", 10).await.expect("delete"));
    assert!(!store.delete_user("u1", 10).await.expect("delete"));
    let artifact = store.artifact(ArtifactKind::Session, "s", 0).await;
    assert_eq!(artifact.expect("read"), None);
    let g1 = store.group("g1").await.expect("read").expect("group");
    assert_eq!((g1.version, g1.members.len()), (2, 1));
    let refs = store.memberships(&["u1".into(), "u3".into()]).await;
    assert_eq!(refs.expect("memberships").len(), 1);
}

#[tokio::test]
async fn artifacts_expire_and_purges_go_in_batches() {
    let store = MemoryStore::new();
    store
        .put_artifact(ArtifactKind::Interaction, "i", None, "payload", 100)
        .await
        .expect("put");
    let read = |now| store.artifact(ArtifactKind::Interaction, "i", now);
    assert_eq!(read(99).await.expect("read").as_deref(), Some("payload"));
    assert_eq!(read(100).await.expect("read"), None);

    for i in 0..3 {
        let hash = format!("t{i}");
        store
            .insert_token(&token(&hash, "g", "u1", 10))
            .await
            .expect("insert");
        store
            .insert_code(&hash, &code("g", "u1", 10))
            .await
            .expect("insert");
    }
    // Codes are kept until `codes_expired_before`; tokens go once expired at `now`.
    assert_eq!(store.purge_expired(200, 5, 2).await.expect("purge"), 3);
    assert_eq!(store.purge_expired(200, 5, 2).await.expect("purge"), 1);
    assert_eq!(store.purge_expired(200, 11, 2).await.expect("purge"), 2);
    assert_eq!(store.purge_expired(200, 11, 2).await.expect("purge"), 1);
    assert_eq!(store.purge_expired(200, 11, 2).await.expect("purge"), 0);
    // A purged token's jti may be used again.
    let reused = store.insert_token(&token("t0", "g", "u1", 10)).await;
    assert!(reused.is_ok());
}

#[tokio::test]
async fn totp_enrollment_and_its_counters() {
    let store = directory().await;
    assert!(store.put_pending_totp("u1", "seed1", 1).await.expect("put"));
    assert!(store.put_pending_totp("u1", "seed2", 2).await.expect("put"));
    assert!(store.put_pending_totp("nobody", "seed", 2).await.is_err());
    let codes = ["c1".to_string(), "c2".to_string()];
    assert!(
        !store.use_totp_step("u1", 5).await.expect("step"),
        "unconfirmed"
    );
    assert!(store
        .confirm_totp("u1", "seed2", 10, &codes)
        .await
        .expect("confirm"));
    assert!(!store
        .confirm_totp("u1", "seed2", 11, &codes)
        .await
        .expect("confirm"));
    assert!(!store.put_pending_totp("u1", "seed3", 3).await.expect("put"));
    let totp = store.totp("u1").await.expect("read").expect("totp");
    assert_eq!(
        (totp.secret_sealed.as_str(), totp.last_used_step),
        ("seed2", 10)
    );

    assert!(!store.use_totp_step("u1", 10).await.expect("step"));
    assert!(store.use_totp_step("u1", 11).await.expect("step"));
    assert!(store.use_recovery_code("u1", "c1").await.expect("code"));
    assert!(!store.use_recovery_code("u1", "c1").await.expect("code"));

    // The windowed and consecutive counts are checked in the backend suite
    // (tests/it/store_suite.rs), which runs on this store too.
    assert!(store.delete_mfa("u1").await.expect("delete"));
    assert!(!store.use_recovery_code("u1", "c2").await.expect("code"));
    assert!(!store.delete_mfa("u1").await.expect("delete"));
}

#[tokio::test]
async fn unique_keys_conflict() {
    let store = directory().await;
    let taken = store.insert_group(&group("g9", "ADMINS", &[])).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))));
    let key = SigningKeyRecord {
        kid: "k1".into(),
        alg: "ES256".into(),
        private_pem: "pem".into(),
        created_at: 1,
    };
    store.insert_signing_key(&key).await.expect("insert");
    let second = SigningKeyRecord {
        kid: "k0".into(),
        ..key.clone()
    };
    store.insert_signing_key(&second).await.expect("insert");
    let again = store.insert_signing_key(&key).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))));
    let kids: Vec<String> = store
        .signing_keys()
        .await
        .expect("keys")
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["k1", "k0"], "insertion order");
}
