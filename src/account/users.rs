//! Creating users and checking their passwords.

use crate::account::password::PasswordHasher;
use crate::error::{Error, Result};
use crate::store::{Attributes, Store, StoreError, User, UserOrigin};

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// The email is known to be the user's (an invitation's link proved it).
    pub email_verified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("invalid user: {0}")]
    Invalid(String),
    #[error("user {0:?} already exists")]
    Duplicate(String),
    #[error(transparent)]
    Other(#[from] Error),
}

/// The rules every user name follows, however the user is created (CLI, seed, SCIM).
pub fn check_username(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 256 || name.trim() != name {
        return Err("username must be 1 to 256 characters without surrounding spaces");
    }
    if crate::input::has_control(name) {
        return Err("username has control characters");
    }
    if crate::username::canonical(name).is_none() {
        return Err(
            "username may hold letters, digits, ASCII punctuation and single spaces (RFC 8265)",
        );
    }
    Ok(())
}

fn validate(user: &NewUser) -> Result<(), CreateUserError> {
    check_username(&user.username).map_err(|e| CreateUserError::Invalid(e.into()))?;
    if user.password.is_empty() {
        return Err(CreateUserError::Invalid(
            "password must not be empty".into(),
        ));
    }
    Ok(())
}

/// The SCIM form (RFC 7643 §4.1) of the profile the CLI and the seed file take.
pub fn scim_attributes(new: &NewUser) -> Attributes {
    let mut attributes = Attributes::new();
    let mut name = Attributes::new();
    for (key, value) in [
        ("givenName", &new.given_name),
        ("familyName", &new.family_name),
    ] {
        if let Some(value) = value {
            name.insert(key.into(), value.clone().into());
        }
    }
    if !name.is_empty() {
        attributes.insert("name".into(), name.into());
    }
    if let Some(email) = &new.email {
        let primary = serde_json::json!([{ "value": email, "primary": true }]);
        attributes.insert("emails".into(), primary);
    }
    attributes
}

pub async fn create_user(
    store: &dyn Store,
    hasher: &PasswordHasher,
    new: NewUser,
    origin: UserOrigin,
) -> Result<User, CreateUserError> {
    validate(&new)?;
    let now = crate::clock::now();
    let attributes = scim_attributes(&new);
    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        password_hash: Some(hasher.hash(new.password).await?),
        active: true,
        verified_email: new.email.clone().filter(|_| new.email_verified),
        attributes,
        username: new.username,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    match store.insert_user(&user, origin).await {
        Ok(()) => Ok(user),
        Err(StoreError::Conflict(_)) => Err(CreateUserError::Duplicate(user.username)),
        Err(err) => Err(CreateUserError::Other(err.into())),
    }
}

/// The active user with this name and password. Unknown users, inactive users and wrong passwords
/// are indistinguishable to the caller, and cost the same time.
pub async fn authenticate(
    store: &dyn Store,
    hasher: &PasswordHasher,
    username: &str,
    password: String,
) -> Result<Option<User>> {
    let user = store.user_by_username(username).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password_ok = hasher.verify(password, hash).await?;
    Ok(user.filter(|u| password_ok && u.active))
}
