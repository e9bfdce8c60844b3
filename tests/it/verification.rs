//! Email verification against a real SMTP server: the mailed link, `email_verified` in the ID
//! token and userinfo, a change of address on the account page, and the sign-in that waits for
//! a verified address when verification is required.

use openidconnect::core::CoreJwsSigningAlgorithm;
use reqwest::StatusCode;
use tessera::config::EmailVerification;

use crate::account::account;
use crate::harness::*;
use crate::mailbox::{link_in, mail_to, mailing_server, mails_to};
use crate::servers::Smtp;

const VERIFY: &str = "Verify your email address";

/// Opens a verification link and submits its form; the answer.
async fn verify_through(browser: &Browser, link: &str) -> (StatusCode, String) {
    let (status, form) = browser.visit(link).await.page();
    assert_eq!(status, StatusCode::OK, "{form}");
    browser.submit_all(&form, "/email/verify", &[]).await.page()
}

/// Signs `ada` in to `webapp` with the email scope; whether the ID token says it is verified.
async fn id_token_says_verified(server: &TestServer, secret: &str) -> Option<bool> {
    let rp = RelyingParty::discover(server, "webapp", Some(secret.to_string())).await;
    let (tokens, pending) = sign_in(server, &rp, &Browser::new(server), "ada", &["email"]).await;
    let claims = rp.verify_id_token(
        &tokens,
        &pending.nonce,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    );
    claims.email_verified()
}

#[tokio::test]
async fn an_address_is_verified_through_its_link() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, |_| {}).await;
    server.user("ada").await;
    let secret = server.web_client("webapp").await;
    assert_eq!(id_token_says_verified(&server, &secret).await, Some(false));

    let (browser, page) = account(&server, "ada").await;
    assert!(page.contains("not verified yet"), "{page}");
    let (status, page) = browser
        .submit(&page, "/account/email/verify", &[])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("A verification link is on its way"), "{page}");
    let link = link_in(
        &server,
        &mail_to(&smtp, "ada@example.com", VERIFY).await,
        "/email/verify",
    );

    // Another browser may open it: the link alone proves the mailbox.
    let elsewhere = Browser::new(&server);
    let (status, form) = elsewhere.visit(&link).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("ada@example.com"));
    let (status, page) = verify_through(&elsewhere, &link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Address verified"), "{page}");
    assert_eq!(id_token_says_verified(&server, &secret).await, Some(true));
    let (_, page) = browser.visit(&server.url("/account")).await.page();
    assert!(!page.contains("not verified yet"));

    let (status, page) = elsewhere.visit(&link).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "used once: {page}");

    // A link's token is good for its own purpose only: a fresh one opens no reset form.
    let (_, page) = browser.visit(&server.url("/account")).await.page();
    browser
        .submit(&page, "/account/email/verify", &[])
        .await
        .page();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while mails_to(&smtp, "ada@example.com").len() < 2 {
        assert!(std::time::Instant::now() < deadline, "a second link");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let fresh = mails_to(&smtp, "ada@example.com")
        .iter()
        .map(|mail| link_in(&server, mail, "/email/verify"))
        .find(|other| *other != link)
        .unwrap();
    let as_reset = fresh.replace("/email/verify", "/password/reset");
    let (status, _) = elsewhere.visit(&as_reset).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "not a reset link");
    let (status, _) = elsewhere.visit(&fresh).await.page();
    assert_eq!(status, StatusCode::OK, "still a verification link");
}

#[tokio::test]
async fn a_new_address_needs_the_password_and_replaces_the_old_one_once_verified() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, |_| {}).await;
    let id = server.user("ada").await;
    let (browser, page) = account(&server, "ada").await;
    let change = [("email", "ada@new.example"), ("given_name", "Ada")];
    let (status, page) = browser
        .submit(&page, "/account/profile", &change)
        .await
        .page();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no password");
    assert!(page.contains("Your current password is not correct."));

    let to_first = [
        ("email", "ada@first.example"),
        change[1],
        ("password", PASSWORD),
    ];
    let (status, page) = browser
        .submit(&page, "/account/profile", &to_first)
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("A link went to the new address"), "{page}");
    let with_password = [change[0], change[1], ("password", PASSWORD)];
    let user = server.state.store.user(&id).await.unwrap().unwrap();
    assert_eq!(
        user.email(),
        Some("ada@example.com"),
        "not before the link is used"
    );

    let first = link_in(
        &server,
        &mail_to(&smtp, "ada@first.example", VERIFY).await,
        "/email/verify",
    );
    // A newer change supersedes it: the older link no longer works.
    let (status, page) = browser
        .submit(&page, "/account/profile", &with_password)
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{page}");
    let link = link_in(
        &server,
        &mail_to(&smtp, "ada@new.example", VERIFY).await,
        "/email/verify",
    );
    let (status, _) = browser.visit(&first).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "superseded");
    let (status, _) = verify_through(&browser, &link).await;
    assert_eq!(status, StatusCode::OK);
    let user = server.state.store.user(&id).await.unwrap().unwrap();
    assert_eq!(user.email(), Some("ada@new.example"));
    assert!(user.email_verified());
    let notice = mail_to(&smtp, "ada@example.com", "Your email address was changed").await;
    assert!(notice.text.contains("ada@new.example"), "{}", notice.text);
}

#[tokio::test]
async fn a_required_address_holds_the_sign_in_until_its_link_is_opened() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, |c| {
        c.mail.verification = Some(EmailVerification::Required)
    })
    .await;
    server.user("ada").await;
    let secret = server.web_client("webapp").await;
    let rp = RelyingParty::discover(&server, "webapp", Some(secret)).await;
    let browser = Browser::new(&server);
    let pending = rp.authorize(&["email"], &[]);
    let (_, login) = browser.visit(pending.url.as_str()).await.page();
    let (status, waiting) = browser.log_in(&login, "ada").await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(
        waiting.contains(VERIFY) && waiting.contains("ada@example.com"),
        "{waiting}"
    );
    let mail = mail_to(&smtp, "ada@example.com", VERIFY).await;

    let (_, again) = browser
        .submit(&waiting, "/login/verify-email", &[("action", "continue")])
        .await
        .page();
    assert!(again.contains("not verified yet"), "{again}");
    let silent = rp.authorize(&["email"], &[("prompt", "none")]);
    let refused = browser.visit(silent.url.as_str()).await.left();
    assert_eq!(query(&refused)["error"], "interaction_required");

    let link = link_in(&server, &mail, "/email/verify");
    let (status, _) = verify_through(&Browser::new(&server), &link).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        mails_to(&smtp, "ada@example.com").len(),
        1,
        "one link, sent on arrival"
    );
    let (_, consent) = browser
        .submit(&waiting, "/login/verify-email", &[("action", "continue")])
        .await
        .page();
    let redirect = browser.consent(&consent, "allow").await.left();
    let (_, claims) = rp.redeem(&server, pending, &redirect).await;
    assert_eq!(claims.email_verified(), Some(true));

    // The consent form cannot skip the step: no code without a verified address.
    server.user("bob").await;
    let bob = Browser::new(&server);
    let pending = rp.authorize(&["email"], &[]);
    let (_, login) = bob.visit(pending.url.as_str()).await.page();
    let (_, waiting) = bob.log_in(&login, "bob").await.page();
    assert!(waiting.contains(VERIFY));
    let skipped = bob
        .submit(&waiting, "/consent", &[("decision", "allow")])
        .await
        .left();
    assert_eq!(query(&skipped)["error"], "interaction_required");
}

#[test]
fn verification_needs_mail() {
    let refused = tessera::Config::from_lookup(|name| match name {
        "TESSERA_EMAIL_VERIFICATION" => Some("required".into()),
        _ => None,
    });
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("needs TESSERA_SMTP_URL"));
}
