//! A real browser (Debian's headless Chromium through chromedriver) signs in, enrolls TOTP by
//! reading the secret from the page, signs out, signs in again with a TOTP code and consents; and
//! signs up for a client, then recovers the new account's password through the mailed link.
//! `.ci/run` installs chromium and chromium-driver; without them this test fails, never skips.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tessera::oauth::clients::ClientRegistration;
use tessera::store::events::Channel;
use totp_rs::Totp;

use crate::harness::*;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// chromedriver on a free port, ended with the test.
struct Driver {
    process: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn chromium() -> (Client, Driver) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is installed (apt-get install chromium chromium-driver)");
    let driver = Driver {
        process,
        url: format!("http://127.0.0.1:{port}"),
        _profile: tempfile::tempdir().unwrap(),
    };
    for _ in 0..100 {
        if http_client()
            .get(format!("{}/status", driver.url))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let options = serde_json::json!({
        "binary": "/usr/bin/chromium",
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
            "--window-size=800,900",
            format!("--user-data-dir={}", driver._profile.path().display()),
        ],
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    (client, driver)
}

/// A relying party's callback endpoint: a real page the browser lands on with the code.
async fn callback_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(|| async { "signed in at the relying party" }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn fill(browser: &Client, name: &str, value: &str) {
    let input = browser
        .find(Locator::Css(&format!("input[name={name}]")))
        .await
        .unwrap();
    input.send_keys(value).await.unwrap();
}

/// On the login page: `username` and `password`, submitted.
async fn log_in(browser: &Client, username: &str, password: &str) {
    wait_for(browser, "input[name=username]").await;
    fill(browser, "username", username).await;
    fill(browser, "password", password).await;
    click(browser, "button[type=submit]").await;
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("waiting for {css}: {e}"))
}

/// Waits (up to 10 s) for a paragraph or heading holding `words`.
async fn wait_for_words(browser: &Client, words: &str) {
    let xpath = format!("//*[self::p or self::h1][contains(., '{words}')]");
    let found = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&xpath))
        .await;
    if let Err(e) = found {
        // The page it stayed on, to tell why from a CI log.
        let url = browser.current_url().await.map(|u| u.to_string());
        let body = browser.find(Locator::Css("body")).await.unwrap();
        let text = body.text().await.unwrap_or_default();
        panic!("waiting for {words:?}: {e}; at {url:?}: {text}");
    }
}

/// Saves a screenshot when TESSERA_SCREENSHOTS names a folder (to look at the pages).
async fn screenshot(browser: &Client, name: &str) {
    if let Ok(dir) = std::env::var("TESSERA_SCREENSHOTS") {
        let png = browser.screenshot().await.unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

/// Waits until the browser is on a page under `prefix`.
async fn landing_at(browser: &Client, prefix: &str) -> url::Url {
    for _ in 0..100 {
        let url = browser.current_url().await.unwrap();
        if url.as_str().starts_with(prefix) {
            return url;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never reached {prefix}");
}

fn totp_code(totp: &Totp, offset: u64) -> String {
    let step = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30;
    totp.generate((step + offset) * 30).to_string()
}

#[tokio::test]
async fn a_browser_enrolls_totp_then_signs_in_with_it_and_consents() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let callback = callback_server().await;
    let secret = server
        .client(ClientRegistration {
            client_id: "webapp".into(),
            redirect_uris: vec![callback.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let (browser, _driver) = chromium().await;

    // Sign in to the account page and enroll TOTP from what the page shows.
    browser.goto(&server.url("/account")).await.unwrap();
    wait_for(&browser, "input[name=password]").await;
    screenshot(&browser, "login").await;
    log_in(&browser, "ada", PASSWORD).await;
    wait_for(&browser, "a.button").await.click().await.unwrap();
    let uri = wait_for(&browser, "code.otpauth")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        browser.find(Locator::Css("figure.qr svg")).await.is_ok(),
        "the QR code is rendered in the page"
    );
    screenshot(&browser, "enroll").await;
    let totp = Totp::from_url(uri.trim()).expect("the page shows a valid otpauth URI");
    fill(&browser, "code", &totp_code(&totp, 0)).await;
    fill(&browser, "password", PASSWORD).await;
    click(&browser, "button[type=submit]").await;
    wait_for(&browser, "ul.recovery-codes").await;
    assert_eq!(
        browser
            .find_all(Locator::Css("ul.recovery-codes li"))
            .await
            .unwrap()
            .len(),
        10
    );
    screenshot(&browser, "recovery-codes").await;

    sign_out(&browser, &server).await;

    // A relying party's authorization request: password, TOTP, consent, back with a code.
    let mut authorize = url::Url::parse(&server.url("/authorize")).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("client_id", "webapp"),
        ("redirect_uri", callback.as_str()),
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("state", "browser-state"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    browser.goto(authorize.as_str()).await.unwrap();
    log_in(&browser, "ada", PASSWORD).await;
    wait_for(&browser, "input[name=code]").await;
    screenshot(&browser, "totp-step").await;
    fill(&browser, "code", &totp_code(&totp, 1)).await;
    click(&browser, "button[type=submit]").await;
    wait_for(&browser, "button[value=allow]").await;
    screenshot(&browser, "consent").await;
    click(&browser, "button[value=allow]").await;
    let landed = landing_at(&browser, &callback).await;
    let params = query(&landed);
    assert_eq!(params["state"], "browser-state");
    assert_eq!(params["iss"], server.issuer);
    browser.close().await.unwrap();

    let form = [
        ("grant_type", "authorization_code"),
        ("code", params["code"].as_str()),
        ("redirect_uri", callback.as_str()),
        ("code_verifier", VERIFIER),
    ];
    let (status, _, tokens) = post_token(&server, Some(("webapp", &secret)), &form).await;
    assert_eq!(status, 200, "{tokens}");
    let info = server
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(
        info["mfa_verified"], true,
        "the browser's login was multi-factor"
    );
}

/// Sign-up from a relying party's request and password recovery, in Chromium: the pages work
/// without JavaScript, and the mailed link opens a working form.
#[tokio::test]
async fn a_browser_signs_up_for_a_client_then_recovers_its_password_by_mail() {
    let smtp = crate::servers::Smtp::new();
    let server = crate::mailbox::mailing_server(&smtp, |c| c.signup.open = true).await;
    let callback = callback_server().await;
    server
        .client(ClientRegistration {
            client_id: "webapp".into(),
            redirect_uris: vec![callback.clone()],
            ..Default::default()
        })
        .await;
    let (browser, _driver) = chromium().await;

    let mut authorize = url::Url::parse(&server.url("/authorize")).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("client_id", "webapp"),
        ("redirect_uri", callback.as_str()),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    browser.goto(authorize.as_str()).await.unwrap();
    wait_for(&browser, "a[href^='/signup']")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&browser, "input[name=email]").await;
    screenshot(&browser, "signup").await;
    fill(&browser, "username", "carol").await;
    fill(&browser, "email", "carol@example.com").await;
    fill(&browser, "password", PASSWORD).await;
    click(&browser, "button[type=submit]").await;
    wait_for(&browser, "button[value=allow]").await;
    click(&browser, "button[value=allow]").await;
    let landed = landing_at(&browser, &callback).await;
    assert!(query(&landed).contains_key("code"), "{landed}");

    browser.goto(&server.url("/password/forgot")).await.unwrap();
    fill(&browser, "email", "carol@example.com").await;
    click(&browser, "button[type=submit]").await;
    wait_for_words(&browser, "Check your mail").await;
    let mail = crate::mailbox::mail_to(&smtp, "carol@example.com", "Reset your password").await;
    let link = crate::mailbox::link_in(&server, &mail, "/password/reset");
    browser.goto(&link).await.unwrap();
    wait_for(&browser, "input[name=password]").await;
    screenshot(&browser, "reset").await;
    let new_password = "a new and long passphrase";
    fill(&browser, "password", new_password).await;
    click(&browser, "button[type=submit]").await;
    wait_for_words(&browser, "Password changed").await;

    browser.goto(&server.url("/account")).await.unwrap();
    log_in(&browser, "carol", new_password).await;
    wait_for_words(&browser, "Your account").await;
    browser.close().await.unwrap();
}

/// A WebDriver command of the WebAuthn extension (W3C Web Authentication §11) on this session:
/// `path` under `/session/{id}/webauthn/`.
#[derive(Debug)]
struct WebAuthnCommand {
    method: axum::http::Method,
    path: String,
    body: Option<serde_json::Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/webauthn/{}", self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(|b| b.to_string()),
        )
    }
}

/// A virtual platform authenticator (§11.2) that keeps discoverable credentials, verifying its
/// user (a PIN or biometric) or only testing presence; its id.
async fn add_virtual_authenticator(browser: &Client, verifies_user: bool) -> String {
    let id = browser
        .issue_cmd(WebAuthnCommand {
            method: axum::http::Method::POST,
            path: "authenticator".into(),
            body: Some(serde_json::json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": verifies_user,
                "isUserConsenting": true,
                "isUserVerified": verifies_user,
            })),
        })
        .await
        .expect("chromedriver's virtual authenticators");
    id.as_str().unwrap().to_owned()
}

/// Makes the authenticator's passkeys discoverable or not (§11.6 to §11.9: read, removed, added
/// back). Chromium answers a conditional-mediation request (the login page's autofill) at once
/// with a discoverable one, before a test could type a password; the second-factor step names
/// the user's passkeys and gets them either way.
async fn set_discoverable(
    browser: &Client,
    authenticator: &str,
    user_id: &str,
    discoverable: bool,
) {
    let command = |method, path: &str, body| WebAuthnCommand {
        method,
        path: format!("authenticator/{authenticator}/{path}"),
        body,
    };
    let held = browser
        .issue_cmd(command(axum::http::Method::GET, "credentials", None))
        .await
        .unwrap();
    browser
        .issue_cmd(command(axum::http::Method::DELETE, "credentials", None))
        .await
        .unwrap();
    for mut credential in held.as_array().unwrap().clone() {
        credential["isResidentCredential"] = discoverable.into();
        // The WebDriver GET leaves out the relying party, which the POST requires.
        credential["rpId"] = "localhost".into();
        // A discoverable credential carries its user handle (registration set it to the id).
        if discoverable {
            use base64::Engine;
            let handle = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(user_id);
            credential["userHandle"] = handle.into();
        }
        let add = command(axum::http::Method::POST, "credential", Some(credential));
        browser.issue_cmd(add).await.unwrap();
    }
}

/// Waits until the page has an element matching `css` that is shown (the script un-hides the
/// passkey buttons).
async fn wait_shown(browser: &Client, css: &str) -> fantoccini::elements::Element {
    for _ in 0..100 {
        let element = wait_for(browser, css).await;
        if element.is_displayed().await.unwrap_or(false) {
            return element;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} is never shown");
}

/// Waits for the login page's one answer to a refused passkey.
async fn refused(browser: &Client) {
    wait_for_words(browser, "That passkey could not sign you in").await;
}

/// Enrolls TOTP for the user through the server's own service (as the account page would).
async fn enroll_totp(server: &TestServer, user_id: &str) -> Totp {
    let mfa = &server.state.mfa;
    let enrollment = mfa.begin_enrollment(user_id, "ada").await.unwrap().unwrap();
    let totp = Totp::from_url(&enrollment.otpauth_uri).unwrap();
    let confirmed = mfa
        .confirm_enrollment(user_id, "ada", &enrollment.offer, &totp_code(&totp, 0))
        .await
        .unwrap();
    assert!(confirmed.is_some());
    totp
}

async fn click_shown(browser: &Client, css: &str) {
    wait_shown(browser, css).await.click().await.unwrap();
}

/// On the login page: ada's password, then her passkey as the second factor.
async fn password_then_passkey(browser: &Client) {
    log_in(browser, "ada", PASSWORD).await;
    click_shown(browser, "#passkey-verify").await;
}

/// The code the sign-in ends with at the client's `callback`, consenting when asked.
async fn code_at(browser: &Client, callback: &str) -> String {
    for _ in 0..100 {
        let url = browser.current_url().await.unwrap();
        if url.as_str().starts_with(callback) {
            return query(&url)["code"].clone();
        }
        if let Ok(allow) = browser.find(Locator::Css("button[value=allow]")).await {
            allow.click().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the sign-in never reached {callback}");
}

/// Signs out through the confirmation form (no `id_token_hint`).
async fn sign_out(browser: &Client, server: &TestServer) {
    browser.goto(&server.url("/logout")).await.unwrap();
    wait_for(browser, "button[value=allow]")
        .await
        .click()
        .await
        .unwrap();
    // The confirmation page has the same layout: wait for the notice's words themselves (a
    // check of the page right after the click could still read the confirmation page).
    wait_for_words(browser, "You are signed out").await;
}

/// A server on localhost (WebAuthn takes a domain as relying party id, not 127.0.0.1) with ada
/// and the client `webapp`, and a browser that added a passkey on ada's account page (after her
/// password) with an authenticator `verifying_user` or not; the browser is signed out again.
struct PasskeyScene {
    server: TestServer,
    ada: String,
    callback: String,
    secret: String,
    browser: Client,
    authenticator: String,
    _driver: Driver,
}

impl PasskeyScene {
    async fn start(verifying_user: bool) -> Self {
        let server =
            TestServer::start_with(|c| c.issuer = c.issuer.replace("127.0.0.1", "localhost")).await;
        let ada = server.user("ada").await;
        let callback = callback_server().await;
        let secret = server
            .client(ClientRegistration {
                client_id: "webapp".into(),
                redirect_uris: vec![callback.clone()],
                ..Default::default()
            })
            .await
            .unwrap();
        let (browser, _driver) = chromium().await;
        let authenticator = add_virtual_authenticator(&browser, verifying_user).await;
        browser.goto(&server.url("/account")).await.unwrap();
        log_in(&browser, "ada", PASSWORD).await;
        wait_for(&browser, "a[href='/account/passkeys']")
            .await
            .click()
            .await
            .unwrap();
        let add = wait_shown(&browser, "#add-passkey").await;
        browser
            .find(Locator::Css("input[name=name]"))
            .await
            .unwrap()
            .clear()
            .await
            .unwrap();
        fill(&browser, "name", "Laptop").await;
        fill(&browser, "password", PASSWORD).await;
        add.click().await.unwrap();
        wait_for_words(&browser, "Your passkey is added").await;
        screenshot(&browser, "passkeys").await;
        let listed = browser.find(Locator::Css("ul.sessions")).await.unwrap();
        assert!(listed.text().await.unwrap().contains("Laptop"));
        sign_out(&browser, &server).await;
        PasskeyScene {
            server,
            ada,
            callback,
            secret,
            browser,
            authenticator,
            _driver,
        }
    }

    /// `webapp`'s authorization request (code, PKCE).
    fn authorize(&self) -> url::Url {
        let mut authorize = url::Url::parse(&self.server.url("/authorize")).unwrap();
        authorize.query_pairs_mut().extend_pairs([
            ("client_id", "webapp"),
            ("redirect_uri", self.callback.as_str()),
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        authorize
    }

    /// The claims of the ID token that the code the browser ends with is exchanged for.
    async fn id_token_claims(&self) -> serde_json::Value {
        let code = code_at(&self.browser, &self.callback).await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", self.callback.as_str()),
            ("code_verifier", VERIFIER),
        ];
        let client = Some(("webapp", self.secret.as_str()));
        let (status, _, tokens) = post_token(&self.server, client, &form).await;
        assert_eq!(status, 200, "{tokens}");
        decode_segment(tokens["id_token"].as_str().unwrap(), 1)
    }
}

/// Passkeys in Chromium with a virtual authenticator that verifies its user: added on the
/// account page after the password, the passkey alone signs in for a client through the login
/// page's autofill (conditional mediation; acr `mfa`, amr `pop` and `mfa` in the ID token), after
/// the password it is the second factor (amr `pwd`, `pop`, `mfa`), and `acr_values=phr` steps a
/// password-and-TOTP session up with it (acr `phr`); an answer whose counter did not grow (a
/// clone) is refused with an audit event, and so is a removed passkey.
#[tokio::test]
async fn a_browser_adds_a_passkey_then_signs_in_with_it() {
    let scene = PasskeyScene::start(true).await;
    let (server, browser, ada) = (&scene.server, &scene.browser, &scene.ada);
    let authorize = scene.authorize();

    // A relying party's request: the login page offers the passkey in the user name's autofill,
    // which Chromium's virtual authenticator answers by itself; the passkey alone signs in.
    browser.goto(authorize.as_str()).await.unwrap();
    let claims = scene.id_token_claims().await;
    assert_eq!(claims["acr"], "mfa", "{claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pop", "mfa"]), "{claims}");
    let history = server
        .state
        .store
        .login_attempts(&server.state.throttle.names().hash("ada"), 10)
        .await
        .unwrap();
    assert_eq!(
        history.len(),
        2,
        "the password for the account page, then the passkey"
    );
    sign_out(browser, server).await;

    // With the password, the passkey is the second factor (kept out of the autofill, which
    // would answer first).
    set_discoverable(browser, &scene.authenticator, ada, false).await;
    browser.goto(authorize.as_str()).await.unwrap();
    password_then_passkey(browser).await;
    let claims = scene.id_token_claims().await;
    assert_eq!(
        claims["amr"],
        serde_json::json!(["pwd", "pop", "mfa"]),
        "{claims}"
    );
    sign_out(browser, server).await;

    // Step-up: a session of the password and TOTP meets `mfa`, not `phr`; with
    // `acr_values=phr` the passkey is asked for on top of it, and the code says `phr`.
    let totp = enroll_totp(server, ada).await;
    browser.goto(authorize.as_str()).await.unwrap();
    log_in(browser, "ada", PASSWORD).await;
    wait_for(browser, "input[name=code]").await;
    // The next step's code: enrolling used this step's.
    fill(browser, "code", &totp_code(&totp, 1)).await;
    click(browser, "form[action='/login/mfa'] button").await;
    let claims = scene.id_token_claims().await;
    assert_eq!(
        claims["amr"],
        serde_json::json!(["pwd", "otp", "mfa"]),
        "{claims}"
    );
    let mut phishing_resistant = authorize.clone();
    phishing_resistant
        .query_pairs_mut()
        .append_pair("acr_values", "phr");
    browser.goto(phishing_resistant.as_str()).await.unwrap();
    click_shown(browser, "#passkey-verify").await;
    assert!(
        browser
            .find(Locator::Css("input[name=code]"))
            .await
            .is_err(),
        "only a passkey meets phr"
    );
    let claims = scene.id_token_claims().await;
    assert_eq!(claims["acr"], "phr", "{claims}");
    assert_eq!(
        claims["amr"],
        serde_json::json!(["pwd", "pop", "mfa"]),
        "{claims}"
    );
    // A clone of the authenticator would answer with a counter the server has seen already:
    // pretend the stored one ran ahead, and the next answer is refused, with an audit event.
    // (`prompt=login`: the session from the step-up stays, for the account page below; the
    // passkey is discoverable again, for the autofill.)
    let stored = server.state.store.passkeys(ada).await.unwrap().remove(0);
    let mut ahead: serde_json::Value = serde_json::from_str(&stored.credential).unwrap();
    ahead["counter"] = 1_000.into();
    let store = &server.state.store;
    let raised = store
        .use_passkey(&stored.credential_id, &ahead.to_string(), 1_000, 1)
        .await
        .unwrap();
    assert!(raised);
    set_discoverable(browser, &scene.authenticator, ada, true).await;
    let mut again = authorize.clone();
    again.query_pairs_mut().append_pair("prompt", "login");
    browser.goto(again.as_str()).await.unwrap();
    refused(browser).await;
    let events = store
        .claim_events(Channel::Webhooks, i64::MAX - 1, i64::MAX, 100)
        .await
        .unwrap();
    let regressed = events
        .iter()
        .find(|e| e.event.kind.name() == "passkey.counter_regressed")
        .expect("the audit event");
    assert_eq!(regressed.event.data["user_id"], ada.as_str());
    assert_eq!(
        regressed.event.data["credential_id"],
        stored.credential_id.as_str()
    );

    // Removed on the account page, it signs in no more, though the authenticator still holds it.
    browser
        .goto(&server.url("/account/passkeys"))
        .await
        .unwrap();
    wait_for(browser, "form[action='/account/passkeys/remove'] button")
        .await
        .click()
        .await
        .unwrap();
    wait_for_words(browser, "The passkey is removed").await;
    sign_out(browser, server).await;
    browser.goto(authorize.as_str()).await.unwrap();
    refused(browser).await;
    browser.clone().close().await.unwrap();
}

/// A passkey whose authenticator only tests presence (no PIN or biometric) is one factor: after
/// the password it is the second factor, and amr says `user` beside `mfa` (RFC 8176 §2).
/// (Alone it is refused, but Chromium never lets such an authenticator answer a sign-in that
/// names no credential, from the button or the autofill: that refusal is not reached here.)
#[tokio::test]
async fn a_passkey_that_only_tests_presence_is_a_second_factor_after_the_password() {
    let scene = PasskeyScene::start(false).await;
    let browser = &scene.browser;
    browser.goto(scene.authorize().as_str()).await.unwrap();
    password_then_passkey(browser).await;
    let claims = scene.id_token_claims().await;
    assert_eq!(claims["acr"], "mfa", "{claims}");
    assert_eq!(
        claims["amr"],
        serde_json::json!(["pwd", "pop", "user", "mfa"]),
        "{claims}"
    );
    browser.clone().close().await.unwrap();
}
