//! The `tessera` command: `serve`, `migrate`, and bootstrap commands that write to the same store.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tessera::account::invitation;
use tessera::account::password::PasswordHasher;
use tessera::account::users::{self, NewUser};
use tessera::config::StoreBackend;
use tessera::oauth::clients::{self, ClientRegistration};
use tessera::oauth::grants;
use tessera::store::UserOrigin;
use tessera::Config;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "An OAuth 2.0 / OpenID Connect provider"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the provider (configuration from the environment).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect audit events.
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Print the dead events (every webhook attempt failed) and dead mail (every try to send it
    /// failed), newest first, one JSON object a line.
    Dead {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new active key for every algorithm; the old ones stay published until every token
    /// they signed has expired. Running servers pick the new keys up within a minute.
    Rotate,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; prints the new user's id.
    Create(UserCreate),
    /// Invite someone to make an account: prints a single-use link to /signup (7 days), and
    /// mails it when mail is configured (TESSERA_SIGNUP must be invite or open).
    Invite {
        #[arg(long)]
        email: String,
        /// The display name of a group the new account joins.
        #[arg(long)]
        group: Option<String>,
    },
    /// Remove a user's TOTP, recovery codes and passkeys (a user who lost their authenticators).
    ResetMfa {
        #[arg(long)]
        username: String,
    },
}

#[derive(Args)]
struct UserCreate {
    #[arg(long)]
    username: String,
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    given_name: Option<String>,
    #[arg(long)]
    family_name: Option<String>,
    /// Read the password from standard input (one trailing newline is removed).
    #[arg(long, required = true)]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id and, for a confidential client, its secret (shown once).
    Create(ClientCreate),
}

#[derive(Args)]
struct ClientCreate {
    #[arg(long)]
    client_id: String,
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    #[arg(long = "grant", help = grant_help())]
    grants: Vec<String>,
    /// Space-separated scopes the client may request.
    #[arg(long)]
    scope: Option<String>,
    /// A public client (no secret; PKCE required).
    #[arg(long)]
    public: bool,
    #[arg(long)]
    skip_consent: bool,
    #[arg(long)]
    require_mfa: bool,
    /// Sign-ins for this client need a passkey (acr phr): a password with TOTP is not enough.
    #[arg(long)]
    require_phishing_resistant: bool,
    /// Signing algorithm of this client's ID tokens: RS256 (default), ES256 or EdDSA.
    #[arg(long)]
    id_token_alg: Option<String>,
    /// The client is the resource server with this URI: it may introspect other clients'
    /// access tokens (RFC 7662 §4). Repeat for several.
    #[arg(long = "resource-server")]
    resource_servers: Vec<String>,
    /// Lifetime of this client's access tokens (default: TESSERA_ACCESS_TOKEN_SECONDS).
    #[arg(long)]
    access_token_seconds: Option<u32>,
    /// Lifetime of this client's refresh tokens (default: TESSERA_REFRESH_TOKEN_SECONDS).
    #[arg(long)]
    refresh_token_seconds: Option<u32>,
    /// Print {"client_id": …, "client_secret": …} as JSON.
    #[arg(long)]
    json: bool,
}

fn init_logging(config: &Config, serving: bool) {
    // Bootstrap commands keep stdout for their result; only warnings go to stderr.
    let subscriber = if serving {
        tessera::logging::subscriber(&config.logging.filter, config.logging.json, std::io::stdout)
    } else {
        tessera::logging::subscriber("warn", false, std::io::stderr)
    };
    // `init` also routes the `log` records of dependencies into the subscriber.
    tracing_subscriber::util::SubscriberInitExt::init(subscriber);
}

fn read_password() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from stdin")?;
    if let Some(stripped) = password.strip_suffix('\n') {
        password = stripped.strip_suffix('\r').unwrap_or(stripped).to_string();
    }
    Ok(password)
}

/// The `--grant` help, from the grant registry.
fn grant_help() -> String {
    let names: Vec<&str> = grants::names().collect();
    format!(
        "A grant the client may use: {} (default authorization_code); repeat for several",
        names.join(", ")
    )
}

/// What a CLI command reads or writes.
#[derive(Clone, Copy)]
enum Reach {
    /// Users and groups, their second factors and invitations (with the mail these queue).
    Users,
    Events,
    Clients,
}

/// The CLI reaches only what the servers keep outside their own memory: everything on the SQL
/// backend; on the hybrid backend with Redis, users and second factors (its directory log) and
/// the outbox.
fn refuse_unless_reachable(config: &Config, reach: Reach) -> anyhow::Result<()> {
    let reachable = match config.store.backend {
        StoreBackend::Sql => true,
        StoreBackend::Hybrid => {
            !matches!(reach, Reach::Clients) && config.store.redis_url.is_some()
        }
        StoreBackend::Memory => false,
    };
    if reachable {
        return Ok(());
    }
    let what = match reach {
        Reach::Users => "users",
        Reach::Events => "events",
        Reach::Clients => "clients",
    };
    anyhow::bail!(
        "on this backend {what} live in each server's memory; declare users and clients in \
         TESSERA_SEED_FILE instead"
    )
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    init_logging(&config, matches!(cli.command, Command::Serve));
    match cli.command {
        Command::Serve => {
            let app = tessera::build(config.clone()).await?;
            tracing::info!(issuer = %config.issuer, address = %app.local_addr(), "Tessera is serving");
            app.run_until_stopped().await
        }
        Command::Migrate => {
            tessera::open_store(&config).await?;
            Ok(())
        }
        Command::User(UserCommand::Create(args)) => {
            refuse_unless_reachable(&config, Reach::Users)?;
            let store = tessera::open_store(&config).await?;
            let new = NewUser {
                username: args.username,
                password: read_password()?,
                email: args.email,
                given_name: args.given_name,
                family_name: args.family_name,
                email_verified: false,
            };
            let hasher = PasswordHasher::for_this_machine();
            let user = users::create_user(store.as_ref(), &hasher, new, UserOrigin::Cli).await?;
            println!("{}", user.id);
            Ok(())
        }
        Command::Events(EventsCommand::Dead { limit }) => {
            refuse_unless_reachable(&config, Reach::Events)?;
            let store = tessera::open_store(&config).await?;
            for dead in store.dead_events(limit).await? {
                let mut line = dead.event.body();
                // A dead message shows whom it was for and its subject, not its sealed parts.
                if let Some(data) = line["data"].as_object_mut() {
                    data.remove("sealed");
                }
                line["attempts"] = dead.attempts.into();
                line["last_error"] = dead.last_error.into();
                println!("{line}");
            }
            Ok(())
        }
        Command::User(UserCommand::Invite { email, group }) => {
            refuse_unless_reachable(&config, Reach::Users)?;
            if !config.signup.invitations {
                anyhow::bail!("invitations need TESSERA_SIGNUP=invite (or open)");
            }
            let store = tessera::open_store(&config).await?;
            let sealer = tessera::sealing::Sealer::new(config.encryption_key);
            let mailer = tessera::mail::Mailer::new(&config.mail, store.clone(), sealer);
            let link = invitation::invite(
                store.as_ref(),
                mailer.as_ref(),
                &config.issuer,
                &email,
                group.as_deref(),
            )
            .await?;
            println!("{link}");
            Ok(())
        }
        Command::User(UserCommand::ResetMfa { username }) => {
            refuse_unless_reachable(&config, Reach::Users)?;
            let store = tessera::open_store(&config).await?;
            let user_id = store
                .user_by_username(&username)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user {username:?}"))?
                .id;
            let mut removed = store.delete_mfa(&user_id).await?;
            for passkey in store.passkeys(&user_id).await? {
                removed |= store
                    .delete_passkey(&user_id, &passkey.credential_id)
                    .await?;
            }
            if removed {
                println!("MFA reset for {username}");
            } else {
                println!("{username} had no MFA");
            }
            Ok(())
        }
        Command::Client(ClientCommand::Create(args)) => {
            refuse_unless_reachable(&config, Reach::Clients)?;
            let store = tessera::open_store(&config).await?;
            let registration = ClientRegistration {
                client_id: args.client_id,
                redirect_uris: args.redirect_uris,
                post_logout_redirect_uris: args.post_logout_redirect_uris,
                grant_types: args.grants,
                scope: args.scope,
                public: args.public,
                skip_consent: args.skip_consent,
                require_mfa: args.require_mfa,
                require_phishing_resistant: args.require_phishing_resistant,
                id_token_signed_response_alg: args.id_token_alg,
                resource_servers: args.resource_servers,
                access_token_seconds: args.access_token_seconds,
                refresh_token_seconds: args.refresh_token_seconds,
            };
            let registered = clients::register(store.as_ref(), registration).await?;
            let id = &registered.client.client_id;
            match (args.json, &registered.secret) {
                (true, Some(secret)) => {
                    println!(
                        "{}",
                        serde_json::json!({ "client_id": id, "client_secret": secret })
                    )
                }
                (true, None) => println!("{}", serde_json::json!({ "client_id": id })),
                (false, Some(secret)) => println!("client_id: {id}\nclient_secret: {secret}"),
                (false, None) => println!("client_id: {id}"),
            }
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate) => {
            let store = tessera::open_store(&config).await?;
            for key in tessera::keys::rotate(store.as_ref(), tessera::clock::now()).await? {
                println!("{} {}", key.alg, key.kid);
            }
            Ok(())
        }
    }
}

/// How long the process waits, once its work is done, for tasks still running to end.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(Cli::parse()));
    // Not a plain drop, which waits for every task: sqlx's pool maintenance task was seen
    // spinning forever at shutdown (its idle count wrapped), which kept a finished CLI command
    // from ever exiting.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
