//! Micro-benchmarks of the token endpoint's and SCIM's CPU work (issue 8): `cargo bench`.
//! The load benchmark (`bench/run.sh`) measures whole requests; these isolate the pieces.

use std::hint::black_box;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::json;
use sha2::{Digest, Sha256};
use tessera::account::session::Authentication;
use tessera::config::Config;
use tessera::keys::{self, KeyRing, SigningAlg};
use tessera::oauth::pkce::Challenge;
use tessera::scim::filter::parse_filter;
use tessera::scim::query::ListParams;
use tessera::scim::schema::USER_TYPE;
use tessera::store::{Client, SqlStore, User, UserOrigin, UserStore};
use tessera::tokens::id_token::IdTokenFacts;

const ALGS: [SigningAlg; 3] = [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa];

fn key_ring() -> KeyRing {
    let records: Vec<_> = ALGS
        .iter()
        .map(|&alg| keys::generate(alg, 0).expect("key generation"))
        .collect();
    KeyRing::from_records(&records, i64::MAX).expect("a ring of fresh keys")
}

/// An access token's claims, as the token endpoint signs them.
fn access_claims() -> serde_json::Value {
    json!({
        "iss": "https://id.example.com", "sub": "3f1c2a9e-8d4b-4c1e-9f0a-2b7d5e6c8a91",
        "aud": "https://id.example.com", "exp": 1_900_000_000, "iat": 1_899_999_100,
        "jti": "0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b", "client_id": "web",
        "scope": "openid profile email offline_access",
    })
}

fn token_signing(c: &mut Criterion) {
    let ring = key_ring();
    let claims = access_claims();
    let mut group = c.benchmark_group("token_signing");
    for alg in ALGS {
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| ring.sign(alg, "at+jwt", black_box(&claims)).unwrap())
        });
    }
    group.finish();
}

fn id_token_building(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = Config::from_lookup(|name| (name == "STORE_BACKEND").then(|| "memory".into()))
        .expect("a memory-backend configuration");
    let app = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tessera::build_on(listener, config).await.unwrap()
    });
    let authentication = Authentication::password(1_899_999_000);
    let mut group = c.benchmark_group("id_token");
    for alg in ALGS {
        let client = Client {
            client_id: "web".into(),
            secret_hash: None,
            redirect_uris: vec!["https://app.example.com/cb".into()],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["authorization_code".into()],
            scope: "openid".into(),
            id_token_signed_response_alg: alg.as_str().into(),
            require_mfa: false,
            skip_consent: false,
            ..Client::default()
        };
        let facts = IdTokenFacts {
            client: &client,
            user_id: "3f1c2a9e-8d4b-4c1e-9f0a-2b7d5e6c8a91",
            nonce: Some("n-0S6_WzA2Mj"),
            authentication: &authentication,
            sid: Some("0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b"),
            access_token: "eyJhbGciOiJFUzI1NiJ9.e30.c2lnbmF0dXJl",
            groups: None,
            email: None,
        };
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| app.state().tokens.sign_id_token(black_box(&facts)).unwrap())
        });
    }
    group.finish();
}

const FILTER: &str = r#"userName sw "user-50" and (emails[type eq "work" and value co "@example.com"] or name.familyName eq "Family7") and not (active eq false)"#;

fn scim_filters(c: &mut Criterion) {
    c.bench_function("scim_filter/parse", |b| {
        b.iter(|| parse_filter(black_box(FILTER)).unwrap())
    });

    // Evaluation over 10,000 users, as the in-memory SQLite store runs a SCIM list.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(SqlStore::in_memory()).unwrap();
    runtime.block_on(async {
        for n in 0..10_000 {
            store.insert_user(&user(n), UserOrigin::Scim).await.unwrap();
        }
    });
    let query = ListParams {
        filter: Some(r#"userName sw "user-50" and name.familyName eq "Family7""#.into()),
        count: Some("20".into()),
        ..ListParams::default()
    }
    .listing(&USER_TYPE)
    .unwrap()
    .query;
    c.bench_function("scim_filter/evaluate_10k_users", |b| {
        b.iter(|| {
            runtime
                .block_on(store.list_users(black_box(&query)))
                .unwrap()
        })
    });
}

fn user(n: u32) -> User {
    let attributes = json!({
        "name": {"familyName": format!("Family{}", n % 97)},
        "emails": [{"value": format!("user-{n}@example.com"), "type": "work", "primary": true}],
    });
    User {
        id: format!("id-{n}"),
        username: format!("user-{n}"),
        password_hash: None,
        active: true,
        verified_email: None,
        attributes: attributes.as_object().unwrap().clone(),
        version: 1,
        created_at: 0,
        updated_at: 0,
    }
}

fn pkce_verification(c: &mut Criterion) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    let stored = Challenge::from_request(Some(&challenge), Some("S256")).unwrap();
    c.bench_function("pkce/verify_s256", |b| {
        b.iter_batched(
            || Challenge::from_stored(stored.as_stored().to_string()),
            |challenge| assert!(challenge.verify(black_box(verifier))),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(
    hot_paths,
    token_signing,
    id_token_building,
    scim_filters,
    pkce_verification
);
criterion_main!(hot_paths);
