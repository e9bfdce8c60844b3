//! Logs: JSON lines that carry the request id, and never a secret. The test captures, at the most
//! verbose level, everything logged on its own runtime (a current-thread runtime runs the server's
//! tasks on the test's thread) while it walks through every flow that handles a secret.

use std::io::Write;
use std::sync::{Arc, Mutex};

use openidconnect::{OAuth2TokenResponse, PkceCodeVerifier};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;
use crate::mfa::enroll;
use crate::token_lifecycle::{offline_client, refresh, OFFLINE};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const WRONG_PASSWORD: &str = "not-the-password-but-close";
const SCIM_PASSWORD: &str = "a password set through SCIM";

#[tokio::test]
async fn json_logs_carry_request_ids_and_no_secret_of_any_flow() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tessera::logging::subscriber("trace", true, move || sink.clone());
    let _logging = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start().await;
    server.user("ada").await;
    let secret = server.client(offline_client("app")).await.unwrap();
    let rp = RelyingParty::discover(&server, "app", Some(secret.clone())).await;
    let (_, recovery_codes, seed) = enroll(&server, &Browser::new(&server), "ada").await;

    // A code flow with a wrong password first, then the password and a recovery code.
    let browser = Browser::new(&server);
    let pending = rp.authorize(&["profile", OFFLINE], &[]);
    let (_, login) = browser.visit(pending.url.as_str()).await.page();
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
    let code = rp.code_from(&server, &pending, &landing.left());
    let verifier = pending.verifier.secret().clone();
    let tokens = rp
        .exchange(code.clone(), PkceCodeVerifier::new(verifier.clone()))
        .await;
    let access = tokens.access_token().secret().clone();
    let first_refresh = tokens.refresh_token().unwrap().secret().clone();
    let id_token = serde_json::to_value(&tokens).unwrap()["id_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, refreshed) = refresh(&server, ("app", &secret), &first_refresh, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let second_refresh = refreshed["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(server.introspect(&access).await["active"], true);
    let userinfo = http_client()
        .get(server.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);
    let (status, _, _) = post_token(
        &server,
        Some(("app", "a wrong client secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let revoked = http_client()
        .post(server.url("/revoke"))
        .basic_auth("app", Some(&secret))
        .form(&[("token", second_refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let scim = server.scim().await;
    scim.create_user(serde_json::json!({"userName": "grace", "password": SCIM_PASSWORD}))
        .await;

    drop(_logging);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
        ("the client secret", secret.clone()),
        ("the SCIM admin's token", scim.token().to_string()),
        ("a wrong client secret", "a wrong client secret".to_string()),
        ("the authorization code", code),
        ("the PKCE verifier", verifier),
        ("the access token", access),
        ("the first refresh token", first_refresh),
        ("the second refresh token", second_refresh),
        ("the ID token", id_token),
        ("the TOTP seed", seed),
        ("a recovery code", recovery_codes[0].clone()),
        ("an unused recovery code", recovery_codes[1].clone()),
        ("the CSRF token", csrf),
    ];
    for (what, value) in secrets {
        assert!(!value.is_empty());
        assert!(!text.contains(&value), "{what} appears in the logs");
    }
}
