//! A web app logs a user in with code + PKCE and gets a verified ID token (issue 2, points 3–5).

use openidconnect::core::{CoreJwsSigningAlgorithm, CoreUserInfoClaims};
use openidconnect::OAuth2TokenResponse;
use tessera::oauth::clients::ClientRegistration;

use crate::harness::*;

#[tokio::test]
async fn confidential_client_signs_in_with_consent_and_verifies_the_id_token() {
    let server = TestServer::start().await;
    let user_id = server.user("ada").await;
    let secret = server.web_client("webapp").await;
    let rp = RelyingParty::discover(&server, "webapp", Some(secret)).await;
    let browser = Browser::new(&server);

    let pending = rp.authorize(&["profile", "email"], &[]);
    let (status, login_page) = browser.visit(pending.url.as_str()).await.page();
    assert_eq!(status, 200);
    let (status, consent_page) = browser.log_in(&login_page, "ada").await.page();
    assert_eq!(status, 200);
    assert!(consent_page.contains("webapp") && consent_page.contains("email"));
    let redirect = browser.consent(&consent_page, "allow").await.left();
    let code = rp.code_from(&server, &pending, &redirect);

    // client_secret_basic is the openidconnect crate's default.
    let tokens = rp.exchange(code, pending.verifier).await;
    let claims = rp.verify_id_token(
        &tokens,
        &pending.nonce,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    );
    assert_eq!(claims.subject().as_str(), user_id);
    assert!(claims.auth_time().is_some());
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some("pwd"));
    let amr: Vec<_> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|m| m.as_str())
        .collect();
    assert_eq!(amr, ["pwd"]);
    assert_eq!(claims.email().unwrap().as_str(), "ada@example.com");
    assert_eq!(
        claims.email_verified(),
        Some(false),
        "the email scope's claims"
    );
    let mut granted: Vec<_> = tokens
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.as_str())
        .collect();
    granted.sort();
    assert_eq!(granted, ["email", "openid", "profile"]);

    // The access token is accepted at userinfo, which answers per scope.
    let info: CoreUserInfoClaims = rp
        .client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&rp.http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), user_id);
    assert_eq!(info.preferred_username().unwrap().as_str(), "ada");
    assert_eq!(info.email().unwrap().as_str(), "ada@example.com");
    assert_eq!(
        info.email_verified(),
        Some(false),
        "no address is verified yet"
    );
    assert_eq!(
        info.given_name().unwrap().get(None).unwrap().as_str(),
        "Ada"
    );
}

#[tokio::test]
async fn the_access_token_is_an_rfc9068_jwt_signed_with_es256() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let secret = server.web_client("webapp").await;
    let rp = RelyingParty::discover(&server, "webapp", Some(secret)).await;
    let (tokens, _) = sign_in(&server, &rp, &Browser::new(&server), "ada", &[]).await;
    let token = tokens.access_token().secret();
    let header: serde_json::Value = decode_segment(token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let jwks = get_json(&server.url("/jwks")).await;
    let kids: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert!(
        kids.contains(&header["kid"]),
        "the signing key is published"
    );
    let claims: serde_json::Value = decode_segment(token, 1);
    assert_eq!(claims["iss"], server.issuer.as_str());
    assert_eq!(claims["client_id"], "webapp");
    for claim in ["sub", "aud", "exp", "iat", "jti", "scope"] {
        assert!(!claims[claim].is_null(), "{claim} is present");
    }
    assert_eq!(tokens.token_type().as_ref(), "bearer");
    assert!(tokens.expires_in().is_some());
}

#[tokio::test]
async fn public_client_uses_pkce_without_a_secret() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let secret = server
        .client(ClientRegistration {
            public: true,
            skip_consent: true,
            ..web_registration("spa")
        })
        .await;
    assert!(secret.is_none());
    let rp = RelyingParty::discover(&server, "spa", None).await;
    let browser = Browser::new(&server);
    let pending = rp.authorize(&[], &[]);
    let (_, login_page) = browser.visit(pending.url.as_str()).await.page();
    // --skip-consent: straight from the login to the client.
    let redirect = browser.log_in(&login_page, "ada").await.left();
    let code = rp.code_from(&server, &pending, &redirect);
    let tokens = rp.exchange(code, pending.verifier).await;
    rp.verify_id_token(
        &tokens,
        &pending.nonce,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    );
}

#[tokio::test]
async fn client_secret_post_and_per_client_id_token_algorithms() {
    let server = TestServer::start().await;
    server.user("ada").await;
    for (client_id, alg, expected) in [
        (
            "es-client",
            "ES256",
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        ),
        ("ed-client", "EdDSA", CoreJwsSigningAlgorithm::EdDsa),
    ] {
        let secret = server
            .client(ClientRegistration {
                skip_consent: true,
                id_token_signed_response_alg: Some(alg.into()),
                ..web_registration(client_id)
            })
            .await;
        let rp = RelyingParty::discover(&server, client_id, secret)
            .await
            .use_client_secret_post();
        let (tokens, pending) = sign_in(&server, &rp, &Browser::new(&server), "ada", &[]).await;
        let claims = rp.verify_id_token(&tokens, &pending.nonce, expected.clone());
        assert_eq!(claims.audiences()[0].as_str(), client_id);
    }
}

#[tokio::test]
async fn single_sign_on_skips_the_password_and_remembers_consent() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let secret = server.web_client("webapp").await;
    let rp = RelyingParty::discover(&server, "webapp", Some(secret)).await;
    let browser = Browser::new(&server);
    let (first, pending) = sign_in(&server, &rp, &browser, "ada", &["profile"]).await;
    let first_claims = rp.verify_id_token(
        &first,
        &pending.nonce,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    );

    // Same browser, same scopes: no login page, no consent page, a code at once.
    let again = rp.authorize(&["profile"], &[]);
    let redirect = browser.visit(again.url.as_str()).await.left();
    let code = rp.code_from(&server, &again, &redirect);
    let second = rp.exchange(code, again.verifier).await;
    let second_claims = rp.verify_id_token(
        &second,
        &again.nonce,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    );
    assert_eq!(
        second_claims.auth_time(),
        first_claims.auth_time(),
        "the same authentication"
    );
    assert_eq!(second_claims.subject(), first_claims.subject());

    // A wider scope than granted asks for consent again, but not for the password.
    let wider = rp.authorize(&["profile", "email"], &[]);
    let (_, page) = browser.visit(wider.url.as_str()).await.page();
    assert!(page.contains("name=\"decision\"") && !is_login_page(&page));

    // prompt=consent always shows the consent page.
    let forced = rp.authorize(&["profile"], &[("prompt", "consent")]);
    let (_, page) = browser.visit(forced.url.as_str()).await.page();
    assert!(page.contains("name=\"decision\""));
}

#[tokio::test]
async fn prompt_login_and_max_age_force_a_new_authentication() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let secret = server
        .client(ClientRegistration {
            skip_consent: true,
            ..web_registration("webapp")
        })
        .await;
    let rp = RelyingParty::discover(&server, "webapp", secret).await;
    let browser = Browser::new(&server);
    let (first, pending) = sign_in(&server, &rp, &browser, "ada", &[]).await;
    let first_auth = rp
        .verify_id_token(
            &first,
            &pending.nonce,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        )
        .auth_time()
        .unwrap();

    for extra in [("prompt", "login"), ("max_age", "1")] {
        wait_past(1).await;
        let request = rp.authorize(&[], &[extra]);
        let (_, page) = browser.visit(request.url.as_str()).await.page();
        let redirect = browser.log_in(&page, "ada").await.left();
        let code = rp.code_from(&server, &request, &redirect);
        let tokens = rp.exchange(code, request.verifier).await;
        let claims = rp.verify_id_token(
            &tokens,
            &request.nonce,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        );
        assert!(
            claims.auth_time().unwrap() > first_auth,
            "{extra:?} re-authenticates: auth_time grows"
        );
    }

    // A generous max_age is satisfied by the session.
    let relaxed = rp.authorize(&[], &[("max_age", "3600")]);
    rp.code_from(
        &server,
        &relaxed,
        &browser.visit(relaxed.url.as_str()).await.left(),
    );
}

#[tokio::test]
async fn prompt_none_without_a_session_redirects_with_login_required() {
    let server = TestServer::start().await;
    server.user("ada").await;
    let secret = server.web_client("webapp").await;
    let rp = RelyingParty::discover(&server, "webapp", Some(secret)).await;
    let browser = Browser::new(&server);

    let silent = rp.authorize(&[], &[("prompt", "none")]);
    let redirect = browser.visit(silent.url.as_str()).await.left();
    assert!(redirect.as_str().starts_with(REDIRECT_URI));
    let params = query(&redirect);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params.get("state"), Some(silent.state.secret()));
    assert_eq!(params.get("iss"), Some(&server.issuer));
    assert!(!params.contains_key("code"));

    // Signed in but consent not yet given: consent_required, still no page.
    let (_, login) = browser
        .visit(rp.authorize(&[], &[]).url.as_str())
        .await
        .page();
    browser.log_in(&login, "ada").await.page();
    let silent = rp.authorize(&[], &[("prompt", "none")]);
    let params = query(&browser.visit(silent.url.as_str()).await.left());
    assert_eq!(params["error"], "consent_required");
}

#[tokio::test]
async fn userinfo_accepts_post_and_refuses_missing_or_forged_tokens() {
    let server = TestServer::start().await;
    let user_id = server.user("ada").await;
    let secret = server.web_client("webapp").await;
    let rp = RelyingParty::discover(&server, "webapp", Some(secret)).await;
    let (tokens, _) = sign_in(&server, &rp, &Browser::new(&server), "ada", &["email"]).await;
    let token = tokens.access_token().secret();
    let http = http_client();

    let posted: serde_json::Value = http
        .post(server.url("/userinfo"))
        .form(&[("access_token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["sub"], user_id.as_str());
    assert_eq!(posted["email"], "ada@example.com");
    assert!(
        posted.get("preferred_username").is_none(),
        "no profile scope, no profile claims"
    );

    // RFC 6750 §2.2: a token in the body must come form-encoded.
    let as_json = http
        .post(server.url("/userinfo"))
        .json(&serde_json::json!({ "access_token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(as_json.status(), 400);

    let missing = http.get(server.url("/userinfo")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let challenge = missing.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with("Bearer") && !challenge.contains("error="),
        "RFC 6750 §3.1: {challenge}"
    );

    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let response = http
        .get(server.url("/userinfo"))
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert!(body["request_id"].is_string());
}
