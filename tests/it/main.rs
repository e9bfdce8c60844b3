//! Tessera's integration tests: one binary (linking is the slow part), real servers on
//! 127.0.0.1:0, a real SQLite file each, and the `openidconnect` crate as the relying party.

mod account;
mod api;
mod architecture;
mod authorize_errors;
mod browser;
mod cli;
mod cluster;
mod cors;
mod crash;
mod fuzz_corpus;
mod hardening;
mod harness;
mod login;
mod logs;
mod mail_relays;
mod mailbox;
mod mfa;
mod oidc_flow;
mod operations;
mod outage;
mod passkeys;
mod process;
mod recovery;
mod scim;
mod seed;
mod servers;
mod sessions_and_keys;
mod signup;
mod store_suite;
mod throttle;
mod token_errors;
mod token_lifecycle;
mod verification;
mod webhooks;
