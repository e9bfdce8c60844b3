//! Groups and their members: the SCIM `Group` resource (RFC 7643 §4.2).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::filter::{self, common_location, relation, Column, Location, Resource};
use super::{Data, MemoryStore};
use crate::store::query::{Attr, ListQuery, Page};
use crate::store::*;

/// A group as a SCIM listing reads it, with its members.
struct GroupView<'a> {
    group: &'a Group,
    data: &'a Data,
}

impl Resource for GroupView<'_> {
    fn locate(attr: &Attr) -> Option<Location> {
        match (attr.schema, attr.name, attr.sub) {
            (None, "id", None) => Some(Location::Column(Column::Id)),
            (None, "displayName", None) => Some(Location::Name),
            (None, "members", sub) => relation(sub),
            _ => common_location(attr),
        }
    }

    fn id(&self) -> &str {
        &self.group.id
    }

    fn name(&self) -> &str {
        &self.group.display_name
    }

    fn fold(name: &str) -> String {
        name.to_lowercase()
    }

    fn column(&self, column: Column) -> Value {
        match column {
            Column::Id => self.group.id.as_str().into(),
            // Groups have no `active`; `locate` never names it.
            Column::Active => Value::Null,
            Column::Created => self.group.created_at.into(),
            Column::Modified => self.group.updated_at.into(),
        }
    }

    fn attributes(&self) -> &Attributes {
        &self.group.attributes
    }

    fn related(&self) -> Vec<Value> {
        self.data
            .members_of(&self.group.id)
            .into_iter()
            .map(|m| json!({"value": m.user_id, "display": m.display}))
            .collect()
    }
}

fn member_ids(group: &Group) -> BTreeSet<String> {
    group.members.iter().map(|m| m.user_id.clone()).collect()
}

impl Data {
    /// The members of a group, in display order (byte order, then user id).
    fn members_of(&self, group_id: &str) -> Vec<Member> {
        let mut members: Vec<Member> = self
            .members
            .iter()
            .filter(|(group, _)| group == group_id)
            .filter_map(|(_, user_id)| {
                Some(Member {
                    user_id: user_id.clone(),
                    display: self.users.get(user_id)?.display_name().to_string(),
                })
            })
            .collect();
        members.sort_by(|a, b| (&a.display, &a.user_id).cmp(&(&b.display, &b.user_id)));
        members
    }

    /// The ids of a group's members.
    fn member_ids_of(&self, group_id: &str) -> BTreeSet<String> {
        let rows = self.members.iter().filter(|(group, _)| group == group_id);
        rows.map(|(_, user)| user.clone()).collect()
    }

    /// A stored group with its members filled in.
    fn with_members(&self, group: &Group) -> Group {
        Group {
            members: self.members_of(&group.id),
            ..group.clone()
        }
    }

    /// Fails with the first member (in id order) who is no user.
    fn check_members(&self, wanted: &BTreeSet<String>) -> StoreResult<()> {
        match wanted.iter().find(|id| !self.users.contains_key(*id)) {
            Some(missing) => Err(StoreError::MissingReference(format!("user {missing}"))),
            None => Ok(()),
        }
    }

    /// Makes the group's members exactly `wanted` (checked by [`Data::check_members`]), and gives
    /// every user who joined or left a new version: their `groups` attribute changed.
    fn set_members(&mut self, group_id: &str, wanted: &BTreeSet<String>, now: UnixTime) {
        let current = self.member_ids_of(group_id);
        self.members.retain(|(group, _)| group != group_id);
        let rows = wanted
            .iter()
            .map(|user| (group_id.to_string(), user.clone()));
        self.members.extend(rows);
        for user_id in current.symmetric_difference(wanted) {
            self.touch_user(user_id, now);
        }
    }

    fn touch_user(&mut self, user_id: &str, now: UnixTime) {
        if let Some(user) = self.users.get_mut(user_id) {
            user.version += 1;
            user.updated_at = now;
        }
    }
}

#[async_trait::async_trait]
impl GroupStore for MemoryStore {
    async fn insert_group(&self, group: &Group) -> StoreResult<()> {
        let mut data = self.data()?;
        let normalized = group.display_name.to_lowercase();
        if data.groups.contains_key(&group.id) || data.group_names.contains_key(&normalized) {
            return Err(StoreError::Conflict(format!(
                "group {}",
                group.display_name
            )));
        }
        let wanted = member_ids(group);
        data.check_members(&wanted)?;
        let stored = Group {
            members: Vec::new(),
            ..group.clone()
        };
        data.group_names.insert(normalized, group.id.clone());
        data.groups.insert(group.id.clone(), stored);
        data.set_members(&group.id, &wanted, group.created_at);
        data.record_event(events::group_created(group));
        Ok(())
    }

    async fn group(&self, id: &str) -> StoreResult<Option<Group>> {
        let data = self.data()?;
        Ok(data.groups.get(id).map(|group| data.with_members(group)))
    }

    async fn update_group(
        &self,
        group: &Group,
        expected_version: i64,
        now: UnixTime,
    ) -> StoreResult<Update> {
        let mut data = self.data()?;
        let Some(stored) = data.groups.get(&group.id) else {
            return Ok(Update::NotFound);
        };
        if stored.version != expected_version {
            return Ok(Update::Stale);
        }
        let normalized = group.display_name.to_lowercase();
        if data
            .group_names
            .get(&normalized)
            .is_some_and(|id| *id != group.id)
        {
            return Err(StoreError::Conflict(format!(
                "group {}",
                group.display_name
            )));
        }
        let wanted = member_ids(group);
        data.check_members(&wanted)?;
        let renamed = stored.display_name != group.display_name;
        let old_name = stored.display_name.to_lowercase();
        // The creation time is the stored one; everything else is the caller's.
        let updated = Group {
            members: Vec::new(),
            created_at: stored.created_at,
            ..group.clone()
        };
        data.group_names.remove(&old_name);
        data.group_names.insert(normalized, group.id.clone());
        data.groups.insert(group.id.clone(), updated);
        if renamed {
            // Every member shows the group's name in its `groups` attribute. This touches the
            // members from before the update; `set_members` then touches who joined or left.
            for user_id in data.member_ids_of(&group.id) {
                data.touch_user(&user_id, now);
            }
        }
        data.set_members(&group.id, &wanted, now);
        data.record_event(events::group_updated(group, now));
        Ok(Update::Done)
    }

    async fn delete_group(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
        let mut data = self.data()?;
        data.set_members(id, &BTreeSet::new(), now);
        let Some(group) = data.groups.remove(id) else {
            return Ok(false);
        };
        data.group_names.remove(&group.display_name.to_lowercase());
        data.record_event(events::group_deleted(id, now));
        Ok(true)
    }

    async fn list_groups(&self, query: &ListQuery, members: bool) -> StoreResult<Page<Group>> {
        let guard = self.data()?;
        let data = &*guard;
        let views = data.groups.values().map(|group| GroupView { group, data });
        let page = filter::list(views, query)?;
        let items = page.items.into_iter().map(|view| {
            if members {
                data.with_members(view.group)
            } else {
                view.group.clone()
            }
        });
        Ok(Page {
            total: page.total,
            items: items.collect(),
        })
    }
}
