//! Account self-service: profile, password change, session list and sign-out, closing the
//! account. Every form needs the CSRF token and acts only on the browser's own user.

use openidconnect::OAuth2TokenResponse;
use reqwest::StatusCode;
use serde_json::Value;
use tessera::store::ArtifactKind;

use crate::harness::*;
use crate::throttle::rule;
use crate::token_lifecycle::{offline_client, refresh, OFFLINE};

/// Signs `username` in to `/account` in a fresh browser; returns it with the account page.
pub async fn account(server: &TestServer, username: &str) -> (Browser, String) {
    let browser = Browser::new(server);
    let (_, login) = browser.visit(&server.url("/account")).await.page();
    let (status, page) = browser.log_in(&login, username).await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Your account"), "{page}");
    (browser, page)
}

/// The `sid` values of the sign-out forms on an account page (every session but this one).
fn other_sids(page: &str) -> Vec<String> {
    page.split("name=\"sid\" value=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

/// A second session of `ada`: a code flow in another browser, with a refresh token.
pub async fn app_session(server: &TestServer, secret: &str) -> (Browser, String) {
    let rp = RelyingParty::discover(server, "app", Some(secret.to_string())).await;
    let browser = Browser::new(server);
    let (tokens, _) = sign_in(server, &rp, &browser, "ada", &[OFFLINE]).await;
    (browser, tokens.refresh_token().unwrap().secret().clone())
}

pub async fn refresh_works(server: &TestServer, secret: &str, token: &str) -> bool {
    refresh(server, ("app", secret), token, &[]).await.0 == StatusCode::OK
}

#[tokio::test]
async fn the_profile_form_edits_name_and_email() {
    let server = TestServer::start().await;
    let id = server.user("ada").await;
    let (browser, page) = account(&server, "ada").await;
    // Without mail there is nothing to verify: the address changes at once, with the password.
    let fields = [
        ("given_name", "Ada"),
        ("family_name", "Lovelace"),
        ("email", "ada@lovelace.example"),
        ("password", PASSWORD),
    ];
    let (status, page) = browser
        .submit(&page, "/account/profile", &fields)
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Your profile is saved."));
    assert!(
        page.contains("value=\"Lovelace\""),
        "the form shows what is stored"
    );
    let user = server.state.store.user(&id).await.unwrap().unwrap();
    assert_eq!(user.email(), Some("ada@lovelace.example"));
    assert_eq!(user.attributes["name"]["familyName"], "Lovelace");

    let (status, page) = browser
        .submit(&page, "/account/profile", &[("email", "not an address")])
        .await
        .page();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("That email address does not look right."));
    let unchanged = server.state.store.user(&id).await.unwrap().unwrap();
    assert_eq!(unchanged, user);

    let forged = browser
        .submit(
            "<form></form>",
            "/account/profile",
            &[("given_name", "Eve")],
        )
        .await;
    assert_eq!(forged.page().0, StatusCode::FORBIDDEN, "no CSRF token");
}

#[tokio::test]
async fn sessions_are_listed_and_another_one_can_be_signed_out() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let secret = server.client(offline_client("app")).await.unwrap();
    let (elsewhere, refresh_token) = app_session(&server, &secret).await;
    let (browser, page) = account(&server, "ada").await;
    assert!(page.contains("(this browser)"));
    let sids = other_sids(&page);
    assert_eq!(sids.len(), 1, "one other session: {page}");

    let (status, page) = browser
        .submit(&page, "/account/sessions/end", &[("sid", &sids[0])])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("That session is signed out."));
    assert!(other_sids(&page).is_empty());
    assert!(
        !refresh_works(&server, &secret, &refresh_token).await,
        "the grants made in that session are revoked"
    );
    let (_, shown) = elsewhere.visit(&server.url("/account")).await.page();
    assert!(is_login_page(&shown), "signed out there");
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_signs_out_other_sessions() {
    let server = TestServer::start_with(|c| c.limits.account = rule(3, 60)).await;
    let id = server.user("ada").await;
    let secret = server.client(offline_client("app")).await.unwrap();
    // Offline access that outlived its session (the session expired, the refresh token lives).
    let (_, orphan) = app_session(&server, &secret).await;
    let store = &server.state.store;
    for (id_hash, _) in store
        .user_artifacts(ArtifactKind::Session, &id, tessera::clock::now())
        .await
        .unwrap()
    {
        store
            .delete_artifact(ArtifactKind::Session, &id_hash)
            .await
            .unwrap();
    }
    let (_, refresh_token) = app_session(&server, &secret).await;
    let (browser, page) = account(&server, "ada").await;
    let change = |current: &'static str, new: &'static str| {
        let (browser, page) = (&browser, &page);
        async move {
            browser
                .submit(
                    page,
                    "/account/password",
                    &[("current_password", current), ("new_password", new)],
                )
                .await
                .page()
        }
    };
    let new_password = "a brand new passphrase";
    let (status, shown) = change("wrong", new_password).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(shown.contains("Your current password is not correct."));
    let (status, shown) = change(PASSWORD, "short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(shown.contains("That password is too short."));
    assert!(refresh_works(&server, &secret, &refresh_token).await);

    let (status, shown) = change(PASSWORD, new_password).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert!(shown.contains("Every other session is signed out."));
    assert!(!refresh_works(&server, &secret, &refresh_token).await);
    assert!(!refresh_works(&server, &secret, &orphan).await);
    let (status, _) = browser.visit(&server.url("/account")).await.page();
    assert_eq!(status, StatusCode::OK, "this browser stays signed in");

    // The new password signs in; the old one no longer does.
    let fresh = Browser::new(&server);
    let (_, login) = fresh.visit(&server.url("/account")).await.page();
    assert_eq!(
        fresh.log_in(&login, "ada").await.page().0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = fresh
        .submit(
            &login,
            "/login",
            &[("username", "ada"), ("password", new_password)],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::OK);

    // Guessing the current password here is throttled like a sign-in (the sign-in above reset
    // the count).
    for _ in 0..2 {
        assert_eq!(
            change("wrong again", new_password).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, shown) = change("wrong again", new_password).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(shown.contains("Too many wrong passwords."));
}

#[tokio::test]
async fn closing_the_account_takes_the_password_and_ends_all_access() {
    let server = TestServer::start().await;
    let id = server.user("ada").await;
    let secret = server.client(offline_client("app")).await.unwrap();
    let rp = RelyingParty::discover(&server, "app", Some(secret.clone())).await;
    let (tokens, _) = sign_in(&server, &rp, &Browser::new(&server), "ada", &[OFFLINE]).await;
    let access = tokens.access_token().secret().clone();
    let (browser, page) = account(&server, "ada").await;

    let (status, _) = browser
        .submit(&page, "/account/deactivate", &[("password", "wrong")])
        .await
        .page();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(server.state.store.user(&id).await.unwrap().unwrap().active);

    let (status, shown) = browser
        .submit(&page, "/account/deactivate", &[("password", PASSWORD)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    assert!(shown.contains("Account closed"));
    assert!(!server.state.store.user(&id).await.unwrap().unwrap().active);
    let introspection: Value = server.introspect(&access).await;
    assert_eq!(introspection["active"], false);
    let (_, login) = browser.visit(&server.url("/account")).await.page();
    assert!(is_login_page(&login), "signed out");
    assert_eq!(
        browser.log_in(&login, "ada").await.page().0,
        StatusCode::UNAUTHORIZED
    );
}
