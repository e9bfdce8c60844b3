//! Passkey endpoints against bad input, without a browser (the ceremony itself is driven in
//! Chromium by `browser.rs`; the binding of a ceremony to what started it is a unit test of
//! `account::passkeys`): a malformed or forged answer, a used ceremony, a wrong password or a bad
//! name when adding one. Every refusal is one page with one message, never a 5xx; and an issuer
//! on an IP address offers no passkeys.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

const REFUSED: &str = "That passkey could not sign you in";

/// A server whose issuer is `localhost` (WebAuthn relying party ids are domains).
async fn passkey_server() -> TestServer {
    TestServer::start_with(|c| c.issuer = c.issuer.replace("127.0.0.1", "localhost")).await
}

/// Starts a passkey sign-in from `login`; returns the ceremony page.
async fn start_sign_in(browser: &Browser, login: &str) -> String {
    assert!(login.contains("id=\"passkey-sign-in\""), "{login}");
    let (status, ceremony) = browser
        .submit(login, "/login/passkey/start", &[])
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{ceremony}");
    ceremony
}

/// A well-formed assertion that no authenticator made: it names `user_id` in its user handle.
fn forged_assertion(user_id: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    json!({
        "id": b64(b"no such credential"),
        "rawId": b64(b"no such credential"),
        "type": "public-key",
        "response": {
            "authenticatorData": b64(&[0; 37]),
            "clientDataJSON": b64(br#"{"type":"webauthn.get","challenge":"AAAA","origin":"http://evil.example"}"#),
            "signature": b64(&[1; 64]),
            "userHandle": b64(user_id.as_bytes()),
        },
        "extensions": {},
    })
    .to_string()
}

#[tokio::test]
async fn malformed_forged_and_replayed_answers_get_one_refusal() {
    let server = passkey_server().await;
    let ada = server.user("ada").await;
    let browser = Browser::new(&server);
    let login = login_page(&server, &browser).await;

    let answers = [
        "not json".to_string(),
        "{}".to_string(),
        forged_assertion(&ada),
        forged_assertion("\u{0}nobody"),
        "x".repeat(100_000),
    ];
    for answer in &answers {
        let ceremony = start_sign_in(&browser, &login).await;
        let (status, page) = browser
            .submit_all(&ceremony, "/login/passkey", &[("credential", answer)])
            .await
            .page();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer:.40}: {page}");
        assert!(page.contains(REFUSED), "{page}");
        // The ceremony was used: its token again is refused the same way.
        let (status, page) = browser
            .submit_all(&ceremony, "/login/passkey", &[("credential", answer)])
            .await
            .page();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "replayed: {page}");
        assert!(page.contains(REFUSED), "{page}");
    }
}

async fn add_passkey(
    browser: &Browser,
    list: &str,
    name: &str,
    password: &str,
) -> (StatusCode, String) {
    let fields = [("name", name), ("password", password)];
    browser
        .submit(list, "/account/passkeys/new", &fields)
        .await
        .page()
}

#[tokio::test]
async fn adding_a_passkey_takes_the_password_a_name_and_a_real_credential() {
    let server = passkey_server().await;
    server.user("ada").await;
    let browser = Browser::new(&server);
    let (_, login) = browser.visit(&server.url("/account/passkeys")).await.page();
    browser.log_in(&login, "ada").await.page();
    let (status, list) = browser.visit(&server.url("/account/passkeys")).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("id=\"add-passkey\""), "{list}");
    assert!(list.contains("You have no passkey yet"));

    let (status, page) = add_passkey(&browser, &list, "Laptop", "wrong password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    assert!(page.contains("Your current password is not correct."));
    let too_long = "n".repeat(65);
    for name in ["", "   ", "tab\tname", &too_long] {
        let (status, page) = add_passkey(&browser, &list, name, PASSWORD).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {page}");
        assert!(page.contains("Give the passkey a name"), "{page}");
    }

    let (status, ceremony) = add_passkey(&browser, &list, "Laptop", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{ceremony}");
    assert!(ceremony.contains("data-mode=\"create\""), "{ceremony}");
    for answer in ["not json", "{}", &forged_assertion("x")] {
        let (status, page) = browser
            .submit_all(
                &ceremony,
                "/account/passkeys/register",
                &[("credential", answer)],
            )
            .await
            .page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
        assert!(page.contains("The passkey could not be added"), "{page}");
    }
    let (_, list) = browser.visit(&server.url("/account/passkeys")).await.page();
    assert!(
        list.contains("You have no passkey yet"),
        "nothing half-made"
    );
    let (status, page) = browser
        .submit(
            &list,
            "/account/passkeys/remove",
            &[("credential_id", "nope")],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
}

/// An issuer on an IP address cannot be a relying party id: no passkey button, no passkey paths.
#[tokio::test]
async fn an_issuer_on_an_ip_address_offers_no_passkeys() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let login = login_page(&server, &browser).await;
    assert!(!login.contains("passkey"), "{login}");
    for path in ["/login/passkey/start", "/login/passkey"] {
        let (status, _) = browser.submit(&login, path, &[]).await.page();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = browser.visit(&server.url("/account/passkeys")).await.page();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// `phr` is offered where passkeys are, and met only by one: a user without a passkey who signs
/// in with the password for `acr_values=phr`, or for a client registered with
/// `--require-phishing-resistant`, gets an error redirect, never a code.
#[tokio::test]
async fn phr_without_a_passkey_is_an_error_redirect_never_a_code() {
    let server = passkey_server().await;
    server.user("ada").await;
    let discovery = get_json(&server.url("/.well-known/openid-configuration")).await;
    assert_eq!(
        discovery["acr_values_supported"],
        json!(["pwd", "mfa", "phr"])
    );

    server.web_client("webapp").await;
    let strict = tessera::oauth::clients::ClientRegistration {
        require_phishing_resistant: true,
        ..web_registration("strict")
    };
    server.client(strict).await;
    for (client, extra) in [
        ("webapp", &[("acr_values", "mfa phr")][..]),
        ("strict", &[]),
    ] {
        let rp = RelyingParty::discover(&server, client, None).await;
        let browser = Browser::new(&server);
        let (_, login) = browser
            .visit(rp.authorize(&[], extra).url.as_str())
            .await
            .page();
        let params = query(&browser.log_in(&login, "ada").await.left());
        assert_eq!(
            params["error"], "unmet_authentication_requirements",
            "{client}"
        );
        assert!(!params.contains_key("code"));
    }
}

/// `tessera user reset-mfa` takes a user's passkeys too (one who lost their authenticators):
/// the next sign-in asks for the password only.
#[tokio::test]
async fn an_mfa_reset_removes_the_users_passkeys() {
    let server = passkey_server().await;
    let ada = server.user("ada").await;
    let passkey = tessera::store::PasskeyRecord {
        credential_id: "lost-laptop".into(),
        user_id: ada.clone(),
        name: "Lost laptop".into(),
        credential: "{}".into(),
        sign_count: 0,
        created_at: 1_700_000_000,
        last_used_at: None,
    };
    server.state.store.insert_passkey(&passkey).await.unwrap();
    let browser = Browser::new(&server);
    let login = login_page(&server, &browser).await;
    let (_, second_factor) = browser.log_in(&login, "ada").await.page();
    assert!(
        second_factor.contains("id=\"passkey-verify\""),
        "{second_factor}"
    );

    let said = server.cli(&["user", "reset-mfa", "--username", "ada"]);
    assert_eq!(
        String::from_utf8_lossy(&said.stdout).trim(),
        "MFA reset for ada"
    );
    assert!(server.state.store.passkeys(&ada).await.unwrap().is_empty());
    let fresh = Browser::new(&server);
    let login = login_page(&server, &fresh).await;
    let (_, consent) = fresh.log_in(&login, "ada").await.page();
    assert!(
        consent.contains("Allow access?"),
        "the password alone: {consent}"
    );
}

/// Every ceremony started is stored until it expires, so one address may start only so many,
/// counted with the sign-ins it starts.
#[tokio::test]
async fn passkey_starts_are_counted_with_sign_in_starts() {
    let server = TestServer::start_with(|c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
        c.limits.sign_in_starts.max_failures = 4;
    })
    .await;
    let browser = Browser::new(&server);
    let login = login_page(&server, &browser).await;
    for _ in 0..2 {
        start_sign_in(&browser, &login).await;
    }
    let (status, page) = browser
        .submit(&login, "/login/passkey/start", &[])
        .await
        .page();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{page}");
    assert!(page.contains("Too many"), "{page}");
}
