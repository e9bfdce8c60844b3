//! Users, their passwords and their signed-in sessions.

pub mod invitation;
pub mod mfa;
pub mod passkeys;
pub mod password;
pub mod password_check;
pub mod password_rule;
pub mod recovery;
pub mod self_service;
pub mod session;
pub mod signup;
pub mod users;
pub mod verification;
