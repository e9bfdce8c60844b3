//! `TESSERA_SEED_FILE`: users and clients declared in TOML, applied at every start, idempotently.

use reqwest::StatusCode;
use tessera::store::query::ListQuery;

use crate::harness::{post_token, TestServer, PASSWORD};

const SECRET: &str = "a-client-secret-of-at-least-32-characters";

fn seed_file(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("seed.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn declared() -> String {
    format!(
        r#"
[[users]]
username = "ada"
password = "{PASSWORD}"
email = "ada@example.com"
given_name = "Ada"

[[clients]]
client_id = "svc"
client_secret = "{SECRET}"
grant_types = ["client_credentials"]
scope = "read"
"#
    )
}

#[tokio::test]
async fn a_seed_file_is_applied_at_every_start_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let path = seed_file(dir.path(), &declared());
    let seeded = |path: String| move |c: &mut tessera::Config| c.seed_file = Some(path);
    let server = TestServer::start_with(seeded(path.clone())).await;
    let store = server.state.store.clone();
    let ada = store
        .user_by_username("ada")
        .await
        .unwrap()
        .expect("seeded");
    assert_eq!(ada.email(), Some("ada@example.com"));
    let (status, _, body) = post_token(
        &server,
        Some(("svc", SECRET)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Applying the same file again (a restart) changes nothing.
    tessera::seed::apply_file(store.as_ref(), &server.state.passwords, &path)
        .await
        .unwrap();
    let again = store.user_by_username("ada").await.unwrap().unwrap();
    assert_eq!(again, ada, "same id, same hash, same version");
    let everyone = ListQuery {
        filter: None,
        sort: None,
        start_index: 1,
        count: 10,
    };
    let page = store.list_users(&everyone).await.unwrap();
    assert_eq!(page.total, 1);

    // A changed file updates the entry in place.
    let changed = declared().replace("ada@example.com", "ada@lovelace.example");
    tessera::seed::apply_file(
        store.as_ref(),
        &server.state.passwords,
        &seed_file(dir.path(), &changed),
    )
    .await
    .unwrap();
    let updated = store.user_by_username("ada").await.unwrap().unwrap();
    assert_eq!(
        (updated.id.as_str(), updated.email()),
        (ada.id.as_str(), Some("ada@lovelace.example"))
    );
    assert_eq!(updated.version, ada.version + 1);
}

#[tokio::test]
async fn a_bad_seed_file_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    for (text, mentions) in [
        (
            "[[clients]]\nclient_id = \"svc\"\ngrant_types = [\"client_credentials\"]\n",
            "client_secret",
        ),
        ("[[users]]\nusername = \"ada\"\n", "password"),
        (
            "[[users]]\nusername = \"ada\"\npassword_hash = \"plain\"\n",
            "argon2",
        ),
        ("[[users]]\nname = \"ada\"\n", "unknown field"),
    ] {
        let path = seed_file(dir.path(), text);
        let mut config = tessera::Config {
            store: tessera::config::StoreSettings {
                database_url: format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
                ..tessera::Config::default().store
            },
            seed_file: Some(path),
            ..tessera::Config::default()
        };
        config.validate().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let error = tessera::build_on(listener, config)
            .await
            .err()
            .expect("refused");
        let message = format!("{error:#}");
        assert!(message.contains(mentions), "{message}");
    }
}
