//! Listing resources: filters resolved against the schema (RFC 7644 §3.4.2.2), sorting
//! (§3.4.2.3), paging (§3.4.2.4) and the ListResponse, for `GET` and `POST /.search` (§3.4.3).

use serde::Deserialize;
use serde_json::Value;

use super::error::{ScimError, ScimResult, ScimType};
use super::filter::{parse_filter, AttrPath};
use super::representation::{parse_date_time, Projection};
use super::schema::{Mutability, Resolved, ResourceType, Returned};
use crate::store::query::{Attr, AttrKind, CompValue, CompareOp, Filter, ListQuery, Sort};

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Most resources one response carries (`filter.maxResults` in the ServiceProviderConfig).
pub const MAX_RESULTS: u64 = 1000;
/// Page size when the client names none.
const DEFAULT_COUNT: u64 = 100;

/// The query parameters of a listing, as sent in a query string or a SearchRequest body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    pub start_index: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    pub count: Option<String>,
    #[serde(default, deserialize_with = "list_or_text")]
    pub attributes: Option<String>,
    #[serde(default, deserialize_with = "list_or_text")]
    pub excluded_attributes: Option<String>,
}

/// Query strings carry numbers as text, SearchRequest bodies as JSON numbers.
fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Null) | None => None,
        Some(_) => return Err(serde::de::Error::custom("expected a number")),
    })
}

/// Query strings carry attribute lists comma-separated, SearchRequest bodies as arrays.
fn list_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .ok_or_else(|| serde::de::Error::custom("expected names"))
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
        ),
        Some(Value::Null) | None => None,
        Some(_) => return Err(serde::de::Error::custom("expected attribute names")),
    })
}

/// What a listing asks of the store, and how to shape what comes back.
pub struct Listing {
    pub query: ListQuery,
    pub projection: Projection,
}

impl ListParams {
    pub fn listing(&self, rt: &ResourceType) -> ScimResult<Listing> {
        let filter = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(resolve_filter(rt, parse_filter(text).map_err(bad_filter)?)?),
        };
        let sort = match self.sort_by.as_deref() {
            None | Some("") => None,
            Some(path) => Some(sort(rt, path, self.sort_order.as_deref())?),
        };
        // §3.4.2.4: a startIndex below 1 means 1, a negative count means 0.
        let start_index =
            parse_number(self.start_index.as_deref(), "startIndex")?.map_or(1, |n| n.max(1) as u64);
        let count = parse_number(self.count.as_deref(), "count")?
            .map_or(DEFAULT_COUNT, |n| n.max(0) as u64)
            .min(MAX_RESULTS);
        Ok(Listing {
            query: ListQuery {
                filter,
                sort,
                start_index,
                count,
            },
            projection: Projection::parse(
                rt,
                self.attributes.as_deref(),
                self.excluded_attributes.as_deref(),
            )?,
        })
    }
}

fn parse_number(text: Option<&str>, name: &str) -> ScimResult<Option<i64>> {
    text.map(|t| {
        t.trim().parse::<i64>().map_err(|_| {
            ScimError::bad_request(ScimType::InvalidValue, format!("{name} must be an integer"))
        })
    })
    .transpose()
}

fn bad_filter(err: impl std::fmt::Display) -> ScimError {
    ScimError::bad_request(ScimType::InvalidFilter, err.to_string())
}

fn sort(rt: &ResourceType, path: &str, order: Option<&str>) -> ScimResult<Sort> {
    let invalid =
        || ScimError::bad_request(ScimType::InvalidValue, format!("cannot sort by {path:?}"));
    let parsed = super::filter::parse_path(path).map_err(|_| invalid())?;
    if parsed.filter.is_some() {
        return Err(invalid());
    }
    let resolved = rt.resolve(&parsed.attr).ok_or_else(invalid)?;
    let attr = comparable(resolved).ok_or_else(invalid)?;
    let descending = match order.map(str::to_ascii_lowercase).as_deref() {
        None | Some("ascending") => false,
        Some("descending") => true,
        Some(_) => {
            return Err(ScimError::bad_request(
                ScimType::InvalidValue,
                "sortOrder must be \"ascending\" or \"descending\"",
            ))
        }
    };
    Ok(Sort { attr, descending })
}

/// The attribute a comparison on `resolved` looks at: a complex list without a sub-attribute
/// means its `value` (RFC 7644 §3.4.2.2, `emails co "…"`). Write-only attributes are never
/// compared: a filter on `password` would reveal it.
fn comparable(resolved: Resolved) -> Option<Attr> {
    if resolved.target().returned == Returned::Never
        || resolved.def.mutability == Mutability::WriteOnly
    {
        return None;
    }
    let resolved = match resolved.sub {
        None if resolved.def.kind == AttrKind::Complex => Resolved {
            sub: Some(resolved.def.sub("value")?),
            ..resolved
        },
        _ => resolved,
    };
    Some(resolved.attr())
}

/// Resolves every attribute of a parsed filter against `rt` and checks each comparison fits its
/// attribute's type (§3.4.2.2: ordering operators on booleans and binaries are errors).
pub fn resolve_filter(rt: &ResourceType, filter: Filter<AttrPath>) -> ScimResult<Filter<Attr>> {
    resolve_with(&|path| resolve_attr(rt, path), filter)
}

fn resolve_attr(rt: &ResourceType, path: &AttrPath) -> ScimResult<Resolved> {
    rt.resolve(path)
        .ok_or_else(|| bad_filter(format!("unknown attribute {:?}", display_path(path))))
}

fn display_path(path: &AttrPath) -> String {
    let mut text = String::new();
    if let Some(schema) = &path.schema {
        text.push_str(schema);
        text.push(':');
    }
    text.push_str(&path.attr);
    if let Some(sub) = &path.sub {
        text.push('.');
        text.push_str(sub);
    }
    text
}

fn resolve_with(
    resolve: &dyn Fn(&AttrPath) -> ScimResult<Resolved>,
    filter: Filter<AttrPath>,
) -> ScimResult<Filter<Attr>> {
    let boxed = |f: Box<Filter<AttrPath>>| resolve_with(resolve, *f).map(Box::new);
    Ok(match filter {
        Filter::And(a, b) => Filter::And(boxed(a)?, boxed(b)?),
        Filter::Or(a, b) => Filter::Or(boxed(a)?, boxed(b)?),
        Filter::Not(inner) => Filter::Not(boxed(inner)?),
        Filter::Present(path) => {
            let resolved = resolve(&path)?;
            Filter::Present(present_attr(resolved).ok_or_else(|| not_filterable(&path))?)
        }
        Filter::Compare { attr, op, value } => {
            let resolved = resolve(&attr)?;
            let target = comparable(resolved).ok_or_else(|| not_filterable(&attr))?;
            let value = check_comparison(&target, op, value)?;
            Filter::Compare {
                attr: target,
                op,
                value,
            }
        }
        Filter::ValuePath { attr, filter } => {
            let outer = resolve(&attr)?;
            if !outer.def.multi_valued || outer.sub.is_some() || outer.def.sub_attributes.is_empty()
            {
                return Err(bad_filter(format!(
                    "{:?} is not a multi-valued complex attribute",
                    display_path(&attr)
                )));
            }
            let inner = |path: &AttrPath| -> ScimResult<Resolved> {
                let sub = (path.schema.is_none() && path.sub.is_none())
                    .then(|| outer.def.sub(&path.attr))
                    .flatten()
                    .ok_or_else(|| {
                        bad_filter(format!(
                            "{} has no sub-attribute {:?}",
                            outer.def.name,
                            display_path(path)
                        ))
                    })?;
                Ok(Resolved {
                    sub: Some(sub),
                    ..outer
                })
            };
            Filter::ValuePath {
                attr: outer.attr(),
                filter: Box::new(resolve_with(&inner, *filter)?),
            }
        }
    })
}

fn present_attr(resolved: Resolved) -> Option<Attr> {
    (resolved.target().returned != Returned::Never).then(|| resolved.attr())
}

fn not_filterable(path: &AttrPath) -> ScimError {
    bad_filter(format!("{:?} cannot be filtered on", display_path(path)))
}

/// Checks the value fits the attribute and the operator fits both; dateTimes become Unix seconds.
fn check_comparison(attr: &Attr, op: CompareOp, value: CompValue) -> ScimResult<CompValue> {
    let refuse = |why: &str| {
        Err(bad_filter(format!(
            "{} {} …: {why}",
            attr.name,
            op.as_str()
        )))
    };
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    match (&value, attr.kind) {
        (CompValue::Null, _) if matches!(op, CompareOp::Eq | CompareOp::Ne) => Ok(value),
        (CompValue::Null, _) => refuse("null can only be compared with eq or ne"),
        (_, AttrKind::Boolean | AttrKind::Binary) if op.is_ordering() => {
            refuse("booleans and binaries cannot be ordered")
        }
        (_, kind)
            if substring
                && !matches!(
                    kind,
                    AttrKind::String | AttrKind::Reference | AttrKind::Binary
                ) =>
        {
            refuse("co, sw and ew compare strings")
        }
        (CompValue::Bool(_), AttrKind::Boolean) => Ok(value),
        (CompValue::Number(_), AttrKind::Integer | AttrKind::Decimal) => Ok(value),
        (CompValue::String(text), AttrKind::DateTime) => match parse_date_time(text) {
            Some(at) => Ok(CompValue::Number(at.into())),
            None => refuse("expected a dateTime such as \"2011-05-13T04:42:34Z\""),
        },
        (CompValue::String(_), AttrKind::String | AttrKind::Reference | AttrKind::Binary) => {
            Ok(value)
        }
        _ => refuse(&format!(
            "the value does not fit a {} attribute",
            super::representation::kind_name(attr.kind)
        )),
    }
}

/// A ListResponse (§3.4.2) of already rendered resources.
pub fn list_response(total: u64, start_index: u64, resources: Vec<Value>) -> Value {
    serde_json::json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
