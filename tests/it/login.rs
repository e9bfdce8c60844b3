//! The login page: generic failures, CSRF, and interactions bound to their browser.

use reqwest::StatusCode;

use crate::harness::*;

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let browser = Browser::new(&server);
    let page = login_page(&server, &browser).await;

    let attempt = |username: &'static str, password: &'static str| {
        let (browser, page) = (&browser, &page);
        async move {
            let (status, body) = browser
                .submit(
                    page,
                    "/login",
                    &[("username", username), ("password", password)],
                )
                .await
                .page();
            // Only the filled-in name differs; a random id that happens to spell it stays.
            let filled = |name: &str| format!("value=\"{name}\"");
            (status, body.replace(&filled(username), &filled("USER")))
        }
    };
    let (wrong_status, wrong_page) = attempt("ada", "not the password").await;
    let (unknown_status, unknown_page) = attempt("grace", "not the password").await;
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_status, unknown_status);
    assert!(wrong_page.contains("Incorrect username or password."));
    assert_eq!(
        wrong_page, unknown_page,
        "the answer does not reveal whether the user exists"
    );

    // The same interaction still works with the right password.
    let (status, consent) = browser.log_in(&page, "ada").await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(consent.contains("name=\"decision\""));
}

#[tokio::test]
async fn login_without_the_csrf_token_is_refused() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let browser = Browser::new(&server);
    let page = login_page(&server, &browser).await;
    let interaction = form_inputs(&page)["interaction"].clone();
    for token in ["", "forged-token"] {
        let landing = browser
            .submit(
                "",
                "/login",
                &[
                    ("interaction", &interaction),
                    ("csrf_token", token),
                    ("username", "ada"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        let (status, body) = landing.page();
        assert_eq!(status, StatusCode::FORBIDDEN, "{token:?}");
        assert!(!body.contains("name=\"decision\""));
    }
}

#[tokio::test]
async fn an_interaction_cannot_be_finished_from_another_browser() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let victim = Browser::new(&server);
    let page = login_page(&server, &victim).await;
    let interaction = form_inputs(&page)["interaction"].clone();

    // The attacker has their own CSRF cookie but the victim's interaction id.
    let attacker = Browser::new(&server);
    let own_page = login_page_for(&server, &attacker).await;
    let landing = attacker
        .submit(
            &own_page,
            "/login",
            &[
                ("interaction", &interaction),
                ("username", "ada"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let (status, _) = landing.page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn login_page_for(server: &TestServer, browser: &Browser) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("client_id", "webapp"),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
        ("scope", "openid"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ]);
    browser.visit(url.as_str()).await.page().1
}

#[tokio::test]
async fn pages_are_plain_html_forms_with_safe_headers() {
    let server = TestServer::start().await;
    let secret = server.web_client("webapp").await;
    let rp = RelyingParty::discover(&server, "webapp", Some(secret)).await;
    let response = http_client()
        .get(rp.authorize(&[], &[]).url.as_str())
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        cookie.contains("httponly") && cookie.contains("samesite=lax"),
        "{cookie}"
    );
    let login = response.headers()["location"].to_str().unwrap().to_string();
    let page = http_client()
        .get(server.url(&login))
        .header(
            "cookie",
            response.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let body = page.text().await.unwrap();
    assert!(body.contains("<form method=\"post\""));
    assert!(!body.contains("<script"), "works without JavaScript");
    let inputs = form_inputs(&body);
    for name in ["username", "password", "csrf_token", "interaction"] {
        assert!(inputs.contains_key(name), "{name} input");
    }
}
