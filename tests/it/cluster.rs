//! Several Tessera processes behind one load balancer: two real `tessera serve` processes on
//! different ports share one PostgreSQL database (or, on the hybrid backend, one Redis), and any
//! request may land on either.

use std::time::{Duration, Instant};

use openidconnect::PkceCodeChallenge;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{decode_segment, Browser, Landing, Scim, PASSWORD, REDIRECT_URI};
use crate::mailbox::mail_to;
use crate::process::{Deployment, Instance};
use crate::servers;

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until both instances publish the same key set containing `kid`.
async fn wait_for_same_jwks(a: &Instance, b: &Instance, kid: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (ja, jb) = (a.jwks().await, b.jwks().await);
        if ja == jb && kid.is_none_or(|kid| kids(&ja).iter().any(|k| k == kid)) {
            return ja;
        }
        assert!(Instant::now() < deadline, "JWKS differ: {ja} / {jb}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Signs ada in on instance A through the login page for client `web`; returns the
/// authorization code and verifier.
pub(crate) async fn authorize_on(a: &Instance, browser: &Browser) -> (String, String) {
    let (landing, verifier) = start_authorization(a, browser, "web").await;
    let landing = match &landing {
        Landing::Page { body, .. } => browser.log_in(body, "ada").await,
        Landing::Left(_) => landing,
    };
    (code_of(landing), verifier)
}

/// Visits A's authorization endpoint for `client_id`; returns where that lands and the verifier.
async fn start_authorization(
    a: &Instance,
    browser: &Browser,
    client_id: &str,
) -> (Landing, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut url = url::Url::parse(&a.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "s")
        .append_pair("nonce", "n")
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");
    (browser.visit(url.as_str()).await, verifier.secret().clone())
}

fn code_of(landing: Landing) -> String {
    crate::harness::query(&landing.left())["code"].clone()
}

/// With Redis beside PostgreSQL, as in production: Redis holds the shared throttle counters and
/// the token cache, so B's introspection below is answered from the cache until A revokes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_and_redis_share_codes_tokens_and_keys() {
    let redis = servers::Redis::new();
    let deployment = Deployment {
        env: vec![
            ("DATABASE_URL", servers::postgres().database()),
            ("REDIS_URL", redis.url()),
        ],
    };
    // Both start at once on an empty database: the migration lock lets one migrate.
    let (a, b) = deployment.start_two().await;
    let secret = &deployment.register_ada_and_web();
    instances_share_everything(&deployment, &a, &b, secret).await;
}

const HYBRID_SECRET: &str = "a-client-secret-of-at-least-32-characters";

/// Two hybrid instances on `redis`, both seeded with user `ada`, client `web`, client `app`
/// (which asks for consent) and client `scim-admin`.
fn hybrid_deployment(redis: &servers::Redis, dir: &std::path::Path) -> Deployment {
    let seed = dir.join("seed.toml");
    let secret = HYBRID_SECRET;
    std::fs::write(
        &seed,
        format!(
            r#"
[[users]]
username = "ada"
password = "{PASSWORD}"
email = "ada@example.com"

[[clients]]
client_id = "web"
client_secret = "{secret}"
redirect_uris = ["{REDIRECT_URI}"]
grant_types = ["authorization_code", "refresh_token", "client_credentials"]
scope = "openid offline_access"
skip_consent = true

[[clients]]
client_id = "app"
client_secret = "{secret}"
redirect_uris = ["{REDIRECT_URI}"]
grant_types = ["authorization_code"]
scope = "openid offline_access"

[[clients]]
client_id = "scim-admin"
client_secret = "{secret}"
grant_types = ["client_credentials"]
scope = "scim"
"#
        ),
    )
    .unwrap();
    Deployment {
        env: vec![
            ("STORE_BACKEND", "hybrid".into()),
            ("REDIS_URL", redis.url()),
            ("TESSERA_SEED_FILE", seed.display().to_string()),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hybrid_instances_on_one_redis_share_codes_tokens_and_keys() {
    let redis = servers::Redis::new();
    let dir = tempfile::tempdir().unwrap();
    let deployment = hybrid_deployment(&redis, dir.path());
    let (a, b) = deployment.start_two().await;
    instances_share_everything(&deployment, &a, &b, HYBRID_SECRET).await;
}

/// Finding 7: a second factor enrolled through one hybrid instance is asked for by the other,
/// a code accepted by one is a replay on the other, and a restart keeps the enrollment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hybrid_instances_enforce_one_second_factor() {
    let redis = servers::Redis::new();
    let dir = tempfile::tempdir().unwrap();
    let deployment = hybrid_deployment(&redis, dir.path());
    let (a, b) = deployment.start_two().await;
    let (totp, _, _) = crate::mfa::enroll(&a.base, &Browser::for_issuer(&a.base), "ada").await;
    let on_b = Browser::for_issuer(&b.base);
    let (_, login) = on_b.visit(&b.url("/account")).await.page();
    let (status, step) = on_b.log_in(&login, "ada").await.page();
    assert_eq!(status, StatusCode::OK);
    assert!(
        step.contains("name=\"code\""),
        "B asks for the second factor: {step}"
    );
    // The enrollment used the current step; the next one is within the allowed skew.
    let code = crate::mfa::code(&totp, 1);
    let (_, account) = on_b
        .submit(&step, "/login/mfa", &[("code", &code)])
        .await
        .page();
    assert!(account.contains("Your account"), "{account}");

    let on_a = Browser::for_issuer(&a.base);
    let (_, login) = on_a.visit(&a.url("/account")).await.page();
    let (_, step) = on_a.log_in(&login, "ada").await.page();
    let (status, _) = on_a
        .submit(&step, "/login/mfa", &[("code", &code)])
        .await
        .page();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the code B accepted is a replay on A"
    );

    let issuer = a.base.clone();
    drop(a);
    let restarted = deployment.spawn(&issuer, crate::process::free_port());
    restarted.wait_ready().await;
    let again = Browser::for_issuer(&restarted.base);
    let (_, login) = again.visit(&restarted.url("/account")).await.page();
    let (_, step) = again.log_in(&login, "ada").await.page();
    assert!(
        step.contains("name=\"code\""),
        "kept across a restart: {step}"
    );

    // An operator's reset reaches Redis, so a factor locked for good can be cleared.
    let said = deployment.cli(&["user", "reset-mfa", "--username", "ada"], "");
    assert!(said.contains("MFA reset"), "{said}");
    let fresh = Browser::for_issuer(&restarted.base);
    let (_, login) = fresh.visit(&restarted.url("/account")).await.page();
    let (_, account) = fresh.log_in(&login, "ada").await.page();
    assert!(
        account.contains("Your account"),
        "the password alone: {account}"
    );
}

/// Finding 7: users, groups and consents written through one hybrid instance are the other's at
/// once, and outlive a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hybrid_instances_share_users_groups_and_consents() {
    let redis = servers::Redis::new();
    let dir = tempfile::tempdir().unwrap();
    let deployment = hybrid_deployment(&redis, dir.path());
    let (a, b) = deployment.start_two().await;
    let (scim_a, scim_b) = (scim_on(&a).await, scim_on(&b).await);

    // A SCIM user created on A signs in on B, and consents there.
    let grace = scim_a
        .create_user(json!({"userName": "grace", "password": PASSWORD}))
        .await;
    let grace_id = grace["id"].as_str().unwrap();
    let on_b = Browser::for_issuer(&b.base);
    let (landing, _) = start_authorization(&b, &on_b, "app").await;
    let (_, login) = landing.page();
    let (_, consent) = on_b.log_in(&login, "grace").await.page();
    code_of(on_b.consent(&consent, "allow").await);

    // The consent given on B holds on A: a new sign-in there asks only for the password.
    let on_a = Browser::for_issuer(&a.base);
    let (landing, _) = start_authorization(&a, &on_a, "app").await;
    let (_, login) = landing.page();
    code_of(on_a.log_in(&login, "grace").await);

    // A group made on B lists grace as a member on A, and grace shows it.
    let group = scim_b.create_group("pilots", &[grace_id]).await;
    let members = scim_a
        .get(&format!("/Groups/{}", group["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        members.body["members"][0]["value"], grace_id,
        "{}",
        members.body
    );
    let user = scim_a.get(&format!("/Users/{grace_id}")).await;
    assert_eq!(user.body["groups"][0]["display"], "pilots", "{}", user.body);

    // Two writes of one version, one on each instance: one wins, as on one instance.
    let etag = user.headers["etag"].to_str().unwrap().to_string();
    let patch = |name: &str| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "displayName", "value": name}]})
    };
    let path = format!("/Users/{grace_id}");
    let if_match = [("if-match", etag.as_str())];
    let (first, second) = tokio::join!(
        scim_a.call(
            reqwest::Method::PATCH,
            &path,
            Some(patch("Grace A")),
            &if_match
        ),
        scim_b.call(
            reqwest::Method::PATCH,
            &path,
            Some(patch("Grace B")),
            &if_match
        ),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::PRECONDITION_FAILED]);

    // Closed on B, grace is refused on A.
    let closed = scim_b
        .patch(
            &path,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    let refused = Browser::for_issuer(&a.base);
    let (_, login) = refused.visit(&a.url("/account")).await.page();
    let (status, _) = refused.log_in(&login, "grace").await.page();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A user made by the CLI reaches the running instances through Redis as well.
    let created = deployment.cli(
        &["user", "create", "--username", "lin", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(!created.trim().is_empty(), "the CLI prints the new id");
    let lin = Browser::for_issuer(&b.base);
    let (_, login) = lin.visit(&b.url("/account")).await.page();
    let (_, account) = lin.log_in(&login, "lin").await.page();
    assert!(account.contains("Your account"), "{account}");

    // A restarted instance still knows what was written at run time.
    let issuer = a.base.clone();
    drop(a);
    let restarted = deployment.spawn(&issuer, crate::process::free_port());
    restarted.wait_ready().await;
    let user = scim_on(&restarted).await.get(&path).await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.body);
    assert_eq!(user.body["active"], false);
    assert_eq!(user.body["groups"][0]["display"], "pilots");
}

/// A SCIM admin of `instance`, signed in as the seeded `scim-admin` client.
async fn scim_on(instance: &Instance) -> Scim {
    let response = crate::harness::http_client()
        .post(instance.url("/token"))
        .basic_auth("scim-admin", Some(HYBRID_SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "scim")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().expect("a SCIM token");
    Scim::new(instance.url("/scim/v2"), token.to_string())
}

/// Any request may land on either instance: what one issues or revokes, the other honours.
async fn instances_share_everything(
    deployment: &Deployment,
    a: &Instance,
    b: &Instance,
    secret: &str,
) {
    // Keys generated by either instance at start-up end up published by both.
    let jwks = wait_for_same_jwks(a, b, None).await;

    // Authorize on A, redeem the code on B.
    let browser = Browser::for_issuer(&a.base);
    let (code, verifier) = authorize_on(a, &browser).await;
    let tokens = b.redeem(secret, &code, &verifier).await;
    let id_token_kid = decode_segment(tokens["id_token"].as_str().unwrap(), 0)["kid"].clone();
    assert!(kids(&jwks).contains(&id_token_kid.as_str().unwrap().to_string()));
    // Refresh on A; presenting the old refresh token again on B is reuse and kills the family.
    let first = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let (status, rotated) = a.post("/token", secret, &first).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (status, reuse) = b.post("/token", secret, &first).await;
    assert_eq!(
        (status, reuse["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let second = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rotated["refresh_token"].as_str().unwrap()),
    ];
    let (status, _) = a.post("/token", secret, &second).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the family died with the reuse"
    );

    // Revoke on A, and B sees it.
    let (code, verifier) = authorize_on(a, &browser).await;
    let tokens = a.redeem(secret, &code, &verifier).await;
    let access = tokens["access_token"].as_str().unwrap();
    let (_, live) = b.post("/introspect", secret, &[("token", access)]).await;
    assert_eq!(live["active"], true);
    let (status, _) = a.post("/revoke", secret, &[("token", access)]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, revoked) = b.post("/introspect", secret, &[("token", access)]).await;
    assert_eq!(revoked["active"], false);

    // A key rotation by the CLI reaches both instances, and new tokens are signed with it.
    let rotated = deployment.cli(&["keys", "rotate"], "");
    let new_es256 = rotated
        .lines()
        .find_map(|line| line.strip_prefix("ES256 "))
        .expect("the CLI prints the new ES256 key")
        .to_string();
    wait_for_same_jwks(a, b, Some(&new_es256)).await;
    // Published first, it signs after a second (TESSERA_KEY_PUBLISH_AHEAD_SECONDS) and a reload.
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let (status, issued) = b
        .post("/token", secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let header = decode_segment(issued["access_token"].as_str().unwrap(), 0);
    assert_eq!(header["kid"], new_es256.as_str());
}

/// [`hybrid_deployment`] mailing through `smtp`, retrying failed mail after a second, with
/// `TESSERA_SIGNUP` set to `signup`.
fn mailing_hybrid_deployment(
    redis: &servers::Redis,
    smtp: &servers::Smtp,
    dir: &std::path::Path,
    signup: &str,
) -> Deployment {
    let mut deployment = hybrid_deployment(redis, dir);
    deployment.env.extend([
        ("TESSERA_SMTP_URL", smtp.url()),
        ("TESSERA_MAIL_FROM", "id@tessera.test".into()),
        ("TESSERA_MAIL_RETRY_SECONDS", "1".into()),
        ("TESSERA_SIGNUP", signup.into()),
    ]);
    deployment
}

/// The account lifecycle across two hybrid instances: a reset link asked for on A works on B,
/// the new password then works on A, and an account signed up on B verifies its address and
/// signs in on A. Links and queued mail live in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hybrid_instances_share_recovery_sign_up_and_verification() {
    let (redis, smtp) = (servers::Redis::new(), servers::Smtp::new());
    let dir = tempfile::tempdir().unwrap();
    let deployment = mailing_hybrid_deployment(&redis, &smtp, dir.path(), "open");
    let (a, b) = deployment.start_two().await;
    let (on_a, on_b) = (Browser::for_issuer(&a.base), Browser::for_issuer(&b.base));
    // Links name the one public issuer (A's address here): send them to B instead.
    let to_b = |link: String| link.replace(&a.base, &b.base);

    let (_, forgot) = on_a.visit(&a.url("/password/forgot")).await.page();
    on_a.submit(&forgot, "/password/forgot", &[("email", "ada@example.com")])
        .await
        .page();
    let mail = mail_to(&smtp, "ada@example.com", "Reset your password").await;
    let link = to_b(link_in_text(&mail.text, "/password/reset?token="));
    let (_, form) = on_b.visit(&link).await.page();
    let new_password = "a new and long passphrase";
    let (status, done) = on_b
        .submit_all(&form, "/password/reset", &[("password", new_password)])
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{done}");
    let (landing, _) = start_authorization(&a, &on_a, "web").await;
    let (_, login) = landing.page();
    let fields = [("username", "ada"), ("password", new_password)];
    code_of(on_a.submit(&login, "/login", &fields).await);

    let (_, signup) = on_b.visit(&b.url("/signup")).await.page();
    let carol = [
        ("username", "carol"),
        ("email", "carol@example.com"),
        ("password", new_password),
    ];
    let (_, account) = on_b.submit(&signup, "/signup", &carol).await.page();
    assert!(account.contains("not verified yet"), "{account}");
    let mail = mail_to(&smtp, "carol@example.com", "Verify your email address").await;
    let link = link_in_text(&mail.text, "/email/verify?token=");
    let (_, form) = on_a.visit(&link).await.page();
    let (status, verified) = on_a.submit_all(&form, "/email/verify", &[]).await.page();
    assert_eq!(status, StatusCode::OK, "{verified}");
    let carol_on_a = Browser::for_issuer(&a.base);
    let (_, login) = carol_on_a.visit(&a.url("/account")).await.page();
    let fields = [("username", "carol"), ("password", new_password)];
    let (_, account) = carol_on_a.submit(&login, "/login", &fields).await.page();
    assert!(account.contains("Your account"), "{account}");
    assert!(
        !account.contains("not verified yet"),
        "verified on B's link, seen on A"
    );
}

/// On the hybrid backend the outbox is in Redis: mail queued by an instance that then dies, or
/// by the CLI, is sent by another instance once the SMTP server is back, and the CLI lists the
/// dead letters every instance shares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_hybrid_queued_mail_outlives_the_instance_that_queued_it() {
    let (redis, smtp) = (servers::Redis::new(), servers::Smtp::new());
    let dir = tempfile::tempdir().unwrap();
    let deployment = mailing_hybrid_deployment(&redis, &smtp, dir.path(), "invite");
    let (a, b) = deployment.start_two().await;
    smtp.stop();
    let on_a = Browser::for_issuer(&a.base);
    let (_, forgot) = on_a.visit(&a.url("/password/forgot")).await.page();
    on_a.submit(&forgot, "/password/forgot", &[("email", "ada@example.com")])
        .await
        .page();
    // Time for the reset mail to be queued (in the background, so that the page's timing does not
    // tell whether the account exists) and tried in vain; then A is killed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let issuer = a.base.clone();
    drop(a);
    let printed = deployment.cli(&["user", "invite", "--email", "dan@example.com"], "");
    assert!(printed.contains("/signup?invitation="), "{printed}");
    smtp.start();

    let reset = mail_to(&smtp, "ada@example.com", "Reset your password").await;
    let link = link_in_text(&reset.text, "/password/reset?token=").replace(&issuer, &b.base);
    let on_b = Browser::for_issuer(&b.base);
    let (_, form) = on_b.visit(&link).await.page();
    let (status, done) = on_b
        .submit_all(
            &form,
            "/password/reset",
            &[("password", "a new and long passphrase")],
        )
        .await
        .page();
    assert_eq!(status, StatusCode::OK, "{done}");
    let invitation = mail_to(
        &smtp,
        "dan@example.com",
        "You are invited to make an account",
    )
    .await;
    let token = printed.trim().rsplit("invitation=").next().unwrap();
    assert!(invitation.text.contains(token), "{}", invitation.text);
    assert_eq!(deployment.cli(&["events", "dead"], ""), "", "none died");
}

/// The line of a mail's text that holds a link with `marker`.
fn link_in_text(text: &str, marker: &str) -> String {
    let line = text.lines().find(|line| line.contains(marker));
    line.unwrap_or_else(|| panic!("no {marker} in {text}"))
        .to_string()
}
