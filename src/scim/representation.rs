//! What Users and Groups share: checking written attributes against the schema, `meta` and
//! ETags, and the `attributes` / `excludedAttributes` projection of responses.

use serde_json::{Map, Value};

use super::error::{ScimError, ScimResult, ScimType};
use super::schema::{AttrDef, Mutability, Resolved, ResourceType, Returned};
use crate::store::query::AttrKind;
use crate::store::{Attributes, UnixTime};

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, detail)
}

/// Checks a resource body against `rt`'s schemas (RFC 7643 §2) and returns its attributes under
/// canonical names. Read-only attributes a client sends are ignored (RFC 7643 §2.2); unknown
/// attributes and values of the wrong type are refused with `invalidValue`, and required
/// attributes must be present.
pub fn validate(rt: &ResourceType, body: &Map<String, Value>) -> ScimResult<Attributes> {
    let mut out = Attributes::new();
    for (key, value) in body {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(extension) = rt.extension(key) {
            let Value::Object(inner) = value else {
                return Err(invalid(format!("{} must be an object", extension.id)));
            };
            let checked = check_attributes(extension.attributes, inner)?;
            if !checked.is_empty() {
                out.insert(extension.id.to_string(), checked.into());
            }
            continue;
        }
        let def = rt
            .core_attribute(key)
            .ok_or_else(|| invalid(format!("unknown attribute {key:?}")))?;
        if let Some(checked) = check_attribute(def, value)? {
            out.insert(def.name.to_string(), checked);
        }
    }
    for def in rt.schema.attributes.iter().filter(|d| d.required) {
        if !out.contains_key(def.name) {
            return Err(invalid(format!("{} is required", def.name)));
        }
    }
    Ok(out)
}

fn check_attributes(
    defs: &'static [AttrDef],
    object: &Map<String, Value>,
) -> ScimResult<Attributes> {
    let mut out = Attributes::new();
    for (key, value) in object {
        let def = defs
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(key))
            .ok_or_else(|| invalid(format!("unknown attribute {key:?}")))?;
        if let Some(checked) = check_attribute(def, value)? {
            out.insert(def.name.to_string(), checked);
        }
    }
    Ok(out)
}

/// The canonical form of one attribute's value; `None` when it is unassigned (null, empty) or
/// read-only and so ignored.
pub fn check_attribute(def: &'static AttrDef, value: &Value) -> ScimResult<Option<Value>> {
    if def.mutability == Mutability::ReadOnly {
        return Ok(None);
    }
    if !def.multi_valued {
        return check_single(def, value);
    }
    let values = match value {
        Value::Null => return Ok(None),
        Value::Array(values) => values,
        _ => return Err(invalid(format!("{} must be an array", def.name))),
    };
    let mut checked = Vec::with_capacity(values.len());
    for value in values {
        checked.extend(check_single(def, value)?);
    }
    let out = distinct(checked);
    // RFC 7643 §2.4: "primary" is true for at most one value.
    let primaries = out
        .iter()
        .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(invalid(format!(
            "{} has more than one primary value",
            def.name
        )));
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// The values without repeats, in their first order. Linear: groups carry many thousand members.
pub fn distinct(values: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    values
        .into_iter()
        // serde_json objects keep their keys sorted, so equal values print equally.
        .filter(|v| seen.insert(v.to_string()))
        .collect()
}

/// One value of `def` (an element, for multi-valued attributes).
fn check_single(def: &'static AttrDef, value: &Value) -> ScimResult<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if def.kind == AttrKind::Complex {
        let Value::Object(object) = value else {
            return Err(invalid(format!("{} must be an object", def.name)));
        };
        let checked = check_attributes(def.sub_attributes, object)?;
        return Ok((!checked.is_empty()).then_some(Value::Object(checked)));
    }
    let fits = match def.kind {
        AttrKind::String | AttrKind::Reference | AttrKind::Binary => value.is_string(),
        AttrKind::DateTime => value.as_str().is_some_and(|s| parse_date_time(s).is_some()),
        AttrKind::Boolean => value.is_boolean(),
        AttrKind::Integer => value.is_i64() || value.is_u64(),
        AttrKind::Decimal => value.is_number(),
        AttrKind::Complex => false,
    };
    if !fits {
        return Err(invalid(format!(
            "{} must be {}",
            def.name,
            kind_name(def.kind)
        )));
    }
    Ok(Some(value.clone()))
}

/// The RFC 7643 §7 name of a type.
pub fn kind_name(kind: AttrKind) -> &'static str {
    match kind {
        AttrKind::String => "string",
        AttrKind::Boolean => "boolean",
        AttrKind::Decimal => "decimal",
        AttrKind::Integer => "integer",
        AttrKind::DateTime => "dateTime",
        AttrKind::Binary => "binary",
        AttrKind::Reference => "reference",
        AttrKind::Complex => "complex",
    }
}

/// An `xsd:dateTime` (RFC 7643 §2.3.5) as Unix seconds.
pub fn parse_date_time(text: &str) -> Option<UnixTime> {
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(parsed.unix_timestamp())
}

/// The weak ETag of a resource version (RFC 7644 §3.14).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The `meta` attribute (RFC 7643 §3.1).
pub fn meta(
    resource_type: &str,
    location: &str,
    created: UnixTime,
    modified: UnixTime,
    version: i64,
) -> Value {
    serde_json::json!({
        "resourceType": resource_type,
        "created": crate::clock::rfc3339(created),
        "lastModified": crate::clock::rfc3339(modified),
        "location": location,
        "version": etag(version),
    })
}

/// The `attributes` and `excludedAttributes` parameters (RFC 7644 §3.4.2.5, §3.9).
#[derive(Debug, Default)]
pub struct Projection {
    include: Vec<Resolved>,
    exclude: Vec<Resolved>,
}

impl Projection {
    /// Parses comma-separated attribute paths. Names the resource lacks are ignored, as they
    /// would be absent from the response anyway.
    pub fn parse(
        rt: &ResourceType,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> ScimResult<Self> {
        let list = |text: Option<&str>| -> ScimResult<Vec<Resolved>> {
            let mut resolved = Vec::new();
            for path in text.unwrap_or("").split(',').map(str::trim) {
                if path.is_empty() {
                    continue;
                }
                let parsed = super::filter::parse_path(path)
                    .map_err(|e| invalid(format!("bad attribute name {path:?}: {e}")))?;
                if parsed.filter.is_none() {
                    resolved.extend(rt.resolve(&parsed.attr));
                }
            }
            Ok(resolved)
        };
        Ok(Projection {
            include: list(attributes)?,
            exclude: list(excluded)?,
        })
    }

    /// Whether the response should include this attribute at all.
    pub fn wants(&self, name: &str) -> bool {
        let named = |r: &Resolved| r.extension.is_none() && r.def.name == name;
        if !self.include.is_empty() {
            return self.include.iter().any(named);
        }
        !self.exclude.iter().any(|r| named(r) && r.sub.is_none())
    }

    /// Applies the projection to a rendered resource.
    pub fn apply(&self, rt: &ResourceType, resource: &mut Map<String, Value>) {
        if !self.include.is_empty() {
            let mut kept = Map::new();
            for key in ["schemas", "id"] {
                if let Some(value) = resource.remove(key) {
                    kept.insert(key.into(), value);
                }
            }
            copy_included(&self.include, resource, &mut kept);
            *resource = kept;
        }
        for resolved in &self.exclude {
            if resolved.target().returned != Returned::Always {
                remove(resolved, resource);
            }
        }
        self.drop_unrequested(rt, resource);
        drop_empty_extensions(rt, resource);
    }
}

impl Projection {
    /// Sub-attributes returned "on request" stay only when `attributes` names them.
    fn drop_unrequested(&self, rt: &ResourceType, resource: &mut Map<String, Value>) {
        for def in rt.schema.attributes {
            for sub in def
                .sub_attributes
                .iter()
                .filter(|s| s.returned == Returned::Request)
            {
                let named = self
                    .include
                    .iter()
                    .any(|r| r.def.name == def.name && r.sub.is_some_and(|s| s.name == sub.name));
                if !named {
                    let resolved = Resolved {
                        extension: None,
                        def,
                        sub: Some(sub),
                    };
                    remove(&resolved, resource);
                }
            }
        }
    }
}

/// The object under `key` (an extension schema URN), created empty when missing; `None` when
/// something else is stored there.
pub fn object_entry<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    parent
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

/// The object holding `resolved`'s attribute: the resource, or its extension object.
fn container<'a>(
    resolved: &Resolved,
    resource: &'a mut Map<String, Value>,
) -> Option<&'a mut Map<String, Value>> {
    match resolved.extension {
        None => Some(resource),
        Some(extension) => resource.get_mut(extension.id)?.as_object_mut(),
    }
}

/// Copies what `attributes` names into `to`: whole attributes, or only the named
/// sub-attributes of a complex value or of each element of a list.
fn copy_included(include: &[Resolved], from: &mut Map<String, Value>, to: &mut Map<String, Value>) {
    let mut wanted: Vec<(Resolved, Option<Vec<&str>>)> = Vec::new();
    for resolved in include {
        let same = |(w, _): &&mut (Resolved, Option<Vec<&str>>)| {
            w.def.name == resolved.def.name
                && w.extension.map(|e| e.id) == resolved.extension.map(|e| e.id)
        };
        match (wanted.iter_mut().find(same), resolved.sub) {
            (Some((_, subs)), Some(sub)) => {
                if let Some(subs) = subs {
                    subs.push(sub.name);
                }
            }
            (Some((_, subs)), None) => *subs = None,
            (None, sub) => wanted.push((*resolved, sub.map(|s| vec![s.name]))),
        }
    }
    for (resolved, subs) in wanted {
        let name = resolved.def.name;
        let Some(value) = container(&resolved, from)
            .and_then(|c| c.get(name))
            .cloned()
        else {
            continue;
        };
        let Some(value) = (match subs {
            None => Some(value),
            Some(subs) => keep_subs(value, &subs),
        }) else {
            continue;
        };
        let target = match resolved.extension {
            None => &mut *to,
            Some(extension) => match object_entry(to, extension.id) {
                Some(object) => object,
                None => continue,
            },
        };
        target.insert(name.to_string(), value);
    }
}

/// Keeps only the named sub-attributes of a complex value or of each element of a list.
fn keep_subs(value: Value, subs: &[&str]) -> Option<Value> {
    let pick = |v: Value| match v {
        Value::Object(mut object) => {
            object.retain(|k, _| subs.contains(&k.as_str()));
            (!object.is_empty()).then_some(Value::Object(object))
        }
        _ => None,
    };
    match value {
        Value::Array(values) => {
            let kept: Vec<Value> = values.into_iter().filter_map(pick).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => pick(other),
    }
}

fn remove(resolved: &Resolved, resource: &mut Map<String, Value>) {
    let Some(container) = container(resolved, resource) else {
        return;
    };
    let name = resolved.def.name;
    match resolved.sub {
        None => {
            container.remove(name);
        }
        Some(sub) => match container.get_mut(name) {
            Some(Value::Array(values)) => values.iter_mut().for_each(|v| {
                v.as_object_mut().map(|o| o.remove(sub.name));
            }),
            Some(Value::Object(object)) => {
                object.remove(sub.name);
            }
            _ => {}
        },
    }
}

fn drop_empty_extensions(rt: &ResourceType, resource: &mut Map<String, Value>) {
    for extension in rt.extensions {
        if resource
            .get(extension.id)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            resource.remove(extension.id);
        }
    }
}
