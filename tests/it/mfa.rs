//! MFA (issue 4): TOTP enrollment, the TOTP login step, recovery codes, replay and rate limits,
//! MFA-bound tokens and step-up. Codes are computed from the enrolled secret, as an app would.

use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::{OAuth2TokenResponse, PkceCodeVerifier};
use reqwest::StatusCode;
use tessera::oauth::clients::ClientRegistration;
use totp_rs::Totp;

use crate::harness::*;
use crate::token_lifecycle::{offline_client, refresh, OFFLINE};

fn now_step() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// The code for `offset` steps from now (the server accepts one step of skew either way).
pub fn code(totp: &Totp, offset: u64) -> String {
    totp.generate((now_step() + offset) * 30).to_string()
}

fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                char::from(c as u8 + 1)
            }
        })
        .collect()
}

/// Signs `username` in to the account console in `browser` and enrolls TOTP; returns the app's
/// TOTP, the recovery codes and the base32 seed.
pub async fn enroll(
    issuer: &str,
    browser: &Browser,
    username: &str,
) -> (Totp, Vec<String>, String) {
    let landing = browser.visit(&format!("{issuer}/account")).await;
    if let Landing::Page { body, .. } = &landing {
        if is_login_page(body) {
            let (_, account) = browser.log_in(body, username).await.page();
            assert!(account.contains("Your account"), "{account}");
        }
    }
    let (status, page) = browser
        .visit(&format!("{issuer}/account/mfa/totp"))
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<svg"), "the QR code is in the page");
    let totp = app_of(&page);
    let seed = totp.secret().to_base32();

    let (status, again) = browser
        .submit_all(
            &page,
            "/account/mfa/totp",
            &[("code", &wrong(&code(&totp, 0))), ("password", PASSWORD)],
        )
        .await
        .page();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "enrollment is confirmed only by a valid code"
    );
    let (status, done) = browser
        .submit_all(
            &again,
            "/account/mfa/totp",
            &[("code", &code(&totp, 0)), ("password", PASSWORD)],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{done}");
    let codes: Vec<String> = done
        .split("<li><code>")
        .skip(1)
        .map(|rest| rest[..rest.find('<').unwrap()].to_string())
        .collect();
    (totp, codes, seed)
}

/// Starts a code flow in a fresh browser, passes the password page, and returns the TOTP page.
async fn to_totp_page(browser: &Browser, pending: &Pending) -> String {
    let (_, login) = browser.visit(pending.url.as_str()).await.page();
    let (status, page) = browser.log_in(&login, "ada").await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("name=\"code\"") && !is_login_page(&page),
        "{page}"
    );
    page
}

/// `tessera user reset-mfa` for ada: her next login asks for the password only.
async fn reset_by_an_operator(server: &TestServer, rp: &RelyingParty) {
    server.cli(&["user", "reset-mfa", "--username", "ada"]);
    let fresh = Browser::new(server);
    let pending = rp.authorize(&[], &[]);
    let (_, login) = fresh.visit(pending.url.as_str()).await.page();
    rp.code_from(server, &pending, &fresh.log_in(&login, "ada").await.left());
}

/// The authenticator app for the otpauth URI an enrollment page shows as text.
fn app_of(page: &str) -> Totp {
    let start = page
        .find("otpauth://totp/")
        .expect("the otpauth URI is shown as text");
    let uri = page[start..start + page[start..].find('<').unwrap()].replace("&amp;", "&");
    Totp::from_url(&uri).expect("a valid otpauth URI")
}

async fn setup() -> (TestServer, RelyingParty, String) {
    let server = TestServer::start().await;
    server.user("ada").await;
    let secret = server.client(offline_client("app")).await.unwrap();
    let rp = RelyingParty::discover(&server, "app", Some(secret.clone())).await;
    (server, rp, secret)
}

#[tokio::test]
async fn enrollment_shows_ten_single_use_recovery_codes_and_stores_the_seed_sealed() {
    let (server, _, _) = setup().await;
    let browser = Browser::new(&server);
    let (_, codes, secret_b32) = enroll(&server.issuer, &browser, "ada").await;
    assert_eq!(codes.len(), 10);
    assert_eq!(
        codes.iter().collect::<std::collections::HashSet<_>>().len(),
        10
    );
    let (_, account) = browser.visit(&server.url("/account")).await.page();
    assert!(account.contains("Turn off two-step verification"));
    // Enrolling again is refused while TOTP is on: the page sends the user back to the account.
    let (_, back) = browser.visit(&server.url("/account/mfa/totp")).await.page();
    assert!(back.contains("Your account"));

    let pool = server.database().await;
    let sealed: String = sqlx::query_scalar("SELECT secret_sealed FROM user_totp")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        !sealed.contains(&secret_b32) && sealed.split('.').count() == 5,
        "a JWE, not the seed"
    );
    let stored: Vec<String> = sqlx::query_scalar("SELECT code_hash FROM recovery_codes")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 10);
    assert!(
        codes.iter().all(|c| !stored.contains(c)),
        "recovery codes are stored hashed"
    );
}

#[tokio::test]
async fn login_with_totp_yields_mfa_bound_tokens_that_refresh_keeps() {
    let (server, rp, secret) = setup().await;
    let (totp, _, _) = enroll(&server.issuer, &Browser::new(&server), "ada").await;

    let browser = Browser::new(&server);
    let pending = rp.authorize(&[OFFLINE], &[]);
    let page = to_totp_page(&browser, &pending).await;
    let redirect = browser
        .submit(&page, "/login/mfa", &[("code", &code(&totp, 1))])
        .await
        .left();
    let auth_code = rp.code_from(&server, &pending, &redirect);
    let tokens = rp
        .exchange(
            auth_code,
            PkceCodeVerifier::new(pending.verifier.secret().clone()),
        )
        .await;

    let claims = rp.verify_id_token(
        &tokens,
        &pending.nonce,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    );
    let amr: Vec<_> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(amr, ["pwd", "otp", "mfa"]);
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), "mfa");
    let info = server.introspect(tokens.access_token().secret()).await;
    assert_eq!(
        (info["mfa_verified"].clone(), info["acr"].clone()),
        (true.into(), "mfa".into())
    );

    // A refresh keeps what the original authentication proved, no more and no less.
    let (status, refreshed) = refresh(
        &server,
        ("app", &secret),
        tokens.refresh_token().unwrap().secret(),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let info = server
        .introspect(refreshed["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["mfa_verified"], true);
    assert_eq!(info["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn a_totp_code_is_refused_the_second_time() {
    let (server, rp, _) = setup().await;
    let (totp, _, _) = enroll(&server.issuer, &Browser::new(&server), "ada").await;
    let once = code(&totp, 1);
    let first = Browser::new(&server);
    let pending = rp.authorize(&[], &[]);
    let page = to_totp_page(&first, &pending).await;
    first
        .submit(&page, "/login/mfa", &[("code", &once)])
        .await
        .left();

    let second = Browser::new(&server);
    let pending = rp.authorize(&[], &[]);
    let page = to_totp_page(&second, &pending).await;
    let (status, body) = second
        .submit(&page, "/login/mfa", &[("code", &once)])
        .await
        .page();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a replayed code is refused"
    );
    assert!(body.contains("not valid"));
}

#[tokio::test]
async fn a_recovery_code_replaces_the_totp_code_once() {
    let (server, rp, _) = setup().await;
    let (_, codes, _) = enroll(&server.issuer, &Browser::new(&server), "ada").await;
    let recovery = codes[3].to_lowercase();
    let browser = Browser::new(&server);
    let pending = rp.authorize(&[], &[]);
    let page = to_totp_page(&browser, &pending).await;
    let redirect = browser
        .submit(&page, "/login/mfa", &[("code", &recovery)])
        .await
        .left();
    rp.code_from(&server, &pending, &redirect);

    let again = Browser::new(&server);
    let pending = rp.authorize(&[], &[]);
    let page = to_totp_page(&again, &pending).await;
    let (status, _) = again
        .submit(&page, "/login/mfa", &[("code", &recovery)])
        .await
        .page();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a recovery code works once"
    );
}

#[tokio::test]
async fn wrong_codes_lock_the_step_even_for_the_right_code() {
    let (server, rp, _) = setup().await;
    let (totp, _, _) = enroll(&server.issuer, &Browser::new(&server), "ada").await;
    let browser = Browser::new(&server);
    let pending = rp.authorize(&[], &[]);
    let page = to_totp_page(&browser, &pending).await;
    let right = code(&totp, 1);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            browser
                .submit(&page, "/login/mfa", &[("code", &wrong(&right))])
                .await
                .page()
                .0,
        );
    }
    assert_eq!(statuses[..4], [StatusCode::UNAUTHORIZED; 4]);
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = browser
        .submit(&page, "/login/mfa", &[("code", &right)])
        .await
        .page();
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked: the right code is refused too"
    );
}

#[tokio::test]
async fn acr_values_mfa_steps_up_a_password_session_with_the_totp_step_only() {
    let (server, rp, _) = setup().await;
    let browser = Browser::new(&server);
    let (first, pending) = sign_in(&server, &rp, &browser, "ada", &[]).await;
    let claims = rp.verify_id_token(
        &first,
        &pending.nonce,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    );
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), "pwd");
    // Enrolled in the same (password-only) session.
    let (totp, _, _) = enroll(&server.issuer, &browser, "ada").await;

    let silent = rp.authorize(&[], &[("acr_values", "mfa"), ("prompt", "none")]);
    assert_eq!(
        query(&browser.visit(silent.url.as_str()).await.left())["error"],
        "interaction_required"
    );

    let step_up = rp.authorize(&[], &[("acr_values", "mfa")]);
    let (_, page) = browser.visit(step_up.url.as_str()).await.page();
    assert!(
        page.contains("name=\"code\"") && !is_login_page(&page),
        "TOTP only: {page}"
    );
    let redirect = browser
        .submit(&page, "/login/mfa", &[("code", &code(&totp, 1))])
        .await
        .left();
    let auth_code = rp.code_from(&server, &step_up, &redirect);
    let tokens = rp
        .exchange(
            auth_code,
            PkceCodeVerifier::new(step_up.verifier.secret().clone()),
        )
        .await;
    let claims = rp.verify_id_token(
        &tokens,
        &step_up.nonce,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    );
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), "mfa");
}

#[tokio::test]
async fn mfa_demanded_of_a_user_without_totp_is_an_error_redirect_never_a_code() {
    let (server, rp, _) = setup().await;
    let browser = Browser::new(&server);
    sign_in(&server, &rp, &browser, "ada", &[]).await;
    let demand = rp.authorize(&[], &[("acr_values", "mfa")]);
    let params = query(&browser.visit(demand.url.as_str()).await.left());
    assert_eq!(params["error"], "unmet_authentication_requirements");
    assert!(!params.contains_key("code"));

    let discovery = get_json(&server.url("/.well-known/openid-configuration")).await;
    assert_eq!(
        discovery["acr_values_supported"],
        serde_json::json!(["pwd", "mfa"])
    );
}

#[tokio::test]
async fn a_require_mfa_client_sends_an_enrolled_user_through_the_totp_step() {
    let (server, _, _) = setup().await;
    let secret = server
        .client(ClientRegistration {
            require_mfa: true,
            ..offline_client("vault")
        })
        .await;
    let vault = RelyingParty::discover(&server, "vault", secret).await;
    let (totp, _, _) = enroll(&server.issuer, &Browser::new(&server), "ada").await;
    let browser = Browser::new(&server);
    let pending = vault.authorize(&[], &[]);
    let page = to_totp_page(&browser, &pending).await;
    let redirect = browser
        .submit(&page, "/login/mfa", &[("code", &code(&totp, 1))])
        .await
        .left();
    vault.code_from(&server, &pending, &redirect);
}

#[tokio::test]
async fn totp_can_be_turned_off_with_a_code_and_reset_by_an_admin() {
    let (server, rp, _) = setup().await;
    let browser = Browser::new(&server);
    let (totp, _, _) = enroll(&server.issuer, &browser, "ada").await;
    let (_, account) = browser.visit(&server.url("/account")).await.page();
    let (status, _) = browser
        .submit_all(
            &account,
            "/account/mfa/totp/disable",
            &[("code", &wrong(&code(&totp, 1)))],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, after) = browser
        .submit_all(
            &account,
            "/account/mfa/totp/disable",
            &[("code", &code(&totp, 1))],
        )
        .await
        .page();
    assert!(after.contains("Set up an authenticator app"), "{after}");

    // Enrolled again, then reset by an operator: the next login asks for the password only.
    enroll(&server.issuer, &browser, "ada").await;
    reset_by_an_operator(&server, &rp).await;
}

/// Findings 2 and 6: thirty wrong codes sent at once are checked at most the limit times (the
/// rest get 429), and the right code right after is refused too.
#[tokio::test]
async fn parallel_wrong_codes_are_checked_at_most_the_limit_times() {
    let (server, rp, _) = setup().await;
    let (totp, _, _) = enroll(&server.issuer, &Browser::new(&server), "ada").await;
    let browser = Browser::new(&server);
    let page = to_totp_page(&browser, &rp.authorize(&[], &[])).await;
    let right = code(&totp, 0);
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..30u64 {
        let (tab, page) = (browser.clone(), page.clone());
        // Thirty distinct codes, none of them valid now (the right one shifted by 1..=30).
        let guess = format!("{:06}", (right.parse::<u64>().unwrap() + 1 + i) % 1_000_000);
        attempts.spawn(async move {
            tab.submit(&page, "/login/mfa", &[("code", &guess)])
                .await
                .page()
                .0
        });
    }
    let statuses = attempts.join_all().await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(checked <= 5, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let (status, _) = browser
        .submit(&page, "/login/mfa", &[("code", &right)])
        .await
        .page();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

/// Finding 6 (NIST SP 800-63B §5.2.2): after 100 wrong codes in a row the second factor stays
/// locked, the right code included, whatever the window, until an administrator resets it;
/// the lock is an audit event and the sign-in page says so.
#[tokio::test]
async fn a_hundred_wrong_codes_in_a_row_lock_the_second_factor_until_a_reset() {
    let server = TestServer::start_with(|config| {
        config.mfa.max_failures = 100;
        config.limits.ip.max_failures = 1000;
    })
    .await;
    server.user("ada").await;
    let secret = server.client(offline_client("app")).await.unwrap();
    let rp = RelyingParty::discover(&server, "app", Some(secret)).await;
    let (totp, _, _) = enroll(&server.issuer, &Browser::new(&server), "ada").await;
    let browser = Browser::new(&server);
    let page = to_totp_page(&browser, &rp.authorize(&[], &[])).await;
    let right = code(&totp, 0);
    for _ in 0..99 {
        let (status, _) = browser
            .submit(&page, "/login/mfa", &[("code", &wrong(&right))])
            .await
            .page();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, last) = browser
        .submit(&page, "/login/mfa", &[("code", &wrong(&right))])
        .await
        .page();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(last.contains("Ask an administrator"), "{last}");
    let (status, refused) = browser
        .submit(&page, "/login/mfa", &[("code", &right)])
        .await
        .page();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.contains("Ask an administrator"), "{refused}");
    let events = server.count_rows("outbox WHERE kind = 'mfa.locked'").await;
    assert_eq!(events, 1);

    reset_by_an_operator(&server, &rp).await;
}

/// Finding 20 (NIST SP 800-63B §6.1.2.1): showing the enrollment page stores nothing, binding
/// the app takes the password, and it signs out the user's other sessions.
#[tokio::test]
async fn enrolling_takes_the_password_and_signs_out_other_sessions() {
    let (server, rp, _) = setup().await;
    let other = Browser::new(&server);
    sign_in(&server, &rp, &other, "ada", &[]).await;
    let browser = Browser::new(&server);
    let (_, login) = browser.visit(&server.url("/account")).await.page();
    browser.log_in(&login, "ada").await.page();
    let (_, page) = browser.visit(&server.url("/account/mfa/totp")).await.page();
    assert_eq!(
        server.count_rows("user_totp").await,
        0,
        "a GET stores nothing"
    );
    let totp = app_of(&page);
    let (status, again) = browser
        .submit_all(
            &page,
            "/account/mfa/totp",
            &[("code", &code(&totp, 0)), ("password", "not the password")],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!mfa_enrolled(&server).await);
    let (status, _) = browser
        .submit_all(
            &again,
            "/account/mfa/totp",
            &[("code", &code(&totp, 0)), ("password", PASSWORD)],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(mfa_enrolled(&server).await);
    let (_, elsewhere) = other.visit(&server.url("/account")).await.page();
    assert!(
        is_login_page(&elsewhere),
        "the other session was signed out"
    );
}

async fn mfa_enrolled(server: &TestServer) -> bool {
    server.count_rows("user_totp WHERE confirmed = TRUE").await == 1
}
