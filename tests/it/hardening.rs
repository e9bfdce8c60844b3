//! The security review's findings (issue 15), each proven against a running server: input that
//! cannot open the circuit breaker, closed accounts that stay closed, introspection per RFC 7662
//! §4, administrators' password resets, codes bound before they are used, slow clients cut off,
//! configurable lifetimes, and `require_mfa` on refresh.

use std::time::Duration;

use openidconnect::{OAuth2TokenResponse, PkceCodeVerifier, TokenResponse};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera::oauth::clients::ClientRegistration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;
use crate::token_lifecycle::{offline_client, refresh, signed_in, OFFLINE};

fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_string()
}

/// `app`'s refresh with `token` is refused as `invalid_grant`.
async fn assert_refresh_refused(server: &TestServer, secret: &str, token: &str) {
    let (status, body) = refresh(server, ("app", secret), token, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

/// A confidential client-credentials client with `lifetime` for its access tokens; returns its
/// secret.
async fn cc_client(server: &TestServer, client_id: &str, lifetime: Option<u32>) -> String {
    server
        .client(ClientRegistration {
            client_id: client_id.into(),
            grant_types: vec!["client_credentials".into()],
            scope: Some("api".into()),
            access_token_seconds: lifetime,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Finding 1: a NUL byte (which PostgreSQL refuses in text) is the client's error on every
/// surface, and twenty of them leave the breaker closed: sign-in and tokens still work.
#[tokio::test]
async fn control_characters_are_the_clients_error_and_never_open_the_circuit() {
    let server = TestServer::start_with(|config| config.circuit.failures = 2).await;
    server.user("ada").await;
    let secret = server.web_client("webapp").await;
    let cc = cc_client(&server, "cc", None).await;
    let scim = server.scim().await;
    let http = http_client();
    for _ in 0..5 {
        let page = http
            .get(server.url("/authorize?client_id=%00&redirect_uri=x"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        let (status, _, body) = post_token(
            &server,
            None,
            &[("grant_type", "client_credentials"), ("client_id", "a\0b")],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_request");
        let (status, _, body) = post_token(
            &server,
            Some(("\0", "x")),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "invalid_client");
        let filtered = scim
            .get("/Users?filter=userName%20eq%20%22a%5Cu0000%22")
            .await;
        filtered.assert_error(StatusCode::BAD_REQUEST, Some("invalidFilter"));
        let created = scim
            .post(
                "/Users",
                json!({"userName": "eve", "displayName": "e\u{0}ve"}),
            )
            .await;
        created.assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
        let missing = scim.get("/Users/%00").await;
        missing.assert_error(StatusCode::NOT_FOUND, None);
    }
    let browser = Browser::new(&server);
    let page = login_page(&server, &browser).await;
    let (status, again) = browser
        .submit(
            &page,
            "/login",
            &[("username", "ada\0"), ("password", PASSWORD)],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(is_login_page(&again), "the login form again");

    let metrics = crate::operations::metrics(&server).await;
    let open = crate::operations::sample(&metrics, "tessera_store_circuit_open");
    assert_eq!(open, Some(0.0), "the circuit stayed closed");
    let rp = RelyingParty::discover(&server, "webapp", Some(secret)).await;
    let (tokens, _) = sign_in(&server, &rp, &Browser::new(&server), "ada", &[]).await;
    assert!(!tokens.access_token().secret().is_empty());
    let (status, _, body) = post_token(
        &server,
        Some(("cc", &cc)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Finding 3: closing one's account and SCIM `active: false` are one state, which SCIM shows
/// and which a PATCH or PUT that does not name `active` keeps.
#[tokio::test]
async fn a_closed_account_stays_closed_through_scim_writes() {
    let server = TestServer::start().await;
    let scim = server.scim().await;
    let grace = scim
        .create_user(json!({"userName": "grace", "password": PASSWORD, "active": true}))
        .await;
    let path = format!("/Users/{}", field(&grace, "id"));
    let browser = Browser::new(&server);
    let (_, login) = browser.visit(&server.url("/account")).await.page();
    let (_, account) = browser.log_in(&login, "grace").await.page();
    let (status, _) = browser
        .submit(&account, "/account/deactivate", &[("password", PASSWORD)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);

    assert_eq!(scim.get(&path).await.body["active"], false);
    let patched = scim
        .patch(
            &path,
            json!([{"op": "replace", "path": "title", "value": "Engineer"}]),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["active"], false);
    let replaced = scim
        .put(&path, json!({"userName": "grace", "title": "Lead"}))
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["active"], false);
    let (_, login) = Browser::new(&server)
        .visit(&server.url("/account"))
        .await
        .page();
    let fresh = Browser::new(&server);
    let (_, login_again) = fresh.visit(&server.url("/account")).await.page();
    assert!(is_login_page(&login) && is_login_page(&login_again));
    assert_eq!(
        fresh.log_in(&login_again, "grace").await.page().0,
        StatusCode::UNAUTHORIZED,
        "still closed"
    );
    // An administrator reopens it the same way.
    let reopened = scim
        .patch(
            &path,
            json!([{"op": "replace", "path": "active", "value": true}]),
        )
        .await;
    assert_eq!(reopened.body["active"], true);
}

/// Finding 4 (RFC 7662 §4): a client introspects its own tokens; a resource server also other
/// clients' access tokens, never their refresh tokens; anyone else learns nothing.
#[tokio::test]
async fn introspection_answers_only_the_tokens_the_caller_may_use() {
    let (server, _, app_secret, tokens) = signed_in(|_| {}).await;
    let access = field(&tokens, "access_token");
    let refresh_token = field(&tokens, "refresh_token");
    let other = server.web_client("other").await;
    let own_access = server.introspect_as(("app", &app_secret), &access).await;
    assert_eq!(own_access["active"], true);
    let own_refresh = server
        .introspect_as(("app", &app_secret), &refresh_token)
        .await;
    assert_eq!(own_refresh["active"], true);
    assert_eq!(own_refresh["token_type"], "refresh_token");

    assert_eq!(
        server.introspect(&access).await["active"],
        true,
        "resource server"
    );
    assert_eq!(
        server.introspect(&refresh_token).await,
        json!({"active": false}),
        "a refresh token is never a resource server's business"
    );
    for token in [&access, &refresh_token] {
        assert_eq!(
            server.introspect_as(("other", &other), token).await,
            json!({"active": false}),
            "another client learns nothing"
        );
    }
}

/// Finding 5: a password set over SCIM ends the user's sessions and refresh-token grants.
#[tokio::test]
async fn a_password_reset_over_scim_ends_sessions_and_grants() {
    let (server, _, secret, tokens) = signed_in(|_| {}).await;
    let browser = Browser::new(&server);
    let (_, login) = browser.visit(&server.url("/account")).await.page();
    let (_, account) = browser.log_in(&login, "ada").await.page();
    assert!(account.contains("Your account"));
    let scim = server.scim().await;
    let found = scim.get("/Users?filter=userName%20eq%20%22ada%22").await;
    let id = field(&found.body["Resources"][0], "id");
    let patched = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "password", "value": "N3w-password-123"}]),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);

    let (_, now) = browser.visit(&server.url("/account")).await.page();
    assert!(is_login_page(&now), "the browser session ended");
    assert_refresh_refused(&server, &secret, &field(&tokens, "refresh_token")).await;
}

/// Findings 10 and 15: a request that fails the code's binding neither burns the code nor
/// revokes what it issued, and a replay racing the first redemption still revokes its tokens.
#[tokio::test]
async fn another_client_can_neither_burn_a_code_nor_revoke_its_grant() {
    let server = TestServer::start_with(|config| {
        config.transport.request_timeout = Duration::from_secs(1);
    })
    .await;
    server.user("ada").await;
    let secret = server.client(offline_client("app")).await.unwrap();
    server
        .client(ClientRegistration {
            public: true,
            ..web_registration("spa")
        })
        .await;
    let rp = RelyingParty::discover(&server, "app", Some(secret.clone())).await;
    let code_for = |browser: Browser| {
        let (server, rp) = (&server, &rp);
        async move {
            let pending = rp.authorize(&[OFFLINE], &[]);
            let (_, login) = browser.visit(pending.url.as_str()).await.page();
            let landing = browser.log_in(&login, "ada").await;
            (rp.code_from(server, &pending, &landing.left()), pending)
        }
    };
    let (code, pending) = code_for(Browser::new(&server)).await;
    let verifier = pending.verifier.secret().clone();
    let bogus = "a".repeat(43);
    for (client, verifier) in [("spa", verifier.as_str()), ("app", bogus.as_str())] {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
            ("client_id", client),
        ];
        let basic = (client == "app").then_some(("app", secret.as_str()));
        let form = if basic.is_some() {
            &form[..4]
        } else {
            &form[..]
        };
        let (status, _, body) = post_token(&server, basic, form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant");
    }
    let tokens = rp
        .exchange(code.clone(), PkceCodeVerifier::new(verifier.clone()))
        .await;
    let access = tokens.access_token().secret().clone();
    // Another client replaying the redeemed code revokes nothing.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
        ("client_id", "spa"),
    ];
    assert_eq!(
        post_token(&server, None, &form).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(server.introspect(&access).await["active"], true);

    // Concurrent redemptions by the code's own client: one wins, and the replay revokes the
    // winner's tokens even when it ran before they were stored.
    let (code, pending) = code_for(Browser::new(&server)).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", pending.verifier.secret().as_str()),
    ];
    let (first, second) = tokio::join!(
        post_token(&server, Some(("app", &secret)), &form),
        post_token(&server, Some(("app", &secret)), &form)
    );
    let winner = [first, second]
        .into_iter()
        .find(|(status, _, _)| *status == StatusCode::OK)
        .expect("one redemption wins");
    // The second revocation runs once the request timeout (1 s here) and 5 s have passed.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let access = field(&winner.2, "access_token");
    assert_eq!(server.introspect(&access).await["active"], false);
}

/// Finding 9: a request head that trickles in is cut off after the header timeout, and so is
/// an idle kept-alive connection.
#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    let server = TestServer::start_with(|config| {
        config.transport.header_timeout = Duration::from_secs(1);
    })
    .await;
    let address = server.issuer.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    for (name, stream) in [("slow", &mut slow), ("idle", &mut idle)] {
        let mut seen = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            let mut buffer = [0u8; 1024];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buffer[..n]),
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the {name} connection was not closed");
        if name == "idle" {
            assert!(seen.starts_with(b"HTTP/1.1 200"), "answered first");
        }
    }
}

/// Item 11: lifetimes from the configuration, and per client.
#[tokio::test]
async fn token_lifetimes_follow_the_configuration_and_the_client() {
    let server = TestServer::start_with(|config| {
        config.lifetimes.access_token = Duration::from_secs(120);
    })
    .await;
    for (client_id, seconds, expected) in [("server-default", None, 120), ("short", Some(60), 60)] {
        let secret = cc_client(&server, client_id, seconds).await;
        let (status, _, body) = post_token(
            &server,
            Some((client_id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["expires_in"], expected);
        let claims = decode_segment(&field(&body, "access_token"), 1);
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            expected
        );
    }
}

/// Finding 17: a client switched to `require_mfa` gets no tokens from a family that began with
/// a password alone.
#[tokio::test]
async fn refresh_honours_a_client_switched_to_require_mfa() {
    let (server, _, secret, tokens) = signed_in(|_| {}).await;
    let mut stricter = offline_client("app");
    stricter.require_mfa = true;
    tessera::oauth::clients::put(server.state.store.as_ref(), stricter, Some(&secret))
        .await
        .unwrap();
    assert_refresh_refused(&server, &secret, &field(&tokens, "refresh_token")).await;
}

/// Finding 12 (CONTRACT.md): a form POST from another site, or from a sibling subdomain, is
/// refused before the form is looked at; one from our own pages is not.
#[tokio::test]
async fn form_posts_from_another_site_are_refused() {
    let server = TestServer::start().await;
    let post = |origin: Option<String>, site: Option<&'static str>| {
        let mut request = http_client()
            .post(server.url("/login"))
            .form(&[("username", "ada"), ("password", PASSWORD)]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    for (origin, site) in [
        (Some("https://evil.example".to_string()), None),
        (None, Some("cross-site")),
        (None, Some("same-site")),
    ] {
        let (status, page) = post(origin, site).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(page.contains("another site"), "{page}");
    }
    let (status, page) = post(Some(server.issuer.clone()), Some("same-origin")).await;
    assert!(!page.contains("another site"), "{status}: {page}");
}

/// Finding 12: once signed in, forms carry a token bound to the session, so the token a page
/// showed before the sign-in (which a cookie planted before it would also give) is refused after.
#[tokio::test]
async fn the_form_token_changes_at_sign_in() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let browser = Browser::new(&server);
    let (_, login) = browser.visit(&server.url("/account")).await.page();
    let (_, account) = browser.log_in(&login, "ada").await.page();
    assert!(account.contains("Your account"), "{account}");
    let token = |page: &str| crate::harness::form_inputs(page)["csrf_token"].clone();
    assert_ne!(token(&login), token(&account));
    let profile = [
        ("given_name", "Ada"),
        ("family_name", "Lovelace"),
        ("email", "ada@example.com"),
    ];
    let (status, _) = browser
        .submit(&login, "/account/profile", &profile)
        .await
        .page();
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the token from before the sign-in"
    );
    let (status, page) = browser
        .submit(&account, "/account/profile", &profile)
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{page}");
}

/// RFC 8265 (library audit): user names fold by PRECIS UsernameCaseMapped, so a spelling that
/// looks the same (here full-width letters) is the same account at sign-in and at SCIM creation,
/// and a name the profile disallows is refused.
#[tokio::test]
async fn user_names_that_look_alike_are_one_account() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let full_width = "\u{ff21}\u{ff24}\u{ff21}";
    let browser = Browser::new(&server);
    let (_, login) = browser.visit(&server.url("/account")).await.page();
    let (_, account) = browser.log_in(&login, full_width).await.page();
    assert!(account.contains("Your account"), "{account}");

    let scim = server.scim().await;
    let user = |name: &str| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name});
    scim.post("/Users", user(full_width))
        .await
        .assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    scim.post("/Users", user("smile\u{263a}"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
}

/// Finding 8: storage stays bounded. Visits to `/account` without a session store nothing,
/// sign-ins started from one address are limited, and expired rows are purged as fast as they
/// expire (a purge round goes on until nothing is left, however small its batches).
#[tokio::test]
async fn a_soak_with_short_lifetimes_leaves_no_rows_behind() {
    let server = TestServer::start_with(|config| {
        config.lifetimes.access_token = Duration::from_secs(1);
        config.lifetimes.interaction = Duration::from_secs(1);
        config.purge.interval = Duration::from_secs(1);
        config.purge.batch = 7;
        config.limits.sign_in_starts.max_failures = 120;
    })
    .await;
    let secret = server.web_client("webapp").await;
    let cc = cc_client(&server, "cc", None).await;
    let rp = RelyingParty::discover(&server, "webapp", Some(secret)).await;
    let http = http_client();
    for _ in 0..100 {
        let account = http.get(server.url("/account")).send().await.unwrap();
        assert_eq!(account.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(
        server.count_rows("artifacts").await,
        0,
        "no row for visitors"
    );
    let mut refused = 0;
    for _ in 0..150 {
        let start = http
            .get(rp.authorize(&[], &[]).url.as_str())
            .send()
            .await
            .unwrap();
        let location = start.headers()["location"].to_str().unwrap().to_string();
        if location.contains("error=temporarily_unavailable") {
            refused += 1;
        }
    }
    // As with every throttle rule, the start that reaches the limit locks the address.
    assert_eq!(
        refused, 31,
        "sign-ins started beyond the address's limit are refused"
    );
    for _ in 0..200 {
        let form = [("grant_type", "client_credentials")];
        let (status, _, _) = post_token(&server, Some(("cc", &cc)), &form).await;
        assert_eq!(status, StatusCode::OK);
    }
    // Purging 7 rows a table a round, as rounds did before, would take half a minute for these.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = server.count_rows("tokens").await + server.count_rows("artifacts").await;
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} expired rows still stored"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Finding 14 (RP-Initiated Logout §2): an ID token whose signing key has been retired since
/// still starts a logout, which the user then confirms; a token of another issuer does not.
#[tokio::test]
async fn a_logout_hint_signed_by_a_retired_key_asks_for_confirmation() {
    let server = TestServer::start().await;
    server.user("ada").await;
    server.web_client("webapp").await;
    let retired = tessera::keys::generate(tessera::keys::SigningAlg::Es256, 0).unwrap();
    let ring = tessera::keys::KeyRing::from_records(&[retired], 0).unwrap();
    let hint = |iss: &str| {
        let claims = json!({"iss": iss, "sub": "someone", "aud": "webapp", "exp": 1, "iat": 0});
        ring.sign(tessera::keys::SigningAlg::Es256, "JWT", &claims)
            .unwrap()
    };
    let browser = Browser::new(&server);
    let (_, login) = browser.visit(&server.url("/account")).await.page();
    browser.log_in(&login, "ada").await.page();
    let ours = hint(&server.issuer);
    let (status, page) = browser
        .visit(&server.url(&format!("/logout?id_token_hint={ours}")))
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("name=\"decision\""),
        "a confirmation form: {page}"
    );
    let theirs = hint("https://elsewhere.example");
    let (status, _) = browser
        .visit(&server.url(&format!("/logout?id_token_hint={theirs}")))
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Finding 18 (OIDC Core §3.1.2.1): with an `id_token_hint` naming another user than the one
/// signed in, `prompt=none` answers `login_required` instead of a code for the wrong user.
#[tokio::test]
async fn an_id_token_hint_for_another_user_is_login_required_under_prompt_none() {
    let server = TestServer::start().await;
    server.user("alice").await;
    server.user("bob").await;
    let secret = server
        .client(ClientRegistration {
            skip_consent: true,
            ..web_registration("app")
        })
        .await;
    let rp = RelyingParty::discover(&server, "app", secret).await;
    let alice = Browser::new(&server);
    let (alices, _) = sign_in(&server, &rp, &alice, "alice", &[]).await;
    let (bobs, _) = sign_in(&server, &rp, &Browser::new(&server), "bob", &[]).await;
    let silently = |hint: String| {
        let pending = rp.authorize(&[], &[("prompt", "none"), ("id_token_hint", &hint)]);
        let alice = &alice;
        async move { query(&alice.visit(pending.url.as_str()).await.left()) }
    };
    let for_bob = silently(bobs.id_token().unwrap().to_string()).await;
    assert_eq!(
        for_bob.get("error").map(String::as_str),
        Some("login_required")
    );
    assert!(!for_bob.contains_key("code"));
    let for_alice = silently(alices.id_token().unwrap().to_string()).await;
    assert!(for_alice.contains_key("code"), "{for_alice:?}");
}
