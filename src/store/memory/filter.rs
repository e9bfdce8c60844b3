//! Evaluates a resolved SCIM filter (RFC 7644 §3.4.2.2), sort order (§3.4.2.3) and page
//! (§3.4.2.4) over resources held in memory, with the meaning the SQL backend gives them (see
//! `sql/filter.rs`), so one listing returns the same page from either backend:
//!
//! - a missing (or null) attribute makes a comparison false, and `not` turns it true;
//! - `ne` is the negation of `eq`, so it holds for a missing attribute;
//! - a multi-valued attribute matches when one of its elements does;
//! - strings that are not `caseExact` compare with ASCII letters folded, as SQL's `lower()` does
//!   in SQLite and in PostgreSQL's C locale; only the unique names (`userName`, a group's
//!   `displayName`) fold all of Unicode, like their uniqueness check.
//!
//! A filter is first located against the resource type ([`Resource::locate`]), independently of
//! the data, so an attribute the backend cannot query fails even when nothing would be listed.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

use crate::store::query::{Attr, AttrKind, CompValue, CompareOp, Filter, ListQuery, Page, Sort};
use crate::store::{Attributes, StoreError, StoreResult};

/// What a listing reads from one resource (a user or a group, with its memberships).
pub(super) trait Resource {
    /// Where this resource type keeps `attr`; `None` if it cannot be queried.
    fn locate(attr: &Attr) -> Option<Location>;
    fn id(&self) -> &str;
    /// The name that is unique once folded (`userName`, a group's `displayName`).
    fn name(&self) -> &str;
    /// How names are folded for that uniqueness, and filter values compared with them.
    fn fold(name: &str) -> String;
    fn column(&self, column: Column) -> Value;
    fn attributes(&self) -> &Attributes;
    /// The membership relation (a user's `groups`, a group's `members`) as elements with a
    /// `value` and a `display`.
    fn related(&self) -> Vec<Value>;
}

/// Values a resource keeps outside its attributes object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Column {
    Id,
    Active,
    /// `meta.created`, Unix seconds.
    Created,
    /// `meta.lastModified`, Unix seconds.
    Modified,
}

/// Where a resource keeps one attribute.
#[derive(Debug, Clone)]
pub(super) enum Location {
    Column(Column),
    /// The unique name, lower-cased by Rust and compared with the lower-cased value exactly: a
    /// lookup then agrees with the uniqueness check (as the SQL backend's normalized column does).
    Name,
    /// The value at these keys of the attributes object.
    Json(Vec<&'static str>),
    /// Every element of a list; `sub` is what a comparison reads in an element (`None`: the
    /// element itself).
    Elements {
        list: List,
        sub: Option<&'static str>,
    },
    /// Inside a value path: the sub-attribute of the element under test.
    Sub(Option<&'static str>),
}

#[derive(Debug, Clone)]
pub(super) enum List {
    /// The array at these keys of the attributes object.
    Json(Vec<&'static str>),
    /// The membership relation ([`Resource::related`]).
    Relation,
}

/// Where every resource keeps `meta` timestamps and everything in its attributes object.
pub(super) fn common_location(attr: &Attr) -> Option<Location> {
    let keys = |sub| {
        attr.schema
            .into_iter()
            .chain([attr.name])
            .chain(sub)
            .collect()
    };
    match (attr.schema, attr.name, attr.sub) {
        (None, "meta", Some("created")) => Some(Location::Column(Column::Created)),
        (None, "meta", Some("lastModified")) => Some(Location::Column(Column::Modified)),
        (None, "meta", _) => None,
        _ if attr.multi_valued => Some(Location::Elements {
            list: List::Json(keys(None)),
            sub: attr.sub,
        }),
        _ => Some(Location::Json(keys(attr.sub))),
    }
}

/// Where a resource keeps its membership relation, read through sub-attribute `sub`.
pub(super) fn relation(sub: Option<&str>) -> Option<Location> {
    Some(Location::Elements {
        list: List::Relation,
        sub: Some(relation_field(sub)?),
    })
}

/// A relation element has a `value` (also what the bare attribute means) and a `display`.
fn relation_field(sub: Option<&str>) -> Option<&'static str> {
    match sub {
        None | Some("value") => Some("value"),
        Some("display") => Some("display"),
        _ => None,
    }
}

/// An attribute with its location.
#[derive(Debug, Clone)]
pub(super) struct Located {
    attr: Attr,
    at: Location,
}

/// Filters, sorts and pages `resources` as `query` asks; `total` counts every match.
pub(super) fn list<R: Resource>(
    resources: impl IntoIterator<Item = R>,
    query: &ListQuery,
) -> StoreResult<Page<R>> {
    let unqueryable = || StoreError::Unsupported("that attribute cannot be queried".into());
    let filter = match &query.filter {
        Some(filter) => Some(locate::<R>(filter).ok_or_else(unqueryable)?),
        None => None,
    };
    let sort = match &query.sort {
        Some(sort) => Some(locate_sort::<R>(sort).ok_or_else(unqueryable)?),
        None => None,
    };
    let mut matching: Vec<(Option<Key>, R)> = resources
        .into_iter()
        .filter(|r| filter.as_ref().is_none_or(|f| holds(f, r)))
        .map(|r| (sort.as_ref().and_then(|(at, s)| sort_key(at, s, &r)), r))
        .collect();
    let total = matching.len() as u64;
    let descending = sort.as_ref().is_some_and(|(_, s)| s.descending);
    matching.sort_by(|(a, ra), (b, rb)| {
        let by_value = match (a, b) {
            (Some(a), Some(b)) if descending => b.cmp(a),
            (Some(a), Some(b)) => a.cmp(b),
            // Missing values come last in either direction.
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_value.then_with(|| ra.id().cmp(rb.id()))
    });
    let skip = usize::try_from(query.start_index.saturating_sub(1)).unwrap_or(usize::MAX);
    let take = usize::try_from(query.count).unwrap_or(usize::MAX);
    let items = matching.into_iter().skip(skip).take(take).map(|(_, r)| r);
    Ok(Page {
        total,
        items: items.collect(),
    })
}

/// Locates every attribute of `filter`; `None` if one cannot be queried.
fn locate<R: Resource>(filter: &Filter<Attr>) -> Option<Filter<Located>> {
    map_leaves(filter, &|leaf| match leaf {
        Filter::Compare { attr, op, value } => {
            let at = R::locate(attr)?;
            Some(match at {
                Location::Name => folded(attr, *op, value, R::fold),
                at => Filter::Compare {
                    attr: Located { attr: *attr, at },
                    op: *op,
                    value: value.clone(),
                },
            })
        }
        Filter::Present(attr) => Some(Filter::Present(Located {
            attr: *attr,
            at: R::locate(attr)?,
        })),
        Filter::ValuePath { attr, filter } => {
            let at = R::locate(attr)?;
            let Location::Elements { list, .. } = &at else {
                return None;
            };
            let inner = locate_in_element(filter, list)?;
            Some(Filter::ValuePath {
                attr: Located { attr: *attr, at },
                filter: Box::new(inner),
            })
        }
        _ => None,
    })
}

/// The inner filter of a value path, whose attributes are sub-attributes of one element.
fn locate_in_element(filter: &Filter<Attr>, list: &List) -> Option<Filter<Located>> {
    let sub = |attr: &Attr| match list {
        List::Json(_) => Some(Location::Sub(attr.sub)),
        List::Relation => Some(Location::Sub(Some(relation_field(attr.sub)?))),
    };
    map_leaves(filter, &|leaf| match leaf {
        Filter::Compare { attr, op, value } => Some(Filter::Compare {
            attr: Located {
                attr: *attr,
                at: sub(attr)?,
            },
            op: *op,
            value: value.clone(),
        }),
        Filter::Present(attr) => Some(Filter::Present(Located {
            attr: *attr,
            at: sub(attr)?,
        })),
        // Value paths do not nest (RFC 7644 §3.4.2.2 `valFilter`); the parser refuses them.
        _ => None,
    })
}

/// Rebuilds `and`, `or` and `not` around the leaves `leaf` maps.
fn map_leaves<A, B>(
    filter: &Filter<A>,
    leaf: &dyn Fn(&Filter<A>) -> Option<Filter<B>>,
) -> Option<Filter<B>> {
    let boxed = |f: &Filter<A>| map_leaves(f, leaf).map(Box::new);
    Some(match filter {
        Filter::And(a, b) => Filter::And(boxed(a)?, boxed(b)?),
        Filter::Or(a, b) => Filter::Or(boxed(a)?, boxed(b)?),
        Filter::Not(inner) => Filter::Not(boxed(inner)?),
        other => leaf(other)?,
    })
}

/// A comparison with the unique name: the value folded here, compared exactly.
fn folded(
    attr: &Attr,
    op: CompareOp,
    value: &CompValue,
    fold: fn(&str) -> String,
) -> Filter<Located> {
    let value = match value {
        CompValue::String(text) => CompValue::String(fold(text)),
        other => other.clone(),
    };
    Filter::Compare {
        attr: Located {
            attr: Attr {
                case_exact: true,
                ..*attr
            },
            at: Location::Name,
        },
        op,
        value,
    }
}

/// `and`, `or` and `not` over the leaves `leaf` decides.
fn evaluate(filter: &Filter<Located>, leaf: &dyn Fn(&Filter<Located>) -> bool) -> bool {
    match filter {
        Filter::And(a, b) => evaluate(a, leaf) && evaluate(b, leaf),
        Filter::Or(a, b) => evaluate(a, leaf) || evaluate(b, leaf),
        Filter::Not(inner) => !evaluate(inner, leaf),
        other => leaf(other),
    }
}

/// Whether `resource` matches a located filter.
fn holds<R: Resource>(filter: &Filter<Located>, resource: &R) -> bool {
    evaluate(filter, &|leaf| match leaf {
        Filter::Compare { attr, .. } | Filter::Present(attr) => match &attr.at {
            Location::Elements { list, sub } => elements(resource, list)
                .iter()
                .any(|element| test(leaf, field(element, *sub))),
            at => test(leaf, &scalar(resource, at)),
        },
        Filter::ValuePath { attr, filter } => match &attr.at {
            Location::Elements { list, .. } => elements(resource, list)
                .iter()
                .any(|element| holds_for_element(filter, element)),
            _ => false,
        },
        _ => false,
    })
}

fn holds_for_element(filter: &Filter<Located>, element: &Value) -> bool {
    evaluate(filter, &|leaf| match leaf {
        Filter::Compare { attr, .. } | Filter::Present(attr) => match attr.at {
            Location::Sub(sub) => test(leaf, field(element, sub)),
            _ => false,
        },
        _ => false,
    })
}

static NULL: Value = Value::Null;

/// A single-valued attribute; missing reads as null.
fn scalar<'r, R: Resource>(resource: &'r R, at: &Location) -> Cow<'r, Value> {
    match at {
        Location::Column(column) => Cow::Owned(resource.column(*column)),
        Location::Name => Cow::Owned(Value::String(R::fold(resource.name()))),
        Location::Json(keys) => Cow::Borrowed(json(resource.attributes(), keys)),
        Location::Elements { .. } | Location::Sub(_) => Cow::Owned(Value::Null),
    }
}

/// The value at `keys` of an attributes object; missing reads as null.
fn json<'a>(attributes: &'a Attributes, keys: &[&str]) -> &'a Value {
    let Some((first, rest)) = keys.split_first() else {
        return &NULL;
    };
    rest.iter()
        .fold(attributes.get(*first), |value, key| value?.get(*key))
        .unwrap_or(&NULL)
}

/// The elements of a list: an array's values, the one value of a non-array.
fn elements<'r, R: Resource>(resource: &'r R, list: &List) -> Cow<'r, [Value]> {
    match list {
        List::Relation => Cow::Owned(resource.related()),
        List::Json(keys) => match json(resource.attributes(), keys) {
            Value::Array(values) => Cow::Borrowed(values),
            Value::Null => Cow::Borrowed(&[]),
            other => Cow::Owned(vec![other.clone()]),
        },
    }
}

/// The sub-attribute of an element (or the element itself); missing reads as null.
fn field<'v>(element: &'v Value, sub: Option<&str>) -> &'v Value {
    match sub {
        Some(sub) => element.get(sub).unwrap_or(&NULL),
        None => element,
    }
}

/// A comparison or presence test of `actual`, the value of the attribute `leaf` names.
fn test(leaf: &Filter<Located>, actual: &Value) -> bool {
    match leaf {
        Filter::Compare { attr, op, value } => compare(&attr.attr, *op, value, actual),
        Filter::Present(_) => is_present(actual),
        _ => false,
    }
}

/// §3.4.2.2 `pr`: a non-empty value. Like the SQL backend, which tests the value's text, this
/// also reads the strings "{}" and "[]" as empty.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !matches!(text.as_str(), "" | "{}" | "[]"),
        Value::Array(values) => !values.is_empty(),
        Value::Object(object) => !object.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(attr: &Attr, op: CompareOp, expected: &CompValue, actual: &Value) -> bool {
    match expected {
        // `eq null` holds for a missing value, `ne null` for any value.
        CompValue::Null => (op == CompareOp::Ne) != actual.is_null(),
        CompValue::Bool(b) => ordered(op, actual.as_bool().map(|a| a.cmp(b))),
        CompValue::Number(n) => ordered(
            op,
            match actual {
                Value::Number(a) => Some(compare_numbers(a, n)),
                _ => None,
            },
        ),
        CompValue::String(text) => compare_text(attr.case_exact, op, text, actual),
    }
}

/// String comparison, ASCII-folded to lower case unless the attribute is `caseExact`
/// (RFC 7643 §2.2).
fn compare_text(case_exact: bool, op: CompareOp, expected: &str, actual: &Value) -> bool {
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    if substring && expected.is_empty() {
        // Every string contains, starts and ends with the empty string.
        return !actual.is_null();
    }
    let Some(actual) = actual.as_str() else {
        return ordered(op, None);
    };
    let fold = |text: &str| {
        if case_exact {
            text.to_string()
        } else {
            text.to_ascii_lowercase()
        }
    };
    let (actual, expected) = (fold(actual), fold(expected));
    match op {
        CompareOp::Co => actual.contains(&expected),
        CompareOp::Sw => actual.starts_with(&expected),
        CompareOp::Ew => actual.ends_with(&expected),
        _ => ordered(op, Some(actual.cmp(&expected))),
    }
}

/// Whether `ordering` (of the actual value against the expected one, `None` when they cannot be
/// compared) satisfies `op`. `ne` is the negation of `eq`.
fn ordered(op: CompareOp, ordering: Option<Ordering>) -> bool {
    let Some(ordering) = ordering else {
        return op == CompareOp::Ne;
    };
    match op {
        CompareOp::Ne => ordering.is_ne(),
        CompareOp::Gt => ordering.is_gt(),
        CompareOp::Ge => ordering.is_ge(),
        CompareOp::Lt => ordering.is_lt(),
        CompareOp::Le => ordering.is_le(),
        // co/sw/ew are string operators; the SCIM layer refuses them for other types, and the SQL
        // backend reads them as eq.
        CompareOp::Eq | CompareOp::Co | CompareOp::Sw | CompareOp::Ew => ordering.is_eq(),
    }
}

/// Exactly for two integers, else as floating point.
fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    match (a.as_i64(), b.as_i64()) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => {
            let float = |n: &Number| n.as_f64().unwrap_or(f64::NAN);
            float(a).total_cmp(&float(b))
        }
    }
}

/// What a resource sorts by: numbers (booleans as 0 and 1) before text, as in SQL.
#[derive(Debug, Clone)]
enum Key {
    Number(Number),
    Text(String),
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Key::Number(a), Key::Number(b)) => compare_numbers(a, b),
            // Byte order, like SQLite's BINARY collation (and `COLLATE "C"` on PostgreSQL).
            (Key::Text(a), Key::Text(b)) => a.cmp(b),
            (Key::Number(_), Key::Text(_)) => Ordering::Less,
            (Key::Text(_), Key::Number(_)) => Ordering::Greater,
        }
    }
}

fn locate_sort<R: Resource>(sort: &Sort) -> Option<(Location, Sort)> {
    let at = match R::locate(&sort.attr)? {
        // A list sorts by a sub-attribute of one element: `value` unless one is named.
        Location::Elements { list, sub } => Location::Elements {
            list,
            sub: sub.or(Some("value")),
        },
        at => at,
    };
    Some((at, *sort))
}

/// The value `resource` sorts by; `None` when it has none.
fn sort_key<R: Resource>(at: &Location, sort: &Sort, resource: &R) -> Option<Key> {
    let value = match at {
        Location::Elements {
            list: list @ List::Json(_),
            sub,
        } => {
            let list = elements(resource, list);
            // RFC 7643 §2.4: the primary value stands for the list, else the first one does.
            let chosen = list
                .iter()
                .find(|e| e.get("primary") == Some(&Value::Bool(true)))
                .or_else(|| list.first());
            chosen.map(|e| field(e, *sub).clone()).unwrap_or_default()
        }
        // Relations have no primary: the least value (byte order, before any folding).
        Location::Elements {
            list: List::Relation,
            sub,
        } => resource
            .related()
            .iter()
            .filter_map(|e| field(e, *sub).as_str())
            .min()
            .map_or(Value::Null, Value::from),
        at => scalar(resource, at).into_owned(),
    };
    let fold =
        matches!(sort.attr.kind, AttrKind::String | AttrKind::Reference) && !sort.attr.case_exact;
    let text = match value {
        Value::Null => return None,
        Value::Bool(b) => return Some(Key::Number(u8::from(b).into())),
        Value::Number(n) => return Some(Key::Number(n)),
        Value::String(text) => text,
        other => other.to_string(),
    };
    Some(Key::Text(if fold {
        text.to_ascii_lowercase()
    } else {
        text
    }))
}
