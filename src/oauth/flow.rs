//! The one place that decides the next step of a sign-in: from the authorization request (or a
//! sign-in to the account page), how the user is authenticated so far, and facts about the user.
//! Pure: callers load the facts and carry the step out. OIDC Core §3.1.2.1 (`prompt`, `max_age`),
//! §3.1.2.6 (the errors of `prompt=none`) and RFC 9470 (`unmet_authentication_requirements`,
//! and the step-up a stronger `acr_values` asks of an existing session).

use crate::error::ErrorCode;
use crate::oauth::authorize::AuthorizationRequest;
use crate::store::UnixTime;

/// Who is authenticated in this sign-in, and what the decision needs to know of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserFacts {
    /// A second factor was verified.
    pub mfa: bool,
    /// A passkey was used (acr `phr`).
    pub phishing_resistant: bool,
    /// The password was checked in this sign-in, not carried over from an earlier session.
    pub fresh: bool,
    /// The user has a confirmed second factor (asked only when [`enrollment_matters`]).
    pub enrolled: bool,
    /// The user has a passkey (asked only when [`passkey_matters`]).
    pub passkey: bool,
    /// The user must (again) approve the request's scopes for its client.
    pub consent_needed: bool,
    /// Verification is required and the user's address is not verified.
    pub email_unverified: bool,
}

/// What the sign-in does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Login,
    /// `prompt=create` (OpenID Connect Prompt Create 1.0): the account creation page.
    SignUp,
    SecondFactor,
    /// The user must open the link mailed to their address first.
    VerifyEmail,
    Consent,
    IssueCode,
    /// A sign-in to the account page is done.
    AccountPage,
    /// Back to the client with this error.
    Refuse(ErrorCode),
}

/// The next step for `request` (`None`: a sign-in to the account page) with `user` authenticated
/// so far (`None`: nobody yet, or no session that satisfies the request, see [`session_counts`]).
pub fn next_step(request: Option<&AuthorizationRequest>, user: Option<UserFacts>) -> Step {
    let require_mfa = request.is_some_and(|r| r.require_mfa);
    let require_passkey = request.is_some_and(|r| r.require_phishing_resistant);
    let create = request.is_some_and(|r| r.prompt.create);
    let step = match user {
        // Until the account is made (and so signed in) in this sign-in.
        _ if create && !user.is_some_and(|u| u.fresh) => Step::SignUp,
        None => Step::Login,
        // A passkey is the only way to `phr`: the passkey step (after the password, or on top
        // of the session's factors), or an error when the user has none.
        Some(u) if require_passkey && !u.phishing_resistant && u.passkey => Step::SecondFactor,
        Some(u) if require_passkey && !u.phishing_resistant => {
            Step::Refuse(ErrorCode::UnmetAuthenticationRequirements)
        }
        Some(u) if !u.mfa && u.enrolled && (u.fresh || require_mfa) => Step::SecondFactor,
        Some(u) if require_mfa && !u.mfa => {
            Step::Refuse(ErrorCode::UnmetAuthenticationRequirements)
        }
        // The account page stays open: it is where a wrong address is corrected.
        Some(_) if request.is_none() => Step::AccountPage,
        Some(u) if u.email_unverified => Step::VerifyEmail,
        Some(u) if u.consent_needed => Step::Consent,
        Some(_) => Step::IssueCode,
    };
    if !request.is_some_and(|r| r.prompt.none) {
        return step;
    }
    // §3.1.2.6: `prompt=none` never shows a page.
    match step {
        Step::Login | Step::SignUp => Step::Refuse(ErrorCode::LoginRequired),
        Step::SecondFactor | Step::VerifyEmail => Step::Refuse(ErrorCode::InteractionRequired),
        Step::Consent => Step::Refuse(ErrorCode::ConsentRequired),
        other => other,
    }
}

/// Whether [`UserFacts::enrolled`] can change the step, so the caller need not read it otherwise.
pub fn enrollment_matters(request: Option<&AuthorizationRequest>, mfa: bool, fresh: bool) -> bool {
    !mfa && (fresh || request.is_some_and(|r| r.require_mfa))
}

/// Whether [`UserFacts::passkey`] can change the step.
pub fn passkey_matters(request: Option<&AuthorizationRequest>, phishing_resistant: bool) -> bool {
    !phishing_resistant && request.is_some_and(|r| r.require_phishing_resistant)
}

/// Whether an existing session of `user_id`, authenticated at `auth_time`, may serve `request`:
/// not with `prompt=login`, not past `max_age`, and only for the user an `id_token_hint` names.
pub fn session_counts(
    request: &AuthorizationRequest,
    user_id: &str,
    auth_time: UnixTime,
    now: UnixTime,
) -> bool {
    !request.prompt.login
        && request
            .hinted_user
            .as_deref()
            .is_none_or(|sub| sub == user_id)
        && request
            .max_age
            .is_none_or(|max_age| now - auth_time <= max_age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::authorize::Prompt;

    fn request(
        prompt: Prompt,
        max_age: Option<UnixTime>,
        require_mfa: bool,
    ) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "app".into(),
            redirect_uri: "https://app.example/cb".into(),
            scope: "openid".into(),
            state: None,
            nonce: None,
            code_challenge: String::new(),
            prompt,
            max_age,
            require_mfa,
            require_phishing_resistant: false,
            hinted_user: None,
        }
    }

    const BOOLS: [bool; 2] = [false, true];

    /// Every combination of prompt × max_age × session (none, password, MFA, passkey) ×
    /// enrolled × passkey × MFA or passkey required × consent, at the authorization endpoint (an
    /// existing session) and after a fresh password.
    #[test]
    fn every_combination_follows_the_rules() {
        let now = 10_000;
        let mut checked = 0;
        for (none, login, consent) in BOOLS.iter().flat_map(|&a| {
            BOOLS
                .iter()
                .flat_map(move |&b| BOOLS.iter().map(move |&c| (a, b, c)))
        }) {
            for (max_age, create) in [None, Some(60), Some(3_600)]
                .into_iter()
                .flat_map(|max_age| BOOLS.map(move |create| (max_age, create)))
            {
                for (require_mfa, require_passkey) in
                    BOOLS.iter().flat_map(|&a| BOOLS.map(move |b| (a, b)))
                {
                    let prompt = Prompt {
                        none,
                        login,
                        consent,
                        create,
                    };
                    let mut request = request(prompt, max_age, require_mfa);
                    request.require_phishing_resistant = require_passkey;
                    // (mfa, phishing-resistant): a password, with TOTP, a passkey.
                    let sessions = [
                        None,
                        Some((false, false)),
                        Some((true, false)),
                        Some((true, true)),
                    ];
                    for (session, passkey) in sessions
                        .into_iter()
                        .flat_map(|s| BOOLS.map(move |p| (s, p)))
                    {
                        for ((enrolled, consent_needed, fresh), email_unverified) in BOOLS
                            .iter()
                            .flat_map(|&a| {
                                BOOLS
                                    .iter()
                                    .flat_map(move |&b| BOOLS.iter().map(move |&c| (a, b, c)))
                            })
                            .flat_map(|facts| BOOLS.map(move |unverified| (facts, unverified)))
                        {
                            let auth_time = now - 600;
                            let counts = fresh || session_counts(&request, "u", auth_time, now);
                            let user = session.filter(|_| counts).map(|(mfa, phr)| UserFacts {
                                mfa,
                                phishing_resistant: phr,
                                fresh,
                                enrolled: enrolled || mfa || passkey,
                                passkey: passkey || phr,
                                consent_needed: consent_needed || consent,
                                email_unverified,
                            });
                            let step = next_step(Some(&request), user);
                            check(&request, user, step);
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 8 * 3 * 2 * 4 * 4 * 2 * 8 * 2);
    }

    /// The rules, stated one by one.
    fn check(request: &AuthorizationRequest, user: Option<UserFacts>, step: Step) {
        let case = format!("{request:?} {user:?} → {step:?}");
        if request.prompt.none {
            assert!(
                !matches!(
                    step,
                    Step::Login
                        | Step::SignUp
                        | Step::SecondFactor
                        | Step::VerifyEmail
                        | Step::Consent
                ),
                "prompt=none shows no page: {case}"
            );
        }
        if step == Step::IssueCode {
            let u = user.expect("a code needs a user");
            assert!(u.mfa || !request.require_mfa, "MFA before a code: {case}");
            assert!(
                u.phishing_resistant || !request.require_phishing_resistant,
                "a passkey before a code: {case}"
            );
            assert!(!u.consent_needed, "consent before a code: {case}");
            assert!(
                !u.email_unverified,
                "a verified address before a code: {case}"
            );
            assert!(
                !(u.fresh && u.enrolled && !u.mfa),
                "an enrolled user's second factor: {case}"
            );
        }
        match user {
            _ if request.prompt.create && !user.is_some_and(|u| u.fresh) => {
                let expected = match request.prompt.none {
                    true => Step::Refuse(ErrorCode::LoginRequired),
                    false => Step::SignUp,
                };
                assert_eq!(step, expected, "{case}")
            }
            None if request.prompt.none => {
                assert_eq!(step, Step::Refuse(ErrorCode::LoginRequired), "{case}")
            }
            None => assert_eq!(step, Step::Login, "{case}"),
            Some(u) if request.require_phishing_resistant && !u.phishing_resistant && u.passkey => {
                let expected = match request.prompt.none {
                    true => Step::Refuse(ErrorCode::InteractionRequired),
                    false => Step::SecondFactor,
                };
                assert_eq!(step, expected, "{case}")
            }
            Some(u) if request.require_phishing_resistant && !u.phishing_resistant => assert_eq!(
                step,
                Step::Refuse(ErrorCode::UnmetAuthenticationRequirements),
                "{case}"
            ),
            Some(u) if request.require_mfa && !u.mfa && !u.enrolled => assert_eq!(
                step,
                Step::Refuse(ErrorCode::UnmetAuthenticationRequirements),
                "{case}"
            ),
            Some(u) if !u.mfa && u.enrolled && (u.fresh || request.require_mfa) => {
                let expected = match request.prompt.none {
                    true => Step::Refuse(ErrorCode::InteractionRequired),
                    false => Step::SecondFactor,
                };
                assert_eq!(step, expected, "{case}")
            }
            Some(u) if u.email_unverified => {
                let expected = match request.prompt.none {
                    true => Step::Refuse(ErrorCode::InteractionRequired),
                    false => Step::VerifyEmail,
                };
                assert_eq!(step, expected, "{case}")
            }
            Some(u) if u.consent_needed => {
                let expected = match request.prompt.none {
                    true => Step::Refuse(ErrorCode::ConsentRequired),
                    false => Step::Consent,
                };
                assert_eq!(step, expected, "{case}")
            }
            Some(_) => assert_eq!(step, Step::IssueCode, "{case}"),
        }
    }

    #[test]
    fn a_session_serves_only_what_the_request_allows() {
        let plain = request(Prompt::default(), None, false);
        assert!(session_counts(&plain, "u", 0, 1_000_000));
        let login = request(
            Prompt {
                login: true,
                ..Prompt::default()
            },
            None,
            false,
        );
        assert!(!session_counts(&login, "u", 999, 1_000));
        let recent = request(Prompt::default(), Some(60), false);
        assert!(session_counts(&recent, "u", 940, 1_000));
        assert!(!session_counts(&recent, "u", 939, 1_000));
        let hinted = AuthorizationRequest {
            hinted_user: Some("u".into()),
            ..plain
        };
        assert!(session_counts(&hinted, "u", 0, 1));
        assert!(!session_counts(&hinted, "v", 0, 1));
    }

    #[test]
    fn the_account_page_needs_no_consent_no_client_and_no_verified_address() {
        let password = UserFacts {
            mfa: false,
            phishing_resistant: false,
            fresh: true,
            enrolled: false,
            passkey: false,
            consent_needed: true,
            email_unverified: true,
        };
        assert_eq!(next_step(None, Some(password)), Step::AccountPage);
        let enrolled = UserFacts {
            enrolled: true,
            ..password
        };
        assert_eq!(next_step(None, Some(enrolled)), Step::SecondFactor);
        assert_eq!(next_step(None, None), Step::Login);
        assert!(enrollment_matters(None, false, true));
        assert!(!enrollment_matters(None, true, true));
    }
}
