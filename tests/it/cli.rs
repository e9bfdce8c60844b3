//! The bootstrap CLI as CONTRACT.md describes it, run as the real binary against a real database,
//! and a running server that sees what the CLI wrote.

use std::process::Output;

use crate::harness::*;

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn fails_with_one_line(output: &Output, mentions: &str) {
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(mentions), "{stderr}");
}

#[tokio::test]
async fn cli_bootstraps_users_and_clients_that_a_running_server_uses() {
    let server = TestServer::start().await;
    let db = server.database_url.clone();

    let user_id = stdout(&run_cli(
        &db,
        &[
            "user",
            "create",
            "--username",
            "grace",
            "--email",
            "g@example.com",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    ));
    assert!(
        uuid::Uuid::parse_str(user_id.trim()).is_ok(),
        "prints a UUID: {user_id}"
    );
    fails_with_one_line(
        &run_cli(
            &db,
            &["user", "create", "--username", "GRACE", "--password-stdin"],
            "x\n",
        ),
        "already exists",
    );

    let created = stdout(&run_cli(
        &db,
        &[
            "client",
            "create",
            "--client-id",
            "cli-app",
            "--redirect-uri",
            REDIRECT_URI,
            "--scope",
            "openid profile email offline_access",
            "--json",
        ],
        "",
    ));
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    assert_eq!(created["client_id"], "cli-app");
    let secret = created["client_secret"]
        .as_str()
        .expect("a confidential client gets a secret")
        .to_string();

    let public = stdout(&run_cli(
        &db,
        &[
            "client",
            "create",
            "--client-id",
            "cli-spa",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--json",
        ],
        "",
    ));
    let public: serde_json::Value = serde_json::from_str(&public).unwrap();
    assert!(public.get("client_secret").is_none(), "{public}");

    fails_with_one_line(
        &run_cli(
            &db,
            &[
                "client",
                "create",
                "--client-id",
                "bad",
                "--redirect-uri",
                "http://rp.example/cb",
            ],
            "",
        ),
        "https",
    );
    fails_with_one_line(
        &run_cli(
            &db,
            &[
                "client",
                "create",
                "--client-id",
                "bad",
                "--grant",
                "password",
                "--redirect-uri",
                REDIRECT_URI,
            ],
            "",
        ),
        "unknown grant",
    );
    fails_with_one_line(
        &run_cli(&db, &["client", "create", "--client-id", "nouri"], ""),
        "redirect-uri",
    );
    fails_with_one_line(
        &run_cli(
            &db,
            &[
                "client",
                "create",
                "--client-id",
                "cli-app",
                "--redirect-uri",
                REDIRECT_URI,
            ],
            "",
        ),
        "already exists",
    );

    // The running server sees both at once: the CLI user signs in to the CLI client.
    let rp = RelyingParty::discover(&server, "cli-app", Some(secret)).await;
    let (tokens, _) = sign_in(&server, &rp, &Browser::new(&server), "grace", &["profile"]).await;
    let id_token = openidconnect::TokenResponse::id_token(&tokens).unwrap();
    let claims = decode_segment(&id_token.to_string(), 1);
    assert_eq!(claims["sub"], user_id.trim());
}

#[test]
fn password_stdin_strips_exactly_one_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::harness::test_database(dir.path());
    stdout(&run_cli(
        &db,
        &["user", "create", "--username", "nl", "--password-stdin"],
        "pw\n\n",
    ));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = tessera::store::SqlStore::connect(&db, &tessera::Config::default().store.pool)
            .await
            .unwrap();
        let hasher = tessera::account::password::PasswordHasher::new(1);
        let ok = |pw: &str| tessera::account::users::authenticate(&store, &hasher, "nl", pw.into());
        assert!(
            ok("pw\n").await.unwrap().is_some(),
            "only one newline is stripped"
        );
        assert!(ok("pw").await.unwrap().is_none());
    });
}

#[test]
fn the_cli_refuses_to_create_users_or_clients_on_backends_that_keep_them_in_server_memory() {
    for backend in ["memory", "hybrid"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args([
                "client",
                "create",
                "--client-id",
                "svc",
                "--grant",
                "client_credentials",
            ])
            .env("STORE_BACKEND", backend)
            .output()
            .unwrap();
        fails_with_one_line(&output, "TESSERA_SEED_FILE");
    }
}
