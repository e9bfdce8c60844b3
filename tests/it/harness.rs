//! Starts a Tessera per test and drives it like a browser and a relying party would.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use tessera::account::users::{self, NewUser};
use tessera::oauth::clients::{self, ClientRegistration};
use tessera::state::AppState;
use tessera::Config;
use url::Url;

pub const PASSWORD: &str = "correct horse battery staple";
pub const REDIRECT_URI: &str = "https://rp.example/callback";
/// The URI of the harness's resource server `rs`.
pub const RESOURCE_SERVER: &str = "https://api.example/";

pub struct TestServer {
    pub issuer: String,
    pub state: AppState,
    /// The server's own database: a SQLite file, or a fresh PostgreSQL database when the suite
    /// runs with `TESSERA_TEST_DATABASE=postgres`.
    pub database_url: String,
    rs_secret: tokio::sync::OnceCell<String>,
    _dir: tempfile::TempDir,
}

/// A new, empty database for one test server, on the backend the suite runs against.
pub fn test_database(dir: &std::path::Path) -> String {
    match std::env::var("TESSERA_TEST_DATABASE").as_deref() {
        Ok("postgres") => crate::servers::postgres().database(),
        Ok("sqlite") | Err(_) => format!("sqlite://{}?mode=rwc", dir.join("tessera.db").display()),
        Ok(other) => panic!("TESSERA_TEST_DATABASE={other:?}: use sqlite or postgres"),
    }
}

/// A non-following HTTP client: tests look at every redirect themselves.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("HTTP client")
}

/// The JSON document a GET of `url` answers.
pub async fn get_json(url: &str) -> serde_json::Value {
    http_client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server whose configuration `adjust` may change (e.g. shorter lifetimes).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = test_database(dir.path());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut config = Config {
            issuer: format!("http://{}", listener.local_addr().unwrap()),
            store: tessera::config::StoreSettings {
                database_url: database_url.clone(),
                ..Config::default().store
            },
            ..Config::default()
        };
        adjust(&mut config);
        config.validate().expect("valid test configuration");
        let issuer = config.issuer.clone();
        let app = tessera::build_on(listener, config)
            .await
            .expect("build app");
        let state = app.state().clone();
        tokio::spawn(app.run_until_stopped());
        TestServer {
            issuer,
            state,
            database_url,
            rs_secret: tokio::sync::OnceCell::new(),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// Creates a user with [`PASSWORD`]; returns its id.
    pub async fn user(&self, username: &str) -> String {
        let new = NewUser {
            username: username.into(),
            password: PASSWORD.into(),
            email: Some(format!("{username}@example.com")),
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            email_verified: false,
        };
        users::create_user(
            self.state.store.as_ref(),
            &self.state.passwords,
            new,
            tessera::store::UserOrigin::Cli,
        )
        .await
        .expect("create user")
        .id
    }

    /// Registers a client; returns its secret (None for public clients).
    pub async fn client(&self, registration: ClientRegistration) -> Option<String> {
        clients::register(self.state.store.as_ref(), registration)
            .await
            .expect("register client")
            .secret
    }

    /// A confidential web client for [`REDIRECT_URI`].
    pub async fn web_client(&self, client_id: &str) -> String {
        self.client(web_registration(client_id))
            .await
            .expect("a confidential client has a secret")
    }
}

pub fn web_registration(client_id: &str) -> ClientRegistration {
    ClientRegistration {
        client_id: client_id.into(),
        redirect_uris: vec![REDIRECT_URI.into()],
        ..Default::default()
    }
}

/// Where a browser ends up after following the provider's own redirects.
#[derive(Debug)]
pub enum Landing {
    /// A page served by the provider, with its `Retry-After` header if it had one.
    Page {
        status: StatusCode,
        body: String,
        retry_after: Option<u64>,
    },
    /// A redirect away from the provider (to the client).
    Left(Url),
}

impl Landing {
    pub fn page(self) -> (StatusCode, String) {
        match self {
            Landing::Page { status, body, .. } => (status, body),
            Landing::Left(url) => panic!("expected a page, was sent to {url}"),
        }
    }

    pub fn left(self) -> Url {
        match self {
            Landing::Left(url) => url,
            Landing::Page { status, body, .. } => {
                panic!("expected a redirect, got {status}: {body}")
            }
        }
    }
}

/// A fresh login page of `webapp` (created on first use).
pub async fn login_page(server: &TestServer, browser: &Browser) -> String {
    if server.state.store.client("webapp").await.unwrap().is_none() {
        server.web_client("webapp").await;
    }
    let rp = RelyingParty::discover(server, "webapp", None).await;
    let (status, page) = browser
        .visit(rp.authorize(&[], &[]).url.as_str())
        .await
        .page();
    assert_eq!(status, StatusCode::OK);
    page
}

/// Whether `html` is the login page (the account page has password fields too).
pub fn is_login_page(html: &str) -> bool {
    html.contains("action=\"/login\"")
}

/// The query parameters of a URL, as a map.
pub fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// The `name` → `value` pairs of a page's `<input>` elements.
pub fn form_inputs(html: &str) -> HashMap<String, String> {
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = tag[start..].find('"')?;
        Some(
            tag[start..start + len]
                .replace("&amp;", "&")
                .replace("&quot;", "\"")
                .replace("&#x27;", "'"),
        )
    };
    html.split("<input")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            Some((
                attribute(tag, "name")?,
                attribute(tag, "value").unwrap_or_default(),
            ))
        })
        .collect()
}

/// A browser: keeps cookies, follows the provider's redirects, stops at the client's. A clone
/// is another tab of the same browser (same cookies).
#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    issuer: String,
}

impl Browser {
    pub fn new(server: &TestServer) -> Self {
        Self::for_issuer(&server.issuer)
    }

    /// A browser for a server not started in this process.
    pub fn for_issuer(issuer: &str) -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .cookie_store(true)
                .build()
                .expect("browser client"),
            issuer: issuer.to_string(),
        }
    }

    async fn follow(&self, mut response: reqwest::Response) -> Landing {
        loop {
            if !response.status().is_redirection() {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().parse().unwrap());
                return Landing::Page {
                    status,
                    retry_after,
                    body: response.text().await.unwrap(),
                };
            }
            let location = response.headers()["location"].to_str().unwrap().to_string();
            let target = Url::parse(&self.issuer).unwrap().join(&location).unwrap();
            if !target.as_str().starts_with(&self.issuer) {
                return Landing::Left(target);
            }
            response = self.http.get(target).send().await.unwrap();
        }
    }

    pub async fn visit(&self, url: &str) -> Landing {
        self.follow(self.http.get(url).send().await.unwrap()).await
    }

    /// Posts the form of `page` to `action`, with its CSRF token and interaction id and `fields`
    /// on top.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Landing {
        let mut form = form_inputs(page);
        form.retain(|name, _| matches!(name.as_str(), "csrf_token" | "interaction"));
        self.post_form(form, action, fields).await
    }

    /// Posts every input of `page`'s form to `action`, with `fields` on top.
    pub async fn submit_all(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Landing {
        self.post_form(form_inputs(page), action, fields).await
    }

    async fn post_form(
        &self,
        mut form: HashMap<String, String>,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Landing {
        for (name, value) in fields {
            form.insert(name.to_string(), value.to_string());
        }
        let url = format!("{}{action}", self.issuer);
        self.follow(self.http.post(url).form(&form).send().await.unwrap())
            .await
    }

    /// Fills in the login page with `username` and [`PASSWORD`].
    pub async fn log_in(&self, login_page: &str, username: &str) -> Landing {
        assert!(is_login_page(login_page), "not a login page: {login_page}");
        self.submit(
            login_page,
            "/login",
            &[("username", username), ("password", PASSWORD)],
        )
        .await
    }

    /// Answers a consent page.
    pub async fn consent(&self, consent_page: &str, decision: &str) -> Landing {
        assert!(
            consent_page.contains("name=\"decision\""),
            "not a consent page: {consent_page}"
        );
        self.submit(consent_page, "/consent", &[("decision", decision)])
            .await
    }
}

pub type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A relying party built from the provider's discovery document.
pub struct RelyingParty {
    pub client: Rp,
    pub http: reqwest::Client,
}

/// One authorization request in flight: what the RP must remember to finish it.
pub struct Pending {
    pub url: Url,
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

impl RelyingParty {
    pub async fn discover(server: &TestServer, client_id: &str, secret: Option<String>) -> Self {
        let http = http_client();
        let metadata = CoreProviderMetadata::discover_async(
            IssuerUrl::new(server.issuer.clone()).unwrap(),
            &http,
        )
        .await
        .expect("discovery");
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id.into()),
            secret.map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap());
        RelyingParty { client, http }
    }

    pub fn use_client_secret_post(mut self) -> Self {
        self.client = self.client.set_auth_type(AuthType::RequestBody);
        self
    }

    /// An authorization URL with S256 PKCE, state and nonce, for `scopes` beyond `openid`.
    pub fn authorize(&self, scopes: &[&str], extra: &[(&str, &str)]) -> Pending {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in scopes {
            request = request.add_scope(Scope::new(scope.to_string()));
        }
        for (name, value) in extra {
            request = request.add_extra_param(*name, *value);
        }
        let (url, state, nonce) = request.url();
        Pending {
            url,
            state,
            nonce,
            verifier,
        }
    }

    /// Checks the authorization response (exact redirect URI, state, iss) and returns the code.
    pub fn code_from(&self, server: &TestServer, pending: &Pending, redirect: &Url) -> String {
        assert_eq!(
            &redirect.as_str()[..REDIRECT_URI.len()],
            REDIRECT_URI,
            "{redirect}"
        );
        let params = query(redirect);
        assert_eq!(
            params.get("state"),
            Some(pending.state.secret()),
            "state comes back"
        );
        assert_eq!(params.get("iss"), Some(&server.issuer), "RFC 9207 iss");
        params
            .get("code")
            .cloned()
            .unwrap_or_else(|| panic!("no code in {redirect}"))
    }

    pub async fn exchange(&self, code: String, verifier: PkceCodeVerifier) -> CoreTokenResponse {
        self.client
            .exchange_code(AuthorizationCode::new(code))
            .expect("token endpoint in discovery")
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .expect("token exchange")
    }

    /// Verifies the ID token against the JWKS (signature, iss, aud, exp, nonce, at_hash).
    /// Redeems the code `redirect` carries for `pending`, and verifies the RS256 ID token.
    pub async fn redeem(
        &self,
        server: &TestServer,
        pending: Pending,
        redirect: &Url,
    ) -> (CoreTokenResponse, CoreIdTokenClaims) {
        let code = self.code_from(server, &pending, redirect);
        let tokens = self.exchange(code, pending.verifier).await;
        let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
        let claims = self.verify_id_token(&tokens, &pending.nonce, alg);
        (tokens, claims)
    }

    pub fn verify_id_token(
        &self,
        tokens: &CoreTokenResponse,
        nonce: &Nonce,
        alg: CoreJwsSigningAlgorithm,
    ) -> CoreIdTokenClaims {
        let id_token = tokens.id_token().expect("an ID token");
        let verifier = self.client.id_token_verifier().set_allowed_algs(vec![alg]);
        let claims = id_token
            .claims(&verifier, nonce)
            .expect("ID token verifies")
            .clone();
        let expected = openidconnect::AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(
            claims.access_token_hash(),
            Some(&expected),
            "at_hash binds the access token"
        );
        claims
    }
}

/// Runs a whole code flow for `username` in `browser`: returns the tokens and the pending request.
pub async fn sign_in(
    server: &TestServer,
    rp: &RelyingParty,
    browser: &Browser,
    username: &str,
    scopes: &[&str],
) -> (CoreTokenResponse, Pending) {
    let pending = rp.authorize(scopes, &[]);
    let mut landing = browser.visit(pending.url.as_str()).await;
    if let Landing::Page { body, .. } = &landing {
        if is_login_page(body) {
            landing = browser.log_in(body, username).await;
        }
    }
    if let Landing::Page { body, .. } = &landing {
        if body.contains("name=\"decision\"") {
            landing = browser.consent(body, "allow").await;
        }
    }
    let code = rp.code_from(server, &pending, &landing.left());
    let tokens = rp
        .exchange(
            code,
            PkceCodeVerifier::new(pending.verifier.secret().clone()),
        )
        .await;
    (tokens, pending)
}

/// Posts a form to the token endpoint without any client library.
pub async fn post_token(
    server: &TestServer,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, serde_json::Value) {
    let mut request = http_client().post(server.url("/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

pub async fn wait_past(seconds: u64) {
    tokio::time::sleep(Duration::from_millis(seconds * 1000 + 1100)).await;
}

impl TestServer {
    /// Rows in a table of the server's database file, read independently of the server.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let pool = self.database().await;
        let count = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .expect("count rows");
        pool.close().await;
        count
    }

    /// A connection to the server's database, to look at what it stored.
    pub async fn database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database_url)
            .await
            .expect("open the test database")
    }

    /// The secret of the resource server `rs` (`https://api.example/`), a client_credentials
    /// client created on first use.
    pub async fn resource_server_secret(&self) -> String {
        self.rs_secret
            .get_or_init(|| async {
                self.client(ClientRegistration {
                    client_id: "rs".into(),
                    grant_types: vec!["client_credentials".into()],
                    scope: Some("api".into()),
                    resource_servers: vec![RESOURCE_SERVER.into()],
                    ..Default::default()
                })
                .await
                .expect("a confidential client")
            })
            .await
            .clone()
    }

    /// Introspects `token` as the resource server `rs`.
    pub async fn introspect(&self, token: &str) -> serde_json::Value {
        let secret = self.resource_server_secret().await;
        self.introspect_as(("rs", &secret), token).await
    }

    /// Introspects `token` as `client` (id and secret): refresh tokens only answer their own.
    pub async fn introspect_as(&self, client: (&str, &str), token: &str) -> serde_json::Value {
        let response = http_client()
            .post(self.url("/introspect"))
            .basic_auth(client.0, Some(client.1))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// Runs the real `tessera` binary against the SQLite file `database`, with `stdin` as input.
pub fn run_cli(database_url: &str, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tessera");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

impl TestServer {
    /// Runs the real `tessera` binary against this server's database, as an operator would.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let output = run_cli(&self.database_url, args, "");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

/// A SCIM admin: a client_credentials client of scope `scim` and its access token.
pub struct Scim {
    base: String,
    token: String,
}

/// What a SCIM call answered.
pub struct ScimReply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

impl TestServer {
    /// A SCIM admin client (`scim-admin`) with a fresh token.
    pub async fn scim(&self) -> Scim {
        let secret = self
            .client(ClientRegistration {
                client_id: "scim-admin".into(),
                grant_types: vec!["client_credentials".into()],
                scope: Some("scim".into()),
                ..Default::default()
            })
            .await
            .expect("a confidential client");
        let form = [("grant_type", "client_credentials"), ("scope", "scim")];
        let (status, _, body) = post_token(self, Some(("scim-admin", &secret)), &form).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Scim::new(
            self.url("/scim/v2"),
            body["access_token"].as_str().unwrap().to_string(),
        )
    }
}

impl Scim {
    /// An admin of the SCIM API at `base` (`…/scim/v2`) with this bearer token.
    pub fn new(base: String, token: String) -> Self {
        Scim { base, token }
    }

    /// The bearer token, for requests the helpers cannot shape.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> ScimReply {
        let mut request = http_client()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        ScimReply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> ScimReply {
        self.call(reqwest::Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> ScimReply {
        self.call(reqwest::Method::POST, path, Some(body), &[])
            .await
    }

    pub async fn put(&self, path: &str, body: serde_json::Value) -> ScimReply {
        self.call(reqwest::Method::PUT, path, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, operations: serde_json::Value) -> ScimReply {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        });
        self.call(reqwest::Method::PATCH, path, Some(body), &[])
            .await
    }

    pub async fn delete(&self, path: &str) -> ScimReply {
        self.call(reqwest::Method::DELETE, path, None, &[]).await
    }

    /// Creates a user from `body` (schemas added) and returns the created resource.
    pub async fn create_user(&self, mut body: serde_json::Value) -> serde_json::Value {
        body["schemas"] = serde_json::json!(["urn:ietf:params:scim:schemas:core:2.0:User"]);
        let reply = self.post("/Users", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }

    /// Creates a group named `name` with these member ids; returns the resource.
    pub async fn create_group(&self, name: &str, members: &[&str]) -> serde_json::Value {
        let members: Vec<serde_json::Value> = members
            .iter()
            .map(|id| serde_json::json!({ "value": id }))
            .collect();
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": members,
        });
        let reply = self.post("/Groups", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }
}

impl ScimReply {
    /// Asserts a SCIM error (RFC 7644 §3.12) with this status and `scimType`.
    pub fn assert_error(&self, status: StatusCode, scim_type: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.body["schemas"],
            serde_json::json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert_eq!(self.body["status"], status.as_u16().to_string());
        assert_eq!(self.body["scimType"].as_str(), scim_type, "{}", self.body);
    }
}

/// One base64url JSON segment of a JWT (0: the header, 1: the claims), read without verifying.
pub fn decode_segment(jwt: &str, index: usize) -> serde_json::Value {
    use base64::Engine;
    let segment = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment)
            .unwrap(),
    )
    .unwrap()
}
