//! Real `tessera serve` processes and the CLI, started from the binary Cargo built for the tests:
//! a deployment is the environment its processes share.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{http_client, PASSWORD, REDIRECT_URI};

/// The configuration every process of one deployment shares: instances and the CLI alike.
pub struct Deployment {
    pub env: Vec<(&'static str, String)>,
}

impl Deployment {
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Starts `tessera serve` on `port` of 127.0.0.1, answering for the shared `issuer`.
    pub fn spawn(&self, issuer: &str, port: u16) -> Instance {
        self.spawn_with_stdout(issuer, port, Stdio::null())
    }

    /// As [`Self::spawn`], with the process's standard output (its logs) sent to `stdout`. The
    /// deployment's environment may override the quiet log level set here.
    pub fn spawn_with_stdout(&self, issuer: &str, port: u16, stdout: Stdio) -> Instance {
        let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .env("TESSERA_KEY_RELOAD_SECONDS", "1")
            .env("TESSERA_KEY_PUBLISH_AHEAD_SECONDS", "1")
            .env("TESSERA_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("TESSERA_ISSUER", issuer)
            .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
            .stdout(stdout)
            .spawn()
            .expect("start tessera serve");
        Instance {
            base: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// Runs the CLI with `stdin`; returns its standard output.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run the CLI");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "tessera {args:?} failed");
        String::from_utf8(output.stdout).unwrap()
    }

    /// With the CLI: user `ada` (password [`PASSWORD`]) and client `web` for the code flow,
    /// refresh tokens and client credentials; returns the client's secret.
    pub fn register_ada_and_web(&self) -> String {
        self.cli(
            &["user", "create", "--username", "ada", "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        let client = self.cli(
            &[
                "client",
                "create",
                "--client-id",
                "web",
                "--redirect-uri",
                REDIRECT_URI,
                "--grant",
                "authorization_code",
                "--grant",
                "refresh_token",
                "--grant",
                "client_credentials",
                "--scope",
                "openid offline_access",
                "--skip-consent",
                "--json",
            ],
            "",
        );
        let client: Value = serde_json::from_str(&client).unwrap();
        client["client_secret"].as_str().unwrap().to_string()
    }

    /// Two instances behind one public issuer, started at once, both ready.
    pub async fn start_two(&self) -> (Instance, Instance) {
        let (port_a, port_b) = (free_port(), free_port());
        // Behind a load balancer every instance answers for the one public issuer.
        let issuer = format!("http://127.0.0.1:{port_a}");
        let a = self.spawn(&issuer, port_a);
        let b = self.spawn(&issuer, port_b);
        a.wait_ready().await;
        b.wait_ready().await;
        (a, b)
    }
}

/// One `tessera serve` process, killed when dropped.
pub struct Instance {
    pub base: String,
    child: Child,
}

impl Instance {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = http_client().get(self.url("/readyz")).send().await {
                if response.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} never became ready",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn jwks(&self) -> Value {
        crate::harness::get_json(&self.url("/jwks")).await
    }

    /// Exchanges an authorization code here; the exchange must succeed.
    pub async fn redeem(&self, secret: &str, code: &str, verifier: &str) -> Value {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ];
        let (status, tokens) = self.post("/token", secret, &form).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        tokens
    }

    /// Posts a form to this instance's `path` (token, revocation, introspection) as the client.
    pub async fn post(
        &self,
        path: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let response = http_client()
            .post(self.url(path))
            .basic_auth("web", Some(secret))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
