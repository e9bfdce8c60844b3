//! Audit events, written by the store in the same transaction as the change they report (the
//! transactional outbox): a change and its event are stored together or not at all, and the
//! webhook dispatcher ([`crate::events`]) delivers them later, also after a restart.

use serde_json::{json, Value};

use super::{Group, UnixTime, User, UserOrigin};

/// An event as the store writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// A UUID: what receivers deduplicate redeliveries by.
    pub id: String,
    pub kind: EventKind,
    pub data: Value,
    pub occurred_at: UnixTime,
}

/// What happened: the `type` of the webhook body and its `Tessera-Event-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    UserCreated,
    UserUpdated,
    UserDeleted,
    /// A session ended by its user (logout, or signed out from the account page).
    UserLoggedOut,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    /// A rotated refresh token came back: its family is revoked.
    TokenReuseDetected,
    MfaEnrolled,
    /// A second factor locked after too many wrong codes in a row.
    MfaLocked,
    /// A password set through a mailed recovery link.
    UserPasswordReset,
    /// A passkey answered with a signature counter that did not move forward: the
    /// authenticator may have been cloned (WebAuthn §6.1.1). The sign-in was refused.
    PasskeyCounterRegressed,
    /// A message for the SMTP server ([`crate::mail`]), not an audit event.
    Mail,
}

/// Where an event goes out: audit events to the webhooks, messages to the mail server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Webhooks,
    Mail,
}

impl EventKind {
    pub const ALL: [EventKind; 13] = [
        EventKind::UserCreated,
        EventKind::UserUpdated,
        EventKind::UserDeleted,
        EventKind::UserLoggedOut,
        EventKind::GroupCreated,
        EventKind::GroupUpdated,
        EventKind::GroupDeleted,
        EventKind::TokenReuseDetected,
        EventKind::MfaEnrolled,
        EventKind::MfaLocked,
        EventKind::UserPasswordReset,
        EventKind::PasskeyCounterRegressed,
        EventKind::Mail,
    ];

    /// The name receivers see, and the store keeps.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::UserCreated => "user.created",
            EventKind::UserUpdated => "user.updated",
            EventKind::UserDeleted => "user.deleted",
            EventKind::UserLoggedOut => "user.logged_out",
            EventKind::GroupCreated => "group.created",
            EventKind::GroupUpdated => "group.updated",
            EventKind::GroupDeleted => "group.deleted",
            EventKind::TokenReuseDetected => "token.reuse_detected",
            EventKind::MfaEnrolled => "mfa.enrolled",
            EventKind::MfaLocked => "mfa.locked",
            EventKind::UserPasswordReset => "user.password_reset",
            EventKind::PasskeyCounterRegressed => "passkey.counter_regressed",
            EventKind::Mail => "mail",
        }
    }

    pub fn channel(self) -> Channel {
        match self {
            EventKind::Mail => Channel::Mail,
            _ => Channel::Webhooks,
        }
    }

    /// The kind a stored name reads back as, if it is one.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl NewEvent {
    fn new(kind: EventKind, data: Value, occurred_at: UnixTime) -> Self {
        NewEvent {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            data,
            occurred_at,
        }
    }

    /// The JSON body a webhook receives.
    pub fn body(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind.name(),
            "time": self.occurred_at,
            "data": self.data,
        })
    }
}

/// A stored event with its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub event: NewEvent,
    /// Delivery attempts made so far.
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// An event as the stores keep it: its kind by name and its data as JSON text.
pub struct StoredEvent {
    pub id: String,
    pub kind: String,
    pub data: String,
    pub occurred_at: UnixTime,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl TryFrom<StoredEvent> for OutboxEvent {
    type Error = crate::store::StoreError;

    fn try_from(stored: StoredEvent) -> Result<Self, Self::Error> {
        let corrupt =
            |what: &str| crate::store::StoreError::Backend(format!("outbox {what}").into());
        Ok(OutboxEvent {
            event: NewEvent {
                id: stored.id,
                kind: EventKind::named(&stored.kind).ok_or_else(|| corrupt("event type"))?,
                data: serde_json::from_str(&stored.data).map_err(|_| corrupt("event data"))?,
                occurred_at: stored.occurred_at,
            },
            attempts: stored.attempts,
            last_error: stored.last_error,
        })
    }
}

fn user_data(user: &User) -> Value {
    json!({"id": user.id, "userName": user.username, "active": user.active})
}

pub fn user_created(user: &User, origin: UserOrigin) -> NewEvent {
    let mut data = user_data(user);
    data["origin"] = serde_json::to_value(origin).expect("a unit variant serializes");
    NewEvent::new(EventKind::UserCreated, data, user.created_at)
}

pub fn user_updated(user: &User, now: UnixTime) -> NewEvent {
    NewEvent::new(EventKind::UserUpdated, user_data(user), now)
}

pub fn user_deleted(user_id: &str, now: UnixTime) -> NewEvent {
    NewEvent::new(EventKind::UserDeleted, json!({"id": user_id}), now)
}

pub fn user_logged_out(user_id: &str, sid: &str, now: UnixTime) -> NewEvent {
    NewEvent::new(
        EventKind::UserLoggedOut,
        json!({"id": user_id, "sid": sid}),
        now,
    )
}

fn group_data(group: &Group) -> Value {
    let members: Vec<&str> = group.members.iter().map(|m| m.user_id.as_str()).collect();
    json!({"id": group.id, "displayName": group.display_name, "members": members})
}

pub fn group_created(group: &Group) -> NewEvent {
    NewEvent::new(EventKind::GroupCreated, group_data(group), group.created_at)
}

pub fn group_updated(group: &Group, now: UnixTime) -> NewEvent {
    NewEvent::new(EventKind::GroupUpdated, group_data(group), now)
}

pub fn group_deleted(group_id: &str, now: UnixTime) -> NewEvent {
    NewEvent::new(EventKind::GroupDeleted, json!({"id": group_id}), now)
}

pub fn reuse_detected(family_id: &str, client_id: &str, user_id: &str, now: UnixTime) -> NewEvent {
    let data = json!({"grant_id": family_id, "client_id": client_id, "user_id": user_id});
    NewEvent::new(EventKind::TokenReuseDetected, data, now)
}

pub fn mfa_enrolled(user_id: &str, now: UnixTime) -> NewEvent {
    NewEvent::new(
        EventKind::MfaEnrolled,
        json!({"user_id": user_id, "method": "totp"}),
        now,
    )
}

/// A second factor locked after too many wrong codes in a row, until an administrator resets
/// it.
pub fn passkey_counter_regressed(user_id: &str, credential_id: &str, now: UnixTime) -> NewEvent {
    NewEvent::new(
        EventKind::PasskeyCounterRegressed,
        json!({"user_id": user_id, "credential_id": credential_id}),
        now,
    )
}

pub fn mfa_locked(user_id: &str, now: UnixTime) -> NewEvent {
    NewEvent::new(
        EventKind::MfaLocked,
        json!({"user_id": user_id, "method": "totp"}),
        now,
    )
}

pub fn password_reset(user_id: &str, now: UnixTime) -> NewEvent {
    NewEvent::new(
        EventKind::UserPasswordReset,
        json!({"id": user_id, "method": "email"}),
        now,
    )
}

/// A message to `to`, whose sealed parts the mailer adds under `sealed`.
pub fn mail(to: &str, subject: &str, now: UnixTime) -> NewEvent {
    NewEvent::new(EventKind::Mail, json!({"to": to, "subject": subject}), now)
}

/// How long events are kept, whatever became of them: 30 days.
pub const EVENT_RETENTION: UnixTime = 30 * 24 * 3600;
