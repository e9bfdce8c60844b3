//! Password recovery by mail, against a real SMTP server (aiosmtpd) whose delivered messages
//! the tests read: the forgot page, the mailed link, the reset and what it ends.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tessera::store::events::Channel;

use crate::account::{account, app_session, refresh_works};
use crate::harness::*;
use crate::mailbox::{link_in, mail_to, mailing_server, mails_to, Mail};
use crate::servers::Smtp;
use crate::throttle::{attempt, rule};
use crate::token_lifecycle::offline_client;

const NEW_PASSWORD: &str = "a new and long passphrase";

fn reset_link(server: &TestServer, mail: &Mail) -> String {
    link_in(server, mail, "/password/reset")
}

/// Asks for a link for `email` through the forgot page; returns the answer.
async fn ask_for_link(server: &TestServer, browser: &Browser, email: &str) -> Landing {
    let (status, page) = browser.visit(&server.url("/password/forgot")).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("name=\"email\""), "{page}");
    browser
        .submit(&page, "/password/forgot", &[("email", email)])
        .await
}

/// Opens a link and sets `password` through its form.
async fn reset_through(browser: &Browser, link: &str, password: &str) -> (StatusCode, String) {
    let (status, form) = browser.visit(link).await.page();
    assert_eq!(status, StatusCode::OK, "{form}");
    assert!(form.contains("name=\"password\""), "{form}");
    browser
        .submit_all(&form, "/password/reset", &[("password", password)])
        .await
        .page()
}

/// Signs in to the account page with `password`; whether it worked.
async fn signs_in_with(server: &TestServer, password: &str) -> bool {
    let browser = Browser::new(server);
    let (_, login) = browser.visit(&server.url("/account")).await.page();
    let (_, page) = attempt(&browser, &login, "ada", password).await.page();
    page.contains("Your account")
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, |_| {}).await;
    let id = server.user("ada").await;
    let secret = server.client(offline_client("app")).await.unwrap();
    let (_, refresh_token) = app_session(&server, &secret).await;
    let (signed_in, _) = account(&server, "ada").await;
    assert!(login_page(&server, &Browser::new(&server))
        .await
        .contains("href=\"/password/forgot\""));

    let browser = Browser::new(&server);
    let (status, answer) = ask_for_link(&server, &browser, "ADA@example.com")
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(answer.contains("Check your mail"), "{answer}");
    let mail = mail_to(&smtp, "ada@example.com", "Reset your password").await;
    assert!(mail.text.contains("Hello ada"));
    let link = reset_link(&server, &mail);

    // Opening the link (as a mail scanner does) uses nothing up.
    let (status, _) = browser.visit(&link).await.page();
    assert_eq!(status, StatusCode::OK);
    let (status, page) = reset_through(&browser, &link, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Password changed"), "{page}");

    assert!(signs_in_with(&server, NEW_PASSWORD).await);
    assert!(!signs_in_with(&server, PASSWORD).await);
    assert!(
        !refresh_works(&server, &secret, &refresh_token).await,
        "refresh-token grants are revoked"
    );
    let (_, shown) = signed_in.visit(&server.url("/account")).await.page();
    assert!(is_login_page(&shown), "the old session is signed out");
    let notice = mail_to(&smtp, "ada@example.com", "Your password was reset").await;
    assert!(notice.text.contains("Hello ada"));

    let (status, page) = browser.visit(&link).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "used once: {page}");
    assert!(page.contains("Link expired"));
    let store = &server.state.store;
    let events = store
        .claim_events(Channel::Webhooks, i64::MAX / 2, i64::MAX / 2, 100)
        .await
        .unwrap();
    let reset = events
        .iter()
        .find(|e| e.event.kind.name() == "user.password_reset")
        .expect("user.password_reset published");
    assert_eq!(reset.event.data["id"], id.as_str());
}

#[tokio::test]
async fn an_unknown_or_malformed_address_gets_no_mail() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, |_| {}).await;
    server.user("ada").await;
    let browser = Browser::new(&server);
    let (status, unknown) = ask_for_link(&server, &browser, "nobody@example.com")
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    let (_, known) = ask_for_link(&server, &browser, "ada@example.com")
        .await
        .page();
    assert_eq!(unknown, known, "the same answer either way");
    mail_to(&smtp, "ada@example.com", "Reset your password").await;
    assert_eq!(smtp.messages().len(), 1, "nothing for the unknown address");

    for bad in ["", "ada@example.com\u{7}", &"a".repeat(300)] {
        let (status, page) = ask_for_link(&server, &browser, bad).await.page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(page.contains("Enter the email address of your account."));
    }
    let forged = browser
        .submit(
            "<form></form>",
            "/password/forgot",
            &[("email", "ada@example.com")],
        )
        .await;
    assert_eq!(forged.page().0, StatusCode::FORBIDDEN, "no CSRF token");
}

#[tokio::test]
async fn tampered_expired_and_superseded_links_are_refused() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, |c| {
        c.mail.reset_link_lifetime = Duration::from_secs(3)
    })
    .await;
    server.user("ada").await;
    let browser = Browser::new(&server);
    ask_for_link(&server, &browser, "ada@example.com").await;
    let first = reset_link(
        &server,
        &mail_to(&smtp, "ada@", "Reset your password").await,
    );

    let mut tampered = first.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for link in [
        tampered,
        server.url("/password/reset"),
        first.replace("token=", "token=x"),
    ] {
        let (status, page) = browser.visit(&link).await.page();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{link}");
        assert!(page.contains("Link expired"));
    }
    let (status, page) = reset_through(&browser, &first, "short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("That password is too short."), "{page}");
    assert!(signs_in_with(&server, PASSWORD).await, "nothing changed");

    wait_past(3).await;
    let (status, _) = browser.visit(&first).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "expired");

    // Of two links, the one used ends the other.
    ask_for_link(&server, &browser, "ada@example.com").await;
    ask_for_link(&server, &browser, "ada@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while mails_to(&smtp, "ada@").len() < 3 {
        assert!(Instant::now() < deadline, "two more links");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let links: Vec<String> = mails_to(&smtp, "ada@")
        .iter()
        .map(|mail| reset_link(&server, mail))
        .filter(|link| *link != first)
        .collect();
    let (status, _) = reset_through(&browser, &links[0], NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = browser.visit(&links[1]).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "superseded");
}

#[tokio::test]
async fn a_reset_lifts_the_sign_in_lock() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, |c| c.limits.account = rule(2, 600)).await;
    server.user("ada").await;
    for _ in 0..2 {
        assert!(!signs_in_with(&server, "wrong password").await);
    }
    assert!(!signs_in_with(&server, PASSWORD).await, "locked");
    let browser = Browser::new(&server);
    ask_for_link(&server, &browser, "ada@example.com").await;
    let link = reset_link(
        &server,
        &mail_to(&smtp, "ada@", "Reset your password").await,
    );
    reset_through(&browser, &link, NEW_PASSWORD).await;
    assert!(signs_in_with(&server, NEW_PASSWORD).await);
}

#[tokio::test]
async fn mail_asked_for_while_the_smtp_server_is_down_arrives_when_it_is_back() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, |_| {}).await;
    server.user("ada").await;
    smtp.stop();
    let browser = Browser::new(&server);
    let (status, _) = ask_for_link(&server, &browser, "ada@example.com")
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    // Long enough for a try to fail (the outbox is polled every second).
    wait_past(2).await;
    smtp.start();
    let link = reset_link(
        &server,
        &mail_to(&smtp, "ada@", "Reset your password").await,
    );
    let (status, _) = reset_through(&browser, &link, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn requests_are_throttled_per_address_and_per_network_alike() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, |c| {
        c.limits.mail_link_address = rule(2, 60);
        c.limits.mail_link_ip = rule(3, 60);
    })
    .await;
    let browser = Browser::new(&server);
    let mut answers = Vec::new();
    for email in ["a@example.com", "a@example.com", "A@example.com"] {
        answers.push(ask_for_link(&server, &browser, email).await);
    }
    for email in ["b@example.com", "c@example.com"] {
        answers.push(ask_for_link(&server, &browser, email).await);
    }
    let statuses: Vec<(StatusCode, Option<u64>)> = answers
        .into_iter()
        .map(|landing| match landing {
            Landing::Page {
                status,
                retry_after,
                body,
            } => {
                if status == StatusCode::TOO_MANY_REQUESTS {
                    assert!(body.contains("Too many password resets"), "{body}");
                }
                (status, retry_after)
            }
            Landing::Left(url) => panic!("sent to {url}"),
        })
        .collect();
    let throttled = (StatusCode::TOO_MANY_REQUESTS, Some(60));
    assert_eq!(
        statuses,
        [
            (StatusCode::OK, None),
            (StatusCode::OK, None),
            throttled,
            (StatusCode::OK, None),
            throttled,
        ],
        "the address, case-folded, then the network"
    );
}

#[tokio::test]
async fn without_mail_there_is_no_recovery() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    assert!(!login_page(&server, &browser)
        .await
        .contains("/password/forgot"));
    let (status, _) = browser.visit(&server.url("/password/forgot")).await.page();
    assert_eq!(status, StatusCode::NOT_FOUND);
}
