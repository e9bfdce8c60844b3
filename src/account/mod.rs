//! Users, their passwords and their signed-in sessions.

pub mod mfa;
pub mod password;
pub mod session;
pub mod users;
