//! Real PostgreSQL 15, Redis and SMTP servers for tests, from the Debian binaries, each on a free
//! 127.0.0.1 port in its own temp dir. One shared PostgreSQL and one shared Redis serve the whole
//! test run (`postgres()`, `redis()`; tests isolate themselves by database / key prefix); outage
//! and mail tests start their own (`OwnedPostgres::new()`, `Redis::new()`, `Smtp::new()`) and stop
//! and restart them.
//!
//! No server or temp dir may outlive the test process, even a killed one, and statics are never
//! dropped. So every server runs under a small `sh` supervisor (`SUPERVISOR`) whose stdin is a pipe
//! only we hold: the kernel closes it however we exit (normal end, panic, Ctrl-C, SIGKILL), and the
//! supervisor then stops the server and deletes its dir. `Drop` closes the same pipe and waits;
//! `stop()` too, after asking the supervisor to keep the dir for a restart.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared PostgreSQL, started by the first test that asks for it.
pub fn postgres() -> &'static Postgres {
    static SHARED: OnceLock<Postgres> = OnceLock::new();
    SHARED.get_or_init(Postgres::launch)
}

/// The shared Redis, started by the first test that asks for it. Never stop it: use `Redis::new()`.
pub fn redis() -> &'static Redis {
    static SHARED: OnceLock<Redis> = OnceLock::new();
    SHARED.get_or_init(Redis::new)
}

/// A PostgreSQL server with trust authentication for the superuser `postgres`.
pub struct Postgres {
    instance: Instance,
}

impl Postgres {
    fn launch() -> Self {
        // In /tmp rather than $TMPDIR: the `postgres` user must be able to reach it, and the unix
        // socket path inside it must stay under the kernel's ~107-byte limit.
        let tmp = tempfile::Builder::new()
            .prefix("tessera-pg-")
            .tempdir_in("/tmp")
            .expect("PostgreSQL temp dir");
        if running_as_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(tmp.path()));
        }
        run(as_postgres(&format!("{PG_BIN}/initdb"))
            .arg("--pgdata")
            .arg(tmp.path().join("data"))
            .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
            // A UTF-8 locale, as production servers have: under it `lower()` folds non-ASCII
            // letters too, unless the SQL asks for the C collation.
            .args(["--locale=C.UTF-8", "--no-sync", "--no-instructions"]));
        let postgres = Postgres {
            instance: Instance::new(tmp),
        };
        postgres.start();
        postgres
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.instance.port
        )
    }

    /// Creates a fresh, empty database with a name unique to this run and returns its URL.
    pub fn database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t_{}_{}",
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::process::id()
        );
        run(Command::new(format!("{PG_BIN}/psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-d", &self.url("postgres")])
            .args(["-c", &format!("CREATE DATABASE {name}")]));
        self.url(&name)
    }

    fn start(&self) {
        let dir = self.instance.dir.display();
        // Settings for a disposable server: no durability, little memory, room for many pools.
        let server = [
            format!("{PG_BIN}/postgres"),
            format!("-D{dir}/data"),
            format!("-p{}", self.instance.port),
            "-clisten_addresses=127.0.0.1".into(),
            format!("-cunix_socket_directories={dir}"),
            "-cfsync=off".into(),
            "-csynchronous_commit=off".into(),
            "-cfull_page_writes=off".into(),
            "-cshared_buffers=16MB".into(),
            "-cmax_connections=200".into(),
        ];
        let port = self.instance.port.to_string();
        // SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for clients to disconnect).
        self.instance.start(as_postgres("sh"), "INT", &server, || {
            // Not a bare TCP connect: pg_isready also tells "starting up" from "accepting".
            Command::new(format!("{PG_BIN}/pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port, "-t", "1"])
                .status()
                .is_ok_and(|status| status.success())
        });
    }
}

/// A PostgreSQL server one test owns alone, so that it may stop and restart it (outage tests).
/// Derefs to [`Postgres`] for `url` and `database`; stopped and deleted when dropped.
pub struct OwnedPostgres(Postgres);

impl OwnedPostgres {
    pub fn new() -> Self {
        OwnedPostgres(Postgres::launch())
    }

    /// Fast shutdown (clients are disconnected); returns once the server has exited.
    pub fn stop(&self) {
        self.0.instance.stop();
    }

    /// Restarts on the same port and data, returning once it accepts connections.
    pub fn start(&self) {
        self.0.start();
    }
}

impl Deref for OwnedPostgres {
    type Target = Postgres;

    fn deref(&self) -> &Postgres {
        &self.0
    }
}

/// A Redis server without persistence. Stopped and deleted when dropped.
pub struct Redis {
    instance: Instance,
}

impl Redis {
    /// A Redis of the caller's own, which it may stop and restart.
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("tessera-redis-")
            .tempdir()
            .expect("Redis temp dir");
        let redis = Redis {
            instance: Instance::new(tmp),
        };
        redis.start();
        redis
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.instance.port)
    }

    /// Whether the server answers a `PING` right now.
    pub fn ping(&self) -> bool {
        redis_ping(self.instance.port)
    }

    /// Returns once the server has exited.
    pub fn stop(&self) {
        self.instance.stop();
    }

    /// Restarts on the same port (empty: nothing is persisted), returning once it answers.
    pub fn start(&self) {
        let server = [
            "redis-server",
            "--port",
            &self.instance.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &self.instance.dir.display().to_string(),
        ]
        .map(String::from);
        let port = self.instance.port;
        self.instance
            .start(Command::new("sh"), "TERM", &server, || redis_ping(port));
    }
}

/// How an [`Smtp`] server takes mail.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP, anyone's mail: a local relay.
    Plain,
    /// Only after STARTTLS (RFC 3207), and only with [`SMTP_USER`] and [`SMTP_PASSWORD`].
    StartTls,
    /// TLS from the first byte (RFC 8314 §3.3), and only with the same login.
    ImplicitTls,
}

/// The login a TLS [`Smtp`] server takes mail with (SMTP AUTH, RFC 4954).
pub const SMTP_USER: &str = "tessera";
pub const SMTP_PASSWORD: &str = "relay p@ss:word";

/// An SMTP server (aiosmtpd, from Debian's python3-aiosmtpd, run by `smtp_relay.py`) that keeps
/// every message it accepts in a Maildir, which tests read back. Stopped and deleted when dropped.
pub struct Smtp {
    instance: Instance,
    security: SmtpSecurity,
}

impl Smtp {
    pub fn new() -> Self {
        Self::with(SmtpSecurity::Plain)
    }

    /// A server taking mail as `security` says; a TLS one has a self-signed certificate for
    /// `localhost` ([`Smtp::certificate`]), made here with `openssl`.
    pub fn with(security: SmtpSecurity) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("tessera-smtp-")
            .tempdir()
            .expect("SMTP temp dir");
        let smtp = Smtp {
            instance: Instance::new(tmp),
            security,
        };
        if security != SmtpSecurity::Plain {
            let (cert, key) = (smtp.certificate(), smtp.instance.dir.join("key.pem"));
            run(Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
                .args(["-subj", "/CN=localhost", "-addext"])
                .arg("subjectAltName=DNS:localhost,IP:127.0.0.1")
                .arg("-keyout")
                .arg(key)
                .arg("-out")
                .arg(cert));
        }
        smtp.start();
        smtp
    }

    /// The `TESSERA_SMTP_URL` of this server.
    pub fn url(&self) -> String {
        let port = self.instance.port;
        let password = utf8_percent_encode(SMTP_PASSWORD, NON_ALPHANUMERIC);
        let login = format!("{SMTP_USER}:{password}@localhost:{port}");
        match self.security {
            SmtpSecurity::Plain => format!("smtp://127.0.0.1:{port}"),
            SmtpSecurity::StartTls => format!("smtp://{login}?tls=starttls"),
            SmtpSecurity::ImplicitTls => format!("smtps://{login}"),
        }
    }

    /// The certificate (PEM) a client must trust to reach a TLS server.
    pub fn certificate(&self) -> PathBuf {
        self.instance.dir.join("cert.pem")
    }

    /// Returns once the server has exited; what it received stays.
    pub fn stop(&self) {
        self.instance.stop();
    }

    /// (Re)starts on the same port and Maildir, returning once it takes connections.
    pub fn start(&self) {
        let port = self.instance.port;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/smtp_relay.py");
        // Debian's interpreter, which the package installs the module for.
        let mut server = vec!["/usr/bin/python3".to_string(), script.into()];
        server.extend(["--port".into(), port.to_string(), "--maildir".into()]);
        server.push(self.maildir().display().to_string());
        if self.security != SmtpSecurity::Plain {
            let tls = match self.security {
                SmtpSecurity::StartTls => "starttls",
                _ => "implicit",
            };
            let key = self.instance.dir.join("key.pem");
            server.extend(["--tls".into(), tls.into(), "--cert".into()]);
            server.push(self.certificate().display().to_string());
            server.extend(["--key".into(), key.display().to_string()]);
            server.extend(["--login".into(), format!("{SMTP_USER}:{SMTP_PASSWORD}")]);
        }
        // An implicit-TLS server greets only inside TLS: that one is ready when it accepts.
        let greets = self.security != SmtpSecurity::ImplicitTls;
        let ready = || match greets {
            true => smtp_greets(port),
            false => TcpStream::connect(("127.0.0.1", port)).is_ok(),
        };
        self.instance
            .start(Command::new("sh"), "TERM", &server, ready);
    }

    fn maildir(&self) -> PathBuf {
        self.instance.dir.join("maildir")
    }

    /// Every message received so far, as sent (RFC 5322), in no particular order.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let Ok(entries) = fs::read_dir(self.maildir().join("new")) else {
            return Vec::new();
        };
        entries
            .map(|entry| fs::read(entry.expect("Maildir entry").path()).expect("message"))
            .collect()
    }
}

fn smtp_greets(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut greeting = [0; 3];
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_ok()
        && stream.read_exact(&mut greeting).is_ok()
        && &greeting == b"220"
}

fn redis_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reply = [0; 7];
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_ok()
        && stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// What both kinds of server have: a temp dir, a port kept across restarts, the running process.
struct Instance {
    port: u16,
    /// Deleted by the supervisor, not by a `TempDir`: statics are never dropped.
    dir: PathBuf,
    server: Mutex<Option<Supervised>>,
}

impl Instance {
    fn new(dir: tempfile::TempDir) -> Self {
        Instance {
            port: free_port(),
            dir: dir.keep(),
            server: Mutex::new(None),
        }
    }

    /// Ignores poisoning: a start that panicked left `None`, which is accurate, and `Drop` must
    /// still be able to stop the server after a failed test.
    fn running(&self) -> MutexGuard<'_, Option<Supervised>> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Starts `server` under a supervisor run by `sh` (a command that runs `sh`, maybe as another
    /// user), and waits until `ready`.
    fn start(&self, sh: Command, signal: &str, server: &[String], ready: impl Fn() -> bool) {
        let mut running = self.running();
        assert!(
            running.is_none(),
            "server on port {} already running",
            self.port
        );
        let mut supervised = Supervised::spawn(sh, &self.dir, signal, server, &self.log());
        let started = Instant::now();
        while !ready() {
            if let Some(status) = supervised.0.try_wait().expect("supervisor status") {
                panic!(
                    "{} exited ({status}) before it was ready; log:\n{}",
                    server[0],
                    tail(&self.log())
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                panic!(
                    "{} not ready after {READY_TIMEOUT:?}; log:\n{}",
                    server[0],
                    tail(&self.log())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        *running = Some(supervised);
    }

    /// Stops the server, keeping its dir for a restart.
    fn stop(&self) {
        if let Some(supervised) = self.running().take() {
            supervised.stop(Then::Restart);
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(supervised) = self.running().take() {
            supervised.stop(Then::Delete);
        }
        // The supervisor has deleted the dir, unless the server was stopped for a restart that
        // never came, or crashed.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs as `sh -c SUPERVISOR sh DIR SIGNAL SERVER ARGS...`: starts the server, and sends it SIGNAL
/// once it reads a line or end of file on stdin (we stopped it, or died). It exits when the server
/// does, so waiting for it waits for the shutdown. After a clean exit it deletes DIR, unless the
/// line was `restart`. After a crash DIR stays: a startup panic still needs the log, and `Drop`
/// deletes it afterwards.
const SUPERVISOR: &str = r#"
dir=$1 sig=$2
shift 2
exec 3<&0 # background jobs get /dev/null as stdin: keep the pipe as fd 3 for the watcher
"$@" 3<&- &
server=$!
{
    read -r line
    [ "$line" != restart ] || : >"$dir/.restart"
    kill -s "$sig" "$server"
} <&3 3<&- &
watcher=$!
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
if [ -e "$dir/.restart" ]; then rm "$dir/.restart"; elif [ "$status" = 0 ]; then rm -rf "$dir"; fi
exit "$status"
"#;

/// What the supervisor does with the server's dir once the server has stopped.
enum Then {
    Restart,
    Delete,
}

/// A server under `SUPERVISOR`: the `Child` is the supervisor, holding our end of its stdin.
struct Supervised(Child);

impl Supervised {
    fn spawn(mut sh: Command, dir: &Path, signal: &str, server: &[String], log: &Path) -> Self {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("server log");
        let child = sh
            // Out of our process group, so that Ctrl-C (sent to the terminal's foreground group)
            // reaches only the test process: the supervisor then sees EOF and signals the server
            // once, cleanly (a second signal makes Redis abort and keep its dir).
            .process_group(0)
            .args(["-c", SUPERVISOR, "sh"])
            .arg(dir)
            .arg(signal)
            .args(server)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("server log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server[0]));
        Supervised(child)
    }

    /// Stops the server and waits until it has exited and the supervisor has done `then`.
    fn stop(mut self, then: Then) {
        let mut pipe = self.0.stdin.take().expect("supervisor stdin");
        if let Then::Restart = then {
            // If the supervisor is already gone (the server crashed), there is nothing to keep.
            let _ = pipe.write_all(b"restart\n");
        }
        drop(pipe);
        self.0.wait().expect("wait for server supervisor");
    }
}

/// PostgreSQL refuses to run as root, and CI runs the tests as root: then its programs run as the
/// `postgres` user that Debian's postgresql package creates (its temp dir is chowned to it).
fn as_postgres(program: &str) -> Command {
    if !running_as_root() {
        return Command::new(program);
    }
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--", program]);
    command
}

fn running_as_root() -> bool {
    // /proc/self belongs to the process's effective user; this avoids a libc dependency.
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A port that was free a moment ago. Another process could take it before the server binds it;
/// on a test machine that race is rare enough, and it would show as a clear startup panic.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// Runs a setup command to completion, panicking with its output if it fails.
fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// The last lines of a server log, for panic messages.
fn tail(log: &Path) -> String {
    let text = fs::read(log).map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    let text = text.unwrap_or_else(|e| format!("(cannot read {}: {e})", log.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select_1(url: &str) -> bool {
        Command::new(format!("{PG_BIN}/psql"))
            .args(["-X", "-q", "-d", url, "-c", "select 1"])
            .output()
            .is_ok_and(|output| output.status.success())
    }

    #[test]
    fn shared_postgres_hands_out_separate_databases() {
        let started = Instant::now();
        let postgres = postgres();
        eprintln!("shared PostgreSQL ready in {:?}", started.elapsed());
        assert!(
            std::ptr::eq(postgres, super::postgres()),
            "one server per run"
        );
        let (first, second) = (postgres.database(), postgres.database());
        assert_ne!(first, second);
        assert!(select_1(&first) && select_1(&second));
    }

    #[test]
    fn owned_postgres_stops_and_restarts_with_its_data() {
        let started = Instant::now();
        let postgres = OwnedPostgres::new();
        eprintln!("owned PostgreSQL ready in {:?}", started.elapsed());
        let url = postgres.database();
        postgres.stop();
        assert!(!select_1(&url), "stopped server still answers");
        let restarted = Instant::now();
        postgres.start();
        eprintln!("PostgreSQL restarted in {:?}", restarted.elapsed());
        assert!(select_1(&url), "database lost across restart");
    }

    #[test]
    fn redis_stops_and_restarts_on_its_port() {
        let started = Instant::now();
        let redis = Redis::new();
        eprintln!("Redis ready in {:?}", started.elapsed());
        assert!(redis.ping() && super::redis().ping());
        assert_ne!(redis.url(), super::redis().url());
        redis.stop();
        assert!(!redis.ping(), "stopped server still answers");
        redis.start();
        assert!(redis.ping());
    }
}
