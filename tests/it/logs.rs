//! Logs: JSON lines that carry the request id, and never a secret. A real `tessera serve` logs at
//! the most verbose level to a file while the test walks through every flow that handles a
//! secret; then the file is searched for each of them.

use std::process::Stdio;

use openidconnect::PkceCodeChallenge;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::*;
use crate::mfa::enroll;
use crate::process::{free_port, Deployment};

const WRONG_PASSWORD: &str = "not-the-password-but-close";
const SCIM_PASSWORD: &str = "a password set through SCIM";
const WEB_SECRET: &str = "the-web-client-secret-of-32-characters-or-more";
const ADMIN_SECRET: &str = "the-admin-client-secret-of-32-characters-or-more";

fn seed_file(dir: &std::path::Path) -> String {
    let path = dir.join("seed.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[users]]
username = "ada"
password = "{PASSWORD}"

[[clients]]
client_id = "web"
client_secret = "{WEB_SECRET}"
redirect_uris = ["{REDIRECT_URI}"]
grant_types = ["authorization_code", "refresh_token"]
scope = "openid profile offline_access"
skip_consent = true

[[clients]]
client_id = "admin"
client_secret = "{ADMIN_SECRET}"
grant_types = ["client_credentials"]
scope = "scim"
"#
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_ids_and_no_secret_of_any_flow() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = Deployment {
        env: vec![
            ("DATABASE_URL", test_database(dir.path())),
            ("TESSERA_SEED_FILE", seed_file(dir.path())),
            ("TESSERA_LOG", "trace".into()),
            ("TESSERA_LOG_FORMAT", "json".into()),
        ],
    };
    let log_path = dir.path().join("serve.log");
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = deployment.spawn_with_stdout(&issuer, port, Stdio::from(log));
    server.wait_ready().await;

    let (_, recovery_codes, seed) = enroll(&issuer, &Browser::for_issuer(&issuer), "ada").await;

    // A code flow: a wrong password first, then the password and a recovery code.
    let browser = Browser::for_issuer(&issuer);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut authorize = url::Url::parse(&server.url("/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "web")
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", "openid profile offline_access")
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");
    let (_, login) = browser.visit(authorize.as_str()).await.page();
    let csrf = form_inputs(&login)["csrf_token"].clone();
    let (status, _) = browser
        .submit(
            &login,
            "/login",
            &[("username", "ada"), ("password", WRONG_PASSWORD)],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, second_step) = browser.log_in(&login, "ada").await.page();
    let landing = browser
        .submit(&second_step, "/login/mfa", &[("code", &recovery_codes[0])])
        .await;
    let code = query(&landing.left())["code"].clone();
    let verifier = verifier.secret().clone();
    let tokens = server.redeem(WEB_SECRET, &code, &verifier).await;
    let text_of = |value: &Value, name: &str| value[name].as_str().unwrap().to_string();
    let (access, id_token) = (
        text_of(&tokens, "access_token"),
        text_of(&tokens, "id_token"),
    );
    let first_refresh = text_of(&tokens, "refresh_token");

    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", first_refresh.as_str()),
    ];
    let (status, refreshed) = server.post("/token", WEB_SECRET, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let second_refresh = text_of(&refreshed, "refresh_token");
    let (_, introspection) = server
        .post("/introspect", WEB_SECRET, &[("token", &access)])
        .await;
    assert_eq!(introspection["active"], true);
    let userinfo = http_client()
        .get(server.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);
    let wrong_secret = "a wrong client secret";
    let (status, _) = server.post("/token", wrong_secret, &refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .post("/revoke", WEB_SECRET, &[("token", &second_refresh)])
        .await;
    assert_eq!(status, StatusCode::OK);

    let admin = http_client()
        .post(server.url("/token"))
        .basic_auth("admin", Some(ADMIN_SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "scim")])
        .send()
        .await
        .unwrap();
    let admin_token = text_of(&admin.json().await.unwrap(), "access_token");
    let created = http_client()
        .post(server.url("/scim/v2/Users"))
        .bearer_auth(&admin_token)
        .json(&json!({"userName": "grace", "password": SCIM_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    drop(server);

    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let responses: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "response")
        .collect();
    assert!(responses.len() > 20, "{} request lines", responses.len());
    for line in &responses {
        let id = line["span"]["request_id"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "a request line without its id: {line}");
    }

    let secrets = [
        ("the password", PASSWORD.to_string()),
        ("a wrong password", WRONG_PASSWORD.to_string()),
        ("a SCIM password", SCIM_PASSWORD.to_string()),
        ("the client secret", WEB_SECRET.to_string()),
        ("a wrong client secret", wrong_secret.to_string()),
        ("the SCIM admin's secret", ADMIN_SECRET.to_string()),
        ("the SCIM admin's token", admin_token),
        ("the authorization code", code),
        ("the PKCE verifier", verifier),
        ("the access token", access),
        ("the first refresh token", first_refresh),
        ("the second refresh token", second_refresh),
        ("the ID token", id_token),
        ("the TOTP seed", seed),
        ("a used recovery code", recovery_codes[0].clone()),
        ("an unused recovery code", recovery_codes[1].clone()),
        ("the CSRF token", csrf),
    ];
    for (what, value) in secrets {
        assert!(!value.is_empty());
        assert!(!text.contains(&value), "{what} appears in the logs");
    }
}
