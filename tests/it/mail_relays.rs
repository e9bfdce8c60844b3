//! Mail through relays as production runs them: TLS (STARTTLS or implicit) with a login, the
//! relay's certificate checked against the trust store (OpenSSL's, which `SSL_CERT_FILE`
//! replaces), and a relay that cannot be trusted getting nothing.

use std::time::Duration;

use crate::harness::test_database;
use crate::mailbox::mail_to;
use crate::process::{free_port, Deployment, Instance};
use crate::servers::{Smtp, SmtpSecurity};

const INVITED: &str = "dan@example.com";
const SUBJECT: &str = "You are invited to make an account";

/// A deployment on a SQLite file mailing through `smtp`, retrying failed mail after a second.
fn mailing_through(smtp: &Smtp, dir: &std::path::Path) -> Deployment {
    Deployment {
        env: vec![
            ("DATABASE_URL", test_database(dir)),
            ("TESSERA_SMTP_URL", smtp.url()),
            ("TESSERA_MAIL_FROM", "Tessera <id@tessera.test>".into()),
            ("TESSERA_MAIL_RETRY_SECONDS", "1".into()),
            ("TESSERA_SIGNUP", "invite".into()),
        ],
    }
}

async fn serve(deployment: &Deployment) -> Instance {
    let port = free_port();
    let server = deployment.spawn(&format!("http://127.0.0.1:{port}"), port);
    server.wait_ready().await;
    server
}

fn invite(deployment: &Deployment) {
    let link = deployment.cli(&["user", "invite", "--email", INVITED], "");
    assert!(link.contains("/signup?invitation="), "{link}");
}

/// STARTTLS with a login: a server that does not trust the relay's certificate sends nothing
/// (it would hand the password and the link to whoever answers); once one that trusts it runs,
/// the queued invitation goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_through_starttls_only_to_a_trusted_relay() {
    let smtp = Smtp::with(SmtpSecurity::StartTls);
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = mailing_through(&smtp, dir.path());

    let untrusting = serve(&deployment).await;
    invite(&deployment);
    // Time for three tries (the outbox is polled every second, retried after 1 s, then 2 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(smtp.messages().is_empty(), "mailed to an untrusted relay");
    drop(untrusting);

    let certificate = smtp.certificate().display().to_string();
    deployment.env.push(("SSL_CERT_FILE", certificate));
    let _trusting = serve(&deployment).await;
    let mail = mail_to(&smtp, INVITED, SUBJECT).await;
    assert!(mail.text.contains("/signup?invitation="), "{}", mail.text);
}

/// Implicit TLS (`smtps://`) with a login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_through_implicit_tls_with_a_login() {
    let smtp = Smtp::with(SmtpSecurity::ImplicitTls);
    let dir = tempfile::tempdir().unwrap();
    let mut deployment = mailing_through(&smtp, dir.path());
    let certificate = smtp.certificate().display().to_string();
    deployment.env.push(("SSL_CERT_FILE", certificate));
    let _server = serve(&deployment).await;
    invite(&deployment);
    let mail = mail_to(&smtp, INVITED, SUBJECT).await;
    assert!(mail.text.contains("/signup?invitation="), "{}", mail.text);
}
