//! SCIM 2.0 (issue 5): provisioning users and groups through `/scim/v2`.

use std::collections::BTreeSet;

use openidconnect::core::{CoreIdToken, CoreJwsSigningAlgorithm};
use openidconnect::OAuth2TokenResponse;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera::oauth::clients::ClientRegistration;

use crate::harness::*;

const RS256: CoreJwsSigningAlgorithm = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn id(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_string()
}

/// The user names a listing returned.
fn names(reply: &ScimReply) -> BTreeSet<String> {
    reply.body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no Resources: {}", reply.body))
        .iter()
        .map(|r| r["userName"].as_str().unwrap().to_string())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn discovery_documents_say_what_is_supported() {
    let server = TestServer::start().await;
    let scim = server.scim().await;
    let config = scim.get("/ServiceProviderConfig").await;
    assert_eq!(config.status, StatusCode::OK);
    assert_eq!(
        config.headers["content-type"], "application/scim+json",
        "RFC 7644 §3.1 media type"
    );
    for supported in ["patch", "filter", "sort", "etag", "changePassword"] {
        assert_eq!(config.body[supported]["supported"], true, "{supported}");
    }
    assert_eq!(config.body["bulk"]["supported"], false);
    assert!(config.body["filter"]["maxResults"].as_u64().unwrap() > 0);

    let types = scim.get("/ResourceTypes").await;
    let ids: BTreeSet<&str> = types.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from(["Group", "User"]));
    let user_type = scim.get("/ResourceTypes/User").await;
    assert_eq!(user_type.body["schemaExtensions"][0]["schema"], ENTERPRISE);

    let schemas = scim.get("/Schemas").await;
    assert_eq!(schemas.body["totalResults"], 3);
    let user_schema = scim
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    let attributes = user_schema.body["attributes"].as_array().unwrap();
    let password = attributes.iter().find(|a| a["name"] == "password").unwrap();
    assert_eq!(password["mutability"], "writeOnly");
    assert_eq!(password["returned"], "never");
    let user_name = attributes.iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["caseExact"], false);

    scim.get("/Schemas/urn:nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    scim.get("/Nothing")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
}

#[tokio::test]
async fn the_api_needs_a_client_token_with_the_scim_scope() {
    let server = TestServer::start().await;
    let anonymous = http_client()
        .get(server.url("/scim/v2/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["status"], "401");

    let forged = http_client()
        .get(server.url("/scim/v2/Users"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // A resource server's token, scope `api`: authenticated, not allowed.
    let secret = server.resource_server_secret().await;
    let form = [("grant_type", "client_credentials")];
    let (_, _, tokens) = post_token(&server, Some(("rs", &secret)), &form).await;
    let other_scope = http_client()
        .get(server.url("/scim/v2/Users"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(other_scope.status(), StatusCode::FORBIDDEN);
    let body: Value = other_scope.json().await.unwrap();
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );

    // A user's token never administers users, even when its client may ask for `scim`.
    server.user("ada").await;
    let registration = ClientRegistration {
        scope: Some("openid scim".into()),
        skip_consent: true,
        ..web_registration("app")
    };
    let secret = server.client(registration).await.unwrap();
    let rp = RelyingParty::discover(&server, "app", Some(secret)).await;
    let (tokens, _) = sign_in(&server, &rp, &Browser::new(&server), "ada", &["scim"]).await;
    assert!(tokens
        .scopes()
        .unwrap()
        .iter()
        .any(|s| s.as_str() == "scim"));
    let user_token = http_client()
        .get(server.url("/scim/v2/Users"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(user_token.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn users_are_created_read_replaced_and_deleted() {
    let server = TestServer::start().await;
    let scim = server.scim().await;
    let created = scim
        .call(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "userName": "Grace",
                "password": "a secret password",
                "name": { "givenName": "Grace", "familyName": "Hopper" },
                "emails": [{ "value": "grace@navy.example", "type": "work", "primary": true }],
                ENTERPRISE: { "department": "Computing", "manager": { "value": "someone" } },
            })),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let user_id = id(&created.body);
    assert_eq!(
        created.headers["location"],
        server.url(&format!("/scim/v2/Users/{user_id}")).as_str()
    );
    assert_eq!(created.headers["etag"], "W/\"1\"");
    assert_eq!(created.body["meta"]["version"], "W/\"1\"");
    assert_eq!(created.body["meta"]["resourceType"], "User");
    assert_eq!(created.body[ENTERPRISE]["department"], "Computing");
    assert!(
        created.body.get("password").is_none(),
        "password is write-only"
    );
    // The password is stored as an argon2id hash, never as sent.
    let hash = server.state.store.user(&user_id).await.unwrap().unwrap();
    assert!(hash.password_hash.unwrap().starts_with("$argon2id$"));

    // userName is unique case-insensitively (RFC 7643 §4.1.1).
    let duplicate = scim
        .post(
            "/Users",
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "GRACE" }),
        )
        .await;
    duplicate.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    // Lookup and uniqueness fold case the same way, beyond ASCII too: what a filter does not
    // find, a create does not refuse, and the other way round.
    scim.create_user(json!({ "userName": "ÉLODIE" })).await;
    let found = scim
        .get(&format!(
            "/Users?filter={}",
            encode(r#"userName eq "élodie""#)
        ))
        .await;
    assert_eq!(names(&found), set(&["ÉLODIE"]));
    scim.post(
        "/Users",
        json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "élodie" }),
    )
    .await
    .assert_error(StatusCode::CONFLICT, Some("uniqueness"));

    let read = scim.get(&format!("/Users/{user_id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, created.body);

    // PUT replaces: what is not sent is gone, except the write-only password.
    let replaced = scim
        .put(
            &format!("/Users/{user_id}"),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "grace",
                "displayName": "Amazing Grace",
            }),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["userName"], "grace");
    assert_eq!(replaced.body["displayName"], "Amazing Grace");
    assert!(replaced.body.get("emails").is_none());
    assert!(replaced.body.get(ENTERPRISE).is_none());
    assert_eq!(replaced.body["meta"]["version"], "W/\"2\"");
    let kept = server.state.store.user(&user_id).await.unwrap().unwrap();
    assert!(kept.password_hash.is_some());

    // Invalid values are refused, not stored.
    scim.put(
        &format!("/Users/{user_id}"),
        json!({ "userName": "grace", "active": "yes" }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    scim.post("/Users", json!({ "name": { "givenName": "x" } }))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    scim.post("/Users", json!({ "userName": "x", "shoeSize": 44 }))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    // The password rule holds for administrators too: a common password is refused.
    scim.post(
        "/Users",
        json!({ "userName": "x", "password": "password1" }),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    let not_json = http_client()
        .post(server.url("/scim/v2/Users"))
        .bearer_auth(scim.token())
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);

    let deleted = scim.delete(&format!("/Users/{user_id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    scim.get(&format!("/Users/{user_id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    scim.delete(&format!("/Users/{user_id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
}

fn groups_client(client_id: &str) -> ClientRegistration {
    ClientRegistration {
        scope: Some("openid profile email groups offline_access".into()),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        skip_consent: true,
        ..web_registration(client_id)
    }
}

#[tokio::test]
async fn a_provisioned_user_signs_in_and_their_groups_reach_id_token_and_userinfo() {
    let server = TestServer::start().await;
    let scim = server.scim().await;
    let user = scim
        .create_user(json!({
            "userName": "linus",
            "password": PASSWORD,
            "emails": [{ "value": "linus@example.com", "primary": true }],
        }))
        .await;
    let user_id = id(&user);
    let group = scim.create_group("Kernel Hackers", &[&user_id]).await;
    assert_eq!(group.body_members(), vec![user_id.clone()]);

    // The user's read-only groups attribute follows membership, and its version moved.
    let read = scim.get(&format!("/Users/{user_id}")).await;
    assert_eq!(read.body["groups"][0]["value"], group["id"]);
    assert_eq!(read.body["groups"][0]["display"], "Kernel Hackers");
    assert_eq!(read.body["meta"]["version"], "W/\"2\"");

    let secret = server.client(groups_client("app")).await.unwrap();
    let rp = RelyingParty::discover(&server, "app", Some(secret)).await;
    let browser = Browser::new(&server);
    let (tokens, pending) = sign_in(&server, &rp, &browser, "linus", &["groups", "email"]).await;
    let claims = rp.verify_id_token(&tokens, &pending.nonce, RS256);
    assert_eq!(claims.subject().as_str(), user_id);
    let id_token: &CoreIdToken = openidconnect::TokenResponse::id_token(&tokens).unwrap();
    let payload = id_token.to_string();
    let groups = decode_segment(&payload, 1)["groups"].clone();
    assert_eq!(groups, json!(["Kernel Hackers"]));

    let userinfo: Value = http_client()
        .get(server.url("/userinfo"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["groups"], json!(["Kernel Hackers"]));
    assert_eq!(userinfo["email"], "linus@example.com");

    // Without the scope, no claim.
    let (plain, pending) = sign_in(&server, &rp, &browser, "linus", &["email"]).await;
    rp.verify_id_token(&plain, &pending.nonce, RS256);
    let plain_token = openidconnect::TokenResponse::id_token(&plain)
        .unwrap()
        .to_string();
    assert!(decode_segment(&plain_token, 1).get("groups").is_none());

    // Renaming the group changes the member's representation, so its ETag moves too.
    let before = read.body["meta"]["version"].as_str().unwrap().to_string();
    let renamed = scim
        .patch(
            &format!("/Groups/{}", id(&group)),
            json!([{ "op": "replace", "path": "displayName", "value": "Kernel Maintainers" }]),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    let fresh = scim
        .call(
            Method::GET,
            &format!("/Users/{user_id}"),
            None,
            &[("if-none-match", &before)],
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(fresh.body["groups"][0]["display"], "Kernel Maintainers");

    // Leaving the group shows at once.
    let patched = scim
        .patch(
            &format!("/Groups/{}", id(&group)),
            json!([{ "op": "remove", "path": format!("members[value eq \"{user_id}\"]") }]),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let read = scim.get(&format!("/Users/{user_id}")).await;
    assert!(read.body.get("groups").is_none());
}

trait Members {
    fn body_members(&self) -> Vec<String>;
}

impl Members for Value {
    fn body_members(&self) -> Vec<String> {
        self["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| m["value"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn deactivating_a_user_ends_their_sessions_and_tokens() {
    let server = TestServer::start().await;
    let scim = server.scim().await;
    let user = scim
        .create_user(json!({ "userName": "mallory", "password": PASSWORD }))
        .await;
    let secret = server.client(groups_client("app")).await.unwrap();
    let rp = RelyingParty::discover(&server, "app", Some(secret.clone())).await;
    let browser = Browser::new(&server);
    let (tokens, _) = sign_in(&server, &rp, &browser, "mallory", &["offline_access"]).await;
    let access = tokens.access_token().secret().clone();
    let refresh = tokens.refresh_token().unwrap().secret().clone();
    assert_eq!(server.introspect(&access).await["active"], true);

    let patched = scim
        .patch(
            &format!("/Users/{}", id(&user)),
            json!([{ "op": "replace", "path": "active", "value": false }]),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["active"], false);

    assert_eq!(server.introspect(&access).await["active"], false);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let (status, _, body) = post_token(&server, Some(("app", &secret)), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    // The browser's session is gone: the next authorization asks for a password, which the
    // inactive user cannot pass.
    let pending = rp.authorize(&[], &[]);
    let (_, page) = browser.visit(pending.url.as_str()).await.page();
    assert!(is_login_page(&page));
    let (_, after) = browser.log_in(&page, "mallory").await.page();
    assert!(is_login_page(&after), "an inactive user cannot sign in");
}

/// Seven users for the filter, sort and paging tests.
async fn population(scim: &Scim) -> Vec<String> {
    let people = [
        (
            "alice",
            "Alice",
            "work",
            "alice@example.com",
            "Engineering",
            "E1",
            true,
        ),
        (
            "bob",
            "Bob",
            "home",
            "bob@example.org",
            "Engineering",
            "e2",
            true,
        ),
        (
            "carol",
            "Carol",
            "work",
            "carol@example.org",
            "Sales",
            "E3",
            false,
        ),
        (
            "dave",
            "Dave",
            "work",
            "dave@corp.example.com",
            "Sales",
            "E4",
            true,
        ),
        (
            "eve",
            "Eve",
            "home",
            "eve@example.com",
            "Security",
            "E5",
            true,
        ),
        (
            "frank",
            "Frank",
            "other",
            "frank@example.net",
            "Support",
            "E6",
            true,
        ),
        (
            "grace",
            "Grace",
            "work",
            "GRACE@EXAMPLE.COM",
            "Engineering",
            "E7",
            true,
        ),
    ];
    let mut ids = Vec::new();
    for (user, given, kind, email, department, external, active) in people {
        let mut body = json!({
            "userName": user,
            "externalId": external,
            "active": active,
            "name": { "givenName": given },
            "emails": [{ "value": email, "type": kind }],
            "title": if user == "bob" { Value::Null } else { json!("Engineer") },
        });
        body[ENTERPRISE] = json!({ "department": department });
        ids.push(id(&scim.create_user(body).await));
    }
    ids
}

#[tokio::test]
async fn filters_follow_the_rfc_grammar_and_run_in_the_store() {
    let server = TestServer::start().await;
    let scim = server.scim().await;
    let ids = population(&scim).await;
    scim.create_group("Admins", &[&ids[0], &ids[4]]).await;
    let cases: &[(&str, &[&str])] = &[
        // userName is not caseExact: eq ignores case.
        (r#"userName eq "ALICE""#, &["alice"]),
        (r#"USERNAME Eq "bob""#, &["bob"]),
        (
            r#"userName ne "alice""#,
            &["bob", "carol", "dave", "eve", "frank", "grace"],
        ),
        (r#"userName sw "c""#, &["carol"]),
        (r#"userName ew "e""#, &["alice", "dave", "eve", "grace"]),
        (r#"userName co "an""#, &["frank"]),
        // externalId is caseExact.
        (r#"externalId eq "e2""#, &["bob"]),
        (r#"externalId eq "E2""#, &[]),
        // emails without a sub-attribute mean emails.value.
        (
            r#"emails co "example.com""#,
            &["alice", "dave", "eve", "grace"],
        ),
        (r#"emails.value ew ".org""#, &["bob", "carol"]),
        (
            r#"emails[type eq "work" and value co "@example.com"]"#,
            &["alice", "grace"],
        ),
        (
            r#"emails[type eq "home"] or userName eq "frank""#,
            &["bob", "eve", "frank"],
        ),
        // Precedence: and binds tighter than or; parentheses and not.
        (
            r#"userName eq "alice" or userName eq "bob" and active eq false"#,
            &["alice"],
        ),
        (
            r#"(userName eq "alice" or userName eq "carol") and active eq false"#,
            &["carol"],
        ),
        (
            r#"not (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Engineering")"#,
            &["carol", "dave", "eve", "frank"],
        ),
        (r#"department eq "sales""#, &["carol", "dave"]),
        (
            r#"title pr"#,
            &["alice", "carol", "dave", "eve", "frank", "grace"],
        ),
        (r#"not (title pr)"#, &["bob"]),
        (r#"name.givenName gt "E""#, &["eve", "frank", "grace"]),
        (r#"name.givenName le "Bob""#, &["alice", "bob"]),
        (r#"groups.display eq "admins""#, &["alice", "eve"]),
        (
            r#"groups[display sw "Adm"] and emails co ".com""#,
            &["alice", "eve"],
        ),
        (
            r#"meta.created gt "2000-01-01T00:00:00Z""#,
            &["alice", "bob", "carol", "dave", "eve", "frank", "grace"],
        ),
        (r#"meta.created lt "2000-01-01T00:00:00Z""#, &[]),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "dave""#,
            &["dave"],
        ),
    ];
    for (filter, expected) in cases {
        let reply = scim.get(&format!("/Users?filter={}", encode(filter))).await;
        assert_eq!(reply.status, StatusCode::OK, "{filter}: {}", reply.body);
        assert_eq!(names(&reply), set(expected), "{filter}");
        assert_eq!(reply.body["totalResults"], expected.len(), "{filter}");
    }
    for bad in [
        r#"userName eq"#,
        r#"userName xx "a""#,
        r#"(userName eq "a""#,
        r#"shoeSize eq 3"#,
        r#"active gt true"#,
        r#"active co "t""#,
        r#"password eq "secret""#,
        r#"emails[type eq "work""#,
        r#"name[givenName eq "x"]"#,
        r#"meta.created gt "yesterday""#,
        r#"userName eq "a" junk"#,
    ] {
        scim.get(&format!("/Users?filter={}", encode(bad)))
            .await
            .assert_error(StatusCode::BAD_REQUEST, Some("invalidFilter"));
    }
    // The widest filter accepted runs; a wider one is refused before it can strain the server.
    let widest = vec![r#"emails[value co "a"]"#; 65].join(" or ");
    let reply = scim
        .get(&format!("/Users?filter={}", encode(&widest)))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let too_wide = vec!["title pr"; 66].join(" and ");
    scim.get(&format!("/Users?filter={}", encode(&too_wide)))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidFilter"));
    // Groups filter on their members.
    let admins = scim
        .get(&format!(
            "/Groups?filter={}",
            encode(&format!(r#"members.value eq "{}""#, ids[4]))
        ))
        .await;
    assert_eq!(admins.body["totalResults"], 1);
    assert_eq!(admins.body["Resources"][0]["displayName"], "Admins");
}

#[tokio::test]
async fn listings_page_sort_and_project() {
    let server = TestServer::start().await;
    let scim = server.scim().await;
    population(&scim).await;
    let page = |query: &'static str| {
        let scim = &scim;
        async move { scim.get(&format!("/Users?{query}")).await }
    };
    let first = page("sortBy=userName&sortOrder=descending&startIndex=1&count=3").await;
    assert_eq!(first.body["totalResults"], 7);
    assert_eq!(first.body["itemsPerPage"], 3);
    assert_eq!(first.body["startIndex"], 1);
    let order: Vec<&str> = first.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["grace", "frank", "eve"]);
    let last = page("sortBy=userName&sortOrder=descending&startIndex=7&count=3").await;
    assert_eq!(last.body["totalResults"], 7);
    assert_eq!(last.body["Resources"][0]["userName"], "alice");
    assert_eq!(last.body["itemsPerPage"], 1);
    // Sorting by a list uses its primary (else first) value; by a sub-attribute, case-insensitively.
    let by_email = page("sortBy=emails&count=2").await;
    assert_eq!(names(&by_email), set(&["alice", "bob"]));
    let by_name = page("sortBy=name.givenName&sortOrder=DESCENDING&count=1").await;
    assert_eq!(by_name.body["Resources"][0]["userName"], "grace");
    // Paging is stable without a sort: every user exactly once across pages.
    let mut seen = BTreeSet::new();
    for start in [1, 3, 5, 7] {
        let reply = scim
            .get(&format!("/Users?startIndex={start}&count=2"))
            .await;
        assert_eq!(reply.body["totalResults"], 7);
        seen.extend(names(&reply));
    }
    assert_eq!(seen.len(), 7);
    // count=0 gives only the total; odd values are clamped as §3.4.2.4 says.
    let total = page("count=0").await;
    assert_eq!(total.body["totalResults"], 7);
    assert_eq!(total.body["Resources"], json!([]));
    let clamped = page("startIndex=-5&count=1").await;
    assert_eq!(clamped.body["startIndex"], 1);
    scim.get("/Users?count=many")
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    scim.get("/Users?sortBy=password")
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));

    let projected = page("filter=userName%20eq%20%22bob%22&attributes=userName,emails.value").await;
    let bob = &projected.body["Resources"][0];
    let keys: BTreeSet<&str> = bob
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["emails", "id", "schemas", "userName"])
    );
    assert_eq!(bob["emails"], json!([{ "value": "bob@example.org" }]));
    let excluded = page("filter=userName%20eq%20%22bob%22&excludedAttributes=emails,meta,id").await;
    let bob = &excluded.body["Resources"][0];
    assert!(bob.get("emails").is_none() && bob.get("meta").is_none());
    assert!(bob.get("id").is_some(), "id is always returned");

    // POST /.search takes the same parameters in a body (RFC 7644 §3.4.3).
    let search = scim
        .post(
            "/Users/.search",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "emails[type eq \"work\"]",
                "sortBy": "userName",
                "startIndex": 2,
                "count": 2,
                "attributes": ["userName"],
            }),
        )
        .await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.body);
    assert_eq!(search.body["totalResults"], 4);
    let order: Vec<&str> = search.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["carol", "dave"]);
}

#[tokio::test]
async fn patch_applies_every_operation_or_none() {
    let server = TestServer::start().await;
    let scim = server.scim().await;
    let user = scim
        .create_user(json!({
            "userName": "ken",
            "emails": [
                { "value": "ken@work.example", "type": "work" },
                { "value": "ken@home.example", "type": "home" },
            ],
            "name": { "givenName": "Ken", "familyName": "Thompson" },
        }))
        .await;
    let path = format!("/Users/{}", id(&user));
    let patched = scim
        .patch(
            &path,
            json!([
                { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ken@bell.example" },
                { "op": "add", "path": "name.middleName", "value": "Lane" },
                { "op": "remove", "path": "emails[type eq \"home\"]" },
                { "op": "add", "value": { "title": "Hacker", "nickName": "ken" } },
                { "op": "replace", "value": { "name": { "familyName": "T." } } },
                // Entra ID adds a typed value that does not exist yet.
                { "op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100" },
                { "op": "add", "path": ENTERPRISE.to_string() + ":department", "value": "Unix" },
            ]),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let body = &patched.body;
    assert_eq!(
        body["emails"],
        json!([{ "value": "ken@bell.example", "type": "work" }])
    );
    assert_eq!(
        body["name"],
        json!({ "givenName": "Ken", "middleName": "Lane", "familyName": "T." })
    );
    assert_eq!(body["title"], "Hacker");
    assert_eq!(
        body["phoneNumbers"],
        json!([{ "type": "mobile", "value": "+1 555 0100" }])
    );
    assert_eq!(body[ENTERPRISE]["department"], "Unix");
    assert_eq!(body["meta"]["version"], "W/\"2\"");

    // One failing operation leaves the resource as it was.
    let failed = scim
        .patch(
            &path,
            json!([
                { "op": "replace", "path": "title", "value": "Changed" },
                { "op": "replace", "path": "emails[type eq \"fax\"]", "value": { "value": "x" } },
            ]),
        )
        .await;
    failed.assert_error(StatusCode::BAD_REQUEST, Some("noTarget"));
    let after = scim.get(&path).await;
    assert_eq!(after.body["title"], "Hacker");
    assert_eq!(after.body["meta"]["version"], "W/\"2\"");

    // A value without the sub-attribute does not match `type pr`.
    let untyped = scim
        .patch(
            &path,
            json!([
                { "op": "add", "path": "emails", "value": [{ "value": "ken@untyped.example" }] },
                { "op": "remove", "path": "emails[type pr]" },
            ]),
        )
        .await;
    assert_eq!(
        untyped.body["emails"],
        json!([{ "value": "ken@untyped.example" }])
    );

    let errors: &[(Value, &str)] = &[
        (json!({ "op": "remove" }), "noTarget"),
        (
            json!({ "op": "replace", "path": "id", "value": "x" }),
            "mutability",
        ),
        (
            json!({ "op": "add", "path": "groups", "value": [{ "value": "g" }] }),
            "mutability",
        ),
        (
            json!({ "op": "replace", "path": "meta.created", "value": "x" }),
            "mutability",
        ),
        (
            json!({ "op": "add", "path": "shoeSize", "value": 44 }),
            "invalidPath",
        ),
        (
            json!({ "op": "add", "path": "emails[type eq", "value": "x" }),
            "invalidPath",
        ),
        (
            json!({ "op": "add", "path": "emails.nothing", "value": "x" }),
            "invalidPath",
        ),
        (
            json!({ "op": "replace", "path": "active", "value": "no" }),
            "invalidValue",
        ),
        (
            json!({ "op": "remove", "path": "userName" }),
            "invalidValue",
        ),
        (json!({ "op": "jump", "path": "title" }), "invalidSyntax"),
    ];
    for (operation, scim_type) in errors {
        scim.patch(&path, json!([operation]))
            .await
            .assert_error(StatusCode::BAD_REQUEST, Some(scim_type));
    }
    let missing_schema = scim
        .call(
            Method::PATCH,
            &path,
            Some(json!({ "Operations": [{ "op": "remove", "path": "title" }] })),
            &[],
        )
        .await;
    missing_schema.assert_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"));
}

#[tokio::test]
async fn group_members_are_patched_by_value_and_by_filter() {
    let server = TestServer::start().await;
    let scim = server.scim().await;
    let a = id(&scim.create_user(json!({ "userName": "a" })).await);
    let b = id(&scim.create_user(json!({ "userName": "b" })).await);
    let c = id(&scim.create_user(json!({ "userName": "c" })).await);
    let group = scim.create_group("Team", &[&a]).await;
    assert_eq!(
        group["members"][0]["$ref"],
        server.url(&format!("/scim/v2/Users/{a}")).as_str()
    );
    let path = format!("/Groups/{}", id(&group));
    let added = scim
        .patch(
            &path,
            json!([{ "op": "add", "path": "members", "value": [{ "value": b }, { "value": c }] }]),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let mut members = added.body.body_members();
    members.sort();
    let mut expected = vec![a.clone(), b.clone(), c.clone()];
    expected.sort();
    assert_eq!(members, expected);

    // Entra ID's form: remove with a value list; and the RFC's: a filtered path.
    let removed = scim
        .patch(
            &path,
            json!([
                { "op": "remove", "path": "members", "value": [{ "value": b }] },
                { "op": "remove", "path": format!("members[value eq \"{c}\"]") },
            ]),
        )
        .await;
    assert_eq!(removed.body.body_members(), vec![a.clone()]);

    // Members must be users that exist.
    scim.patch(
        &path,
        json!([{ "op": "add", "path": "members", "value": [{ "value": "no-such-user" }] }]),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    // Group names are unique, case-insensitively.
    let duplicate = scim
        .post(
            "/Groups",
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "TEAM" }),
        )
        .await;
    duplicate.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    // display is returned when asked for.
    let with_display = scim
        .get(&format!("{path}?attributes=members.display,members.value"))
        .await;
    assert_eq!(
        with_display.body["members"],
        json!([{ "value": a, "display": "a" }])
    );
    // Deleting a member user removes them from the group.
    assert_eq!(
        scim.delete(&format!("/Users/{a}")).await.status,
        StatusCode::NO_CONTENT
    );
    let emptied = scim.get(&path).await;
    assert!(emptied.body.get("members").is_none());
    assert_eq!(scim.delete(&path).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn etags_make_reads_conditional_and_writes_safe() {
    let server = TestServer::start().await;
    let scim = server.scim().await;
    let user = scim.create_user(json!({ "userName": "etag" })).await;
    let path = format!("/Users/{}", id(&user));
    let version = user["meta"]["version"].as_str().unwrap().to_string();

    let unchanged = scim
        .call(Method::GET, &path, None, &[("if-none-match", &version)])
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert_eq!(unchanged.headers["etag"], version.as_str());

    let first = scim
        .call(
            Method::PATCH,
            &path,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "add", "path": "title", "value": "One" }],
            })),
            &[("if-match", &version)],
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let changed = scim
        .call(Method::GET, &path, None, &[("if-none-match", &version)])
        .await;
    assert_eq!(changed.status, StatusCode::OK);

    // The old version no longer matches: every write naming it fails with 412.
    let stale_put = scim
        .call(
            Method::PUT,
            &path,
            Some(json!({ "userName": "etag", "title": "Two" })),
            &[("if-match", &version)],
        )
        .await;
    stale_put.assert_error(StatusCode::PRECONDITION_FAILED, None);
    let stale_delete = scim
        .call(Method::DELETE, &path, None, &[("if-match", &version)])
        .await;
    stale_delete.assert_error(StatusCode::PRECONDITION_FAILED, None);
    assert_eq!(scim.get(&path).await.body["title"], "One");
}

/// Random filters, well-formed and not, over every kind of attribute: the server answers each with
/// a result or `invalidFilter`, never a server error (RFC 7644 §3.4.2.2 parse, schema resolution,
/// SQL generation and SQLite all agree on what is valid).
#[tokio::test]
async fn random_filters_get_a_result_or_invalid_filter_never_a_server_error() {
    use rand::{Rng, SeedableRng};
    let server = TestServer::start().await;
    let scim = server.scim().await;
    population(&scim).await;
    let attributes = [
        "userName",
        "emails",
        "emails.value",
        "emails.primary",
        "name.givenName",
        "meta.created",
        "meta.version",
        "groups.display",
        "groups.type",
        "active",
        "title",
        "externalId",
        "id",
        "x509Certificates.value",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        "bogus",
        "name",
    ];
    let operators = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
    let values = [
        r#""a""#,
        r#""""#,
        "true",
        "false",
        "1",
        "-2.5",
        "null",
        r#""2020-01-01T00:00:00Z""#,
        r#""%_\\""#,
        r#""'; DROP TABLE users; --""#,
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let term = |rng: &mut rand::rngs::StdRng| -> String {
        let attr = attributes[rng.gen_range(0..attributes.len())];
        match rng.gen_range(0..10) {
            0 => format!("{attr} pr"),
            1 => format!(
                "emails[type eq \"work\" and value {} {}]",
                operators[rng.gen_range(0..operators.len())],
                values[rng.gen_range(0..values.len())]
            ),
            2 => format!("not ({attr} pr)"),
            _ => format!(
                "{attr} {} {}",
                operators[rng.gen_range(0..operators.len())],
                values[rng.gen_range(0..values.len())]
            ),
        }
    };
    let junk = [
        "(", ")", "[", "]", "and", "or", "not", "\"", "pr", "eq", "userName", ".",
    ];
    let (mut answered, mut refused) = (0, 0);
    for round in 0..400 {
        let filter = if round % 3 == 0 {
            (0..rng.gen_range(1..8))
                .map(|_| junk[rng.gen_range(0..junk.len())])
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            let mut text = term(&mut rng);
            for _ in 0..rng.gen_range(0..4) {
                let joiner = if rng.gen_bool(0.5) { " and " } else { " or " };
                text = format!("({text}){joiner}{}", term(&mut rng));
            }
            text
        };
        let sort = match round % 4 {
            0 => attributes[rng.gen_range(0..attributes.len())],
            _ => "userName",
        };
        let reply = scim
            .get(&format!(
                "/Users?filter={}&sortBy={}",
                encode(&filter),
                encode(sort)
            ))
            .await;
        match reply.status {
            StatusCode::OK => {
                answered += 1;
                assert!(reply.body["totalResults"].as_u64().unwrap() <= 7)
            }
            StatusCode::BAD_REQUEST => {
                refused += 1;
                let scim_type = reply.body["scimType"].as_str().unwrap();
                assert!(
                    ["invalidFilter", "invalidValue"].contains(&scim_type),
                    "{filter}: {}",
                    reply.body
                )
            }
            other => panic!("{filter} (sortBy {sort}): {other} {}", reply.body),
        }
    }
    // Both kinds occur, so the run exercised the SQL as well as the refusals.
    assert!(
        answered > 20 && refused > 20,
        "{answered} answered, {refused} refused"
    );
    assert_eq!(
        server.count_rows("users").await,
        7,
        "no filter changed data"
    );
}
