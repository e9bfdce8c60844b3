//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz): each takes arbitrary bytes,
//! runs one parser on them the way a request would, and may fail only by panicking or hanging.
//! The integration suite replays every corpus file and kept crasher through these same
//! functions (`tests/it/fuzz_corpus.rs`), so a fixed crash stays fixed without the fuzzer.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue};
use serde_json::{json, Value};

use crate::account::password::PasswordHasher;
use crate::keys::{self, KeyRing, SigningAlg};
use crate::oauth::{authorize, client_auth, params::Params};
use crate::scim::{filter, patch, query, schema};
use crate::store::{Client, SqlStore};
use crate::tokens::hint;

/// A target: arbitrary bytes in, a panic or a hang the only failure.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/` file and corpus folder.
pub const TARGETS: [(&str, Target); 6] = [
    ("scim_filter", scim_filter),
    ("scim_patch", scim_patch),
    ("authorize_params", authorize_params),
    ("form_body", form_body),
    ("id_token_hint", id_token_hint),
    ("seed_file", seed_file),
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A `filter` query parameter (RFC 7644 §3.4.2.2): parsed, resolved against both resource
/// types, and used as a PATCH value filter on a sample element.
pub fn scim_filter(data: &[u8]) {
    let Some(input) = text(data) else { return };
    let Ok(parsed) = filter::parse_filter(input) else {
        return;
    };
    for rt in [&schema::USER_TYPE, &schema::GROUP_TYPE] {
        if let Ok(resolved) = query::resolve_filter(rt, parsed.clone()) {
            resolved.matches(&json!({"value": "a@example.com", "type": "work"}));
        }
    }
}

/// A PATCH body (RFC 7644 §3.5.2), applied to a sample user; its bytes also as a bare path.
pub fn scim_patch(data: &[u8]) {
    let Some(input) = text(data) else { return };
    let _ = filter::parse_path(input);
    let Ok(body) = serde_json::from_str::<Value>(input) else {
        return;
    };
    let Ok(operations) = patch::operations(&body) else {
        return;
    };
    let Value::Object(mut doc) = json!({
        "userName": "ada",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
        schema::ENTERPRISE_USER_SCHEMA: {"department": "R&D"},
    }) else {
        return;
    };
    let _ = patch::apply(&schema::USER_TYPE, &mut doc, &operations);
}

/// An authorization request's query string (RFC 6749 §4.1.1) for a registered client.
pub fn authorize_params(data: &[u8]) {
    static CLIENT: LazyLock<Client> = LazyLock::new(|| Client {
        client_id: "app".into(),
        redirect_uris: vec!["https://app.example/cb".into()],
        grant_types: vec!["authorization_code".into()],
        scope: "openid profile email offline_access".into(),
        ..Client::default()
    });
    let Some(input) = text(data) else { return };
    if let Ok(params) = Params::parse(input) {
        let _ = authorize::validate(&CLIENT, &params);
    }
}

/// A back-channel form body (RFC 6749 §3.2) and, the same bytes, an `Authorization: Basic`
/// value (§2.3.1).
pub fn form_body(data: &[u8]) {
    let Some(input) = text(data) else { return };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    if let Ok(params) = Params::from_form(&headers, input) {
        let _ = params.get("grant_type");
    }
    let _ = client_auth::parse_basic(input);
}

/// An `id_token_hint` (OIDC Core §3.1.2.1): a compact JWS checked against a key ring of every
/// algorithm Tessera signs with.
pub fn id_token_hint(data: &[u8]) {
    static KEYS: LazyLock<KeyRing> = LazyLock::new(|| {
        let records: Vec<_> = SigningAlg::ALL
            .into_iter()
            .map(|alg| keys::generate(alg, 0).expect("a signing key"))
            .collect();
        KeyRing::from_records(&records, 0).expect("a key ring")
    });
    let Some(token) = text(data) else { return };
    let _ = hint::verify(&KEYS, "https://tessera.example", token);
}

/// A seed file (`TESSERA_SEED_FILE`), applied to an in-memory store. One store serves every
/// input (a new database per input would cost its migrations each time), so a later input may
/// meet the users and clients of earlier ones, as a seed applied at every start does.
pub fn seed_file(data: &[u8]) {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime")
    });
    static STORE: LazyLock<SqlStore> = LazyLock::new(|| {
        RUNTIME
            .block_on(SqlStore::in_memory())
            .expect("an in-memory store")
    });
    static HASHER: LazyLock<PasswordHasher> = LazyLock::new(|| PasswordHasher::new(1));
    let Some(input) = text(data) else { return };
    let _ = RUNTIME.block_on(crate::seed::apply_text(&*STORE, &HASHER, input));
}
