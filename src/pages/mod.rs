//! Page controllers that sit above the protocol modules: the account page, which reaches into
//! sign-in (`oauth::interaction`) and self-service (`account`) and renders `ui` views.

pub mod account;
pub mod passkeys;
pub mod recovery;
pub mod verification;
