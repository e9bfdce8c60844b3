//! Self-service sign-up (`TESSERA_SIGNUP=open`): from the login page or `prompt=create`, on to
//! the client that asked; what it refuses; and `prompt=create` when sign-up is off.

use reqwest::StatusCode;
use tessera::config::EmailVerification;
use tessera::store::events::Channel;
use tessera::Config;

use crate::harness::*;
use crate::mailbox::{link_in, mail_to, mailing_server};
use crate::servers::Smtp;

const VERIFY: &str = "Verify your email address";

fn open(config: &mut Config) {
    config.signup.open = true;
}

async fn sign_up(browser: &Browser, page: &str, fields: &[(&str, &str)]) -> Landing {
    browser.submit(page, "/signup", fields).await
}

const CAROL: [(&str, &str); 3] = [
    ("username", "carol"),
    ("email", "carol@example.com"),
    ("password", "a long enough password"),
];

#[tokio::test]
async fn a_visitor_signs_up_from_the_login_page_and_goes_on_to_the_client() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, open).await;
    let secret = server.web_client("webapp").await;
    let rp = RelyingParty::discover(&server, "webapp", Some(secret)).await;
    let browser = Browser::new(&server);
    let pending = rp.authorize(&["email"], &[]);
    let page = signup_page_of(&server, &browser, &pending).await;

    let (status, consent) = sign_up(&browser, &page, &CAROL).await.page();
    assert_eq!(status, StatusCode::OK);
    let redirect = browser.consent(&consent, "allow").await.left();
    let (_, claims) = rp.redeem(&server, pending, &redirect).await;
    let carol = server
        .state
        .store
        .user_by_username("carol")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims.subject().as_str(), carol.id);
    assert_eq!(claims.email().unwrap().as_str(), "carol@example.com");
    assert_eq!(
        claims.email_verified(),
        Some(false),
        "until the link is used"
    );
    let mail = mail_to(&smtp, "carol@example.com", VERIFY).await;
    assert!(link_in(&server, &mail, "/email/verify").contains("token="));

    let events = server
        .state
        .store
        .claim_events(Channel::Webhooks, i64::MAX / 2, i64::MAX / 2, 100)
        .await
        .unwrap();
    let created = events
        .iter()
        .find(|e| e.event.kind.name() == "user.created")
        .expect("user.created published");
    assert_eq!(created.event.data["userName"], "carol");
    assert_eq!(created.event.data["origin"], "signup");
}

/// The sign-up page the login page of `pending` links to.
async fn signup_page_of(server: &TestServer, browser: &Browser, pending: &Pending) -> String {
    let (_, login) = browser.visit(pending.url.as_str()).await.page();
    let start = login
        .find("href=\"/signup?interaction=")
        .expect("a sign-up link")
        + 6;
    let href = &login[start..start + login[start..].find('"').unwrap()];
    let (status, page) = browser.visit(&server.url(href)).await.page();
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Create an account"));
    page
}

#[tokio::test]
async fn bad_sign_ups_make_no_account() {
    let server = TestServer::start_with(|c| {
        open(c);
        c.signup.email_domains = vec!["example.com".into()];
    })
    .await;
    server.user("ada").await;
    let browser = Browser::new(&server);
    let (status, page) = browser.visit(&server.url("/signup")).await.page();
    assert_eq!(status, StatusCode::OK);
    let with = |name: &'static str, value: &'static str| {
        CAROL.map(|(field, default)| (field, if field == name { value } else { default }))
    };
    let cases = [
        (with("username", "ada"), StatusCode::CONFLICT, "taken"),
        (
            with("username", "ca\u{7}rol"),
            StatusCode::BAD_REQUEST,
            "user name",
        ),
        (
            with("username", " carol"),
            StatusCode::BAD_REQUEST,
            "user name",
        ),
        (
            with("email", "carol"),
            StatusCode::BAD_REQUEST,
            "does not look right",
        ),
        (
            with("email", "carol@elsewhere.example"),
            StatusCode::BAD_REQUEST,
            "domains",
        ),
        (
            with("password", "short"),
            StatusCode::BAD_REQUEST,
            "too short",
        ),
        (
            with("password", "password123"),
            StatusCode::BAD_REQUEST,
            "too common",
        ),
        (
            with("password", "carol@example.com"),
            StatusCode::BAD_REQUEST,
            "too common",
        ),
    ];
    for (fields, status, says) in cases {
        let (got, answer) = sign_up(&browser, &page, &fields).await.page();
        assert_eq!(got, status, "{fields:?}");
        assert!(answer.contains(says), "{fields:?}: {answer}");
    }
    let forged = browser.submit("<form></form>", "/signup", &CAROL).await;
    assert_eq!(forged.page().0, StatusCode::FORBIDDEN, "no CSRF token");
    let store = &server.state.store;
    assert!(store.user_by_username("carol").await.unwrap().is_none());

    // Alone, sign-up ends on the account page, signed in.
    let (status, account) = sign_up(&browser, &page, &CAROL).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(
        account.contains("Your account") && account.contains("carol"),
        "{account}"
    );
}

#[tokio::test]
async fn prompt_create_opens_sign_up_only_where_it_is_open() {
    let server = TestServer::start_with(open).await;
    server.web_client("webapp").await;
    let discovery = get_json(&server.url("/.well-known/openid-configuration")).await;
    assert!(discovery["prompt_values_supported"]
        .as_array()
        .unwrap()
        .contains(&"create".into()));
    let rp = RelyingParty::discover(&server, "webapp", None).await;
    let browser = Browser::new(&server);
    let (status, page) = browser
        .visit(rp.authorize(&[], &[("prompt", "create")]).url.as_str())
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Create an account"), "{page}");

    let closed = TestServer::start().await;
    closed.web_client("webapp").await;
    let discovery = get_json(&closed.url("/.well-known/openid-configuration")).await;
    assert!(!discovery["prompt_values_supported"]
        .as_array()
        .unwrap()
        .contains(&"create".into()));
    let rp = RelyingParty::discover(&closed, "webapp", None).await;
    let browser = Browser::new(&closed);
    let refused = browser
        .visit(rp.authorize(&[], &[("prompt", "create")]).url.as_str())
        .await
        .left();
    assert_eq!(query(&refused)["error"], "invalid_request");
    assert!(!login_page(&closed, &browser).await.contains("/signup"));
    let (status, _) = browser.visit(&closed.url("/signup")).await.page();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_new_account_waits_for_its_address_where_verification_is_required() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, |c| {
        open(c);
        c.mail.verification = Some(EmailVerification::Required);
    })
    .await;
    let secret = server.web_client("webapp").await;
    let rp = RelyingParty::discover(&server, "webapp", Some(secret)).await;
    let browser = Browser::new(&server);
    let pending = rp.authorize(&["email"], &[]);
    let page = signup_page_of(&server, &browser, &pending).await;
    let (status, waiting) = sign_up(&browser, &page, &CAROL).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(waiting.contains(VERIFY), "{waiting}");
    let mail = mail_to(&smtp, "carol@example.com", VERIFY).await;
    let link = link_in(&server, &mail, "/email/verify");
    let (_, form) = browser.visit(&link).await.page();
    browser.submit_all(&form, "/email/verify", &[]).await.page();
    let (_, consent) = browser
        .submit(&waiting, "/login/verify-email", &[("action", "continue")])
        .await
        .page();
    let redirect = browser.consent(&consent, "allow").await.left();
    rp.code_from(&server, &pending, &redirect);
}

/// `TESSERA_SIGNUP=invite`: no sign-up but through `tessera user invite`, whose mailed link makes
/// one account, at the invited address (verified), in the invited group; a refused attempt
/// keeps the invitation.
#[tokio::test]
async fn an_invitation_makes_one_account_at_its_address_in_its_group() {
    let smtp = Smtp::new();
    let server = mailing_server(&smtp, |c| c.signup.invitations = true).await;
    server.user("ada").await;
    let browser = Browser::new(&server);
    let (status, page) = browser.visit(&server.url("/signup")).await.page();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("By invitation only"));
    let pilots = server.scim().await.create_group("pilots", &[]).await;

    let invited = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "user",
            "invite",
            "--email",
            "dan@example.com",
            "--group",
            "pilots",
        ])
        .env("DATABASE_URL", &server.database_url)
        .env("TESSERA_ISSUER", &server.issuer)
        .env("TESSERA_SIGNUP", "invite")
        .env("TESSERA_SMTP_URL", smtp.url())
        .env("TESSERA_MAIL_FROM", "id@tessera.test")
        .output()
        .unwrap();
    assert!(
        invited.status.success(),
        "{}",
        String::from_utf8_lossy(&invited.stderr)
    );
    let printed = String::from_utf8(invited.stdout)
        .unwrap()
        .trim()
        .to_string();
    let mail = mail_to(
        &smtp,
        "dan@example.com",
        "You are invited to make an account",
    )
    .await;
    assert!(
        mail.text.contains(&printed),
        "the mail carries the printed link"
    );

    let (status, form) = browser.visit(&printed).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(
        form.contains("value=\"dan@example.com\" readonly"),
        "{form}"
    );
    let taken = [("username", "ada"), ("password", "a long enough password")];
    let (status, form) = browser.submit_all(&form, "/signup", &taken).await.page();
    assert_eq!(status, StatusCode::CONFLICT, "{form}");
    let dan = [
        ("username", "dan"),
        ("password", "a long enough password"),
        ("email", "eve@elsewhere.example"),
    ];
    let (status, account) = browser.submit_all(&form, "/signup", &dan).await.page();
    assert_eq!(
        status,
        StatusCode::OK,
        "the invitation survived the refusal: {account}"
    );
    let store = &server.state.store;
    let user = store.user_by_username("dan").await.unwrap().unwrap();
    assert_eq!(
        user.email(),
        Some("dan@example.com"),
        "the invited address, not the form's"
    );
    assert!(user.email_verified(), "the link proved it");
    let group = store
        .group(pilots["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(group.members.iter().any(|m| m.user_id == user.id));
    let (status, _) = Browser::new(&server).visit(&printed).await.page();
    assert_eq!(status, StatusCode::BAD_REQUEST, "used once");
    let events = store
        .claim_events(Channel::Webhooks, i64::MAX / 2, i64::MAX / 2, 100)
        .await
        .unwrap();
    let created = events
        .iter()
        .find(|e| e.event.kind.name() == "user.created" && e.event.data["userName"] == "dan")
        .expect("user.created published");
    assert_eq!(created.event.data["origin"], "invitation");
}
