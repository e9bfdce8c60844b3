//! Users: the OIDC subject and the SCIM `User` resource (RFC 7643 §4.1).

use std::collections::HashSet;

use serde_json::{json, Value};

use super::filter::{self, common_location, relation, Column, Location, Resource};
use super::{Data, MemoryStore};
use crate::store::query::{Attr, ListQuery, Page};
use crate::store::*;
use crate::username;

/// A user as a SCIM listing reads it, with its groups.
struct UserView<'a> {
    user: &'a User,
    data: &'a Data,
}

impl Resource for UserView<'_> {
    fn locate(attr: &Attr) -> Option<Location> {
        match (attr.schema, attr.name, attr.sub) {
            (None, "id", None) => Some(Location::Column(Column::Id)),
            (None, "userName", None) => Some(Location::Name),
            (None, "active", None) => Some(Location::Column(Column::Active)),
            (None, "groups", sub) => relation(sub),
            _ => common_location(attr),
        }
    }

    fn id(&self) -> &str {
        &self.user.id
    }

    fn name(&self) -> &str {
        &self.user.username
    }

    fn fold(name: &str) -> String {
        username::key(name)
    }

    fn column(&self, column: Column) -> Value {
        match column {
            Column::Id => self.user.id.as_str().into(),
            Column::Active => self.user.active.into(),
            Column::Created => self.user.created_at.into(),
            Column::Modified => self.user.updated_at.into(),
        }
    }

    fn attributes(&self) -> &Attributes {
        &self.user.attributes
    }

    fn related(&self) -> Vec<Value> {
        self.data
            .groups_of(&self.user.id)
            .map(|group| json!({"value": group.id, "display": group.display_name}))
            .collect()
    }
}

impl Data {
    /// The groups `user_id` belongs to.
    fn groups_of<'a>(&'a self, user_id: &'a str) -> impl Iterator<Item = &'a Group> + 'a {
        self.members
            .iter()
            .filter(move |(_, user)| user == user_id)
            .filter_map(|(group, _)| self.groups.get(group))
    }

    /// The groups of `user_id` show it as a member: a change there is a change of theirs.
    fn touch_groups_of(&mut self, user_id: &str, now: UnixTime) {
        for (group_id, user) in &self.members {
            if user == user_id {
                if let Some(group) = self.groups.get_mut(group_id) {
                    group.version += 1;
                    group.updated_at = now;
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl UserStore for MemoryStore {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let mut data = self.data()?;
        let normalized = username::key(&user.username);
        if data.users.contains_key(&user.id) || data.usernames.contains_key(&normalized) {
            return Err(StoreError::Conflict(format!("user {}", user.username)));
        }
        data.usernames.insert(normalized, user.id.clone());
        data.users.insert(user.id.clone(), user.clone());
        data.record_event(events::user_created(user));
        Ok(())
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        Ok(self.data()?.users.get(id).cloned())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let data = self.data()?;
        let id = data.usernames.get(&username::key(username));
        Ok(id.and_then(|id| data.users.get(id)).cloned())
    }

    async fn update_user(
        &self,
        user: &User,
        expected_version: i64,
        now: UnixTime,
    ) -> StoreResult<Update> {
        let mut data = self.data()?;
        let Some(stored) = data.users.get(&user.id) else {
            return Ok(Update::NotFound);
        };
        if stored.version != expected_version {
            return Ok(Update::Stale);
        }
        let normalized = username::key(&user.username);
        if data
            .usernames
            .get(&normalized)
            .is_some_and(|id| *id != user.id)
        {
            return Err(StoreError::Conflict(format!("user {}", user.username)));
        }
        let display_changed = stored.display_name() != user.display_name();
        let old_name = username::key(&stored.username);
        // The creation time is the stored one; everything else is the caller's.
        let updated = User {
            created_at: stored.created_at,
            ..user.clone()
        };
        data.usernames.remove(&old_name);
        data.usernames.insert(normalized, user.id.clone());
        data.users.insert(user.id.clone(), updated);
        if display_changed {
            data.touch_groups_of(&user.id, now);
        }
        if !user.active {
            data.end_access(&user.id);
        }
        data.record_event(events::user_updated(user, now));
        Ok(Update::Done)
    }

    async fn delete_user(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
        let mut data = self.data()?;
        data.end_access(id);
        data.touch_groups_of(id, now);
        // What the SQL schema deletes with the user (ON DELETE CASCADE).
        data.members.retain(|(_, user)| user != id);
        data.consents.retain(|(user, _), _| user != id);
        data.totp.remove(id);
        data.recovery_codes.retain(|(user, _)| user != id);
        let Some(user) = data.users.remove(id) else {
            return Ok(false);
        };
        data.usernames.remove(&username::key(&user.username));
        data.record_event(events::user_deleted(id, now));
        Ok(true)
    }

    async fn list_users(&self, query: &ListQuery) -> StoreResult<Page<User>> {
        let guard = self.data()?;
        let data = &*guard;
        let views = data.users.values().map(|user| UserView { user, data });
        let page = filter::list(views, query)?;
        Ok(Page {
            total: page.total,
            items: page.items.into_iter().map(|v| v.user.clone()).collect(),
        })
    }

    async fn memberships(&self, user_ids: &[String]) -> StoreResult<Vec<GroupRef>> {
        let data = self.data()?;
        let wanted: HashSet<&String> = user_ids.iter().collect();
        let mut refs: Vec<GroupRef> = data
            .members
            .iter()
            .filter(|(_, user)| wanted.contains(user))
            .filter_map(|(group_id, user_id)| {
                Some(GroupRef {
                    user_id: user_id.clone(),
                    group_id: group_id.clone(),
                    display_name: data.groups.get(group_id)?.display_name.clone(),
                })
            })
            .collect();
        refs.sort_by(|a, b| (&a.display_name, &a.group_id).cmp(&(&b.display_name, &b.group_id)));
        Ok(refs)
    }
}
