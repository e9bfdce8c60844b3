//! PATCH (RFC 7644 §3.5.2): `add`, `remove` and `replace` operations applied to a resource's
//! attributes in memory. A request applies all of its operations or none: the caller stores the
//! result once, after every operation succeeded and the result passed validation.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::error::{ScimError, ScimResult, ScimType};
use super::filter::parse_path;
use super::filter::AttrPath;
use super::query::resolve_filter;
use super::representation::{check_attribute, distinct, object_entry};
use super::schema::{AttrDef, Mutability, ResourceType};
use crate::store::query::{Attr, CompValue, CompareOp, Filter};

pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Replace,
}

#[derive(Debug)]
pub struct Operation {
    op: Op,
    path: Option<String>,
    value: Option<Value>,
}

fn syntax(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidSyntax, detail)
}

fn invalid_path(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidPath, detail)
}

fn no_target(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::NoTarget, detail)
}

fn mutability(name: &str) -> ScimError {
    ScimError::bad_request(ScimType::Mutability, format!("{name} cannot be modified"))
}

/// Reads a PatchOp request body (§3.5.2).
pub fn operations(body: &Value) -> ScimResult<Vec<Operation>> {
    let has_schema = body
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(PATCH_OP_SCHEMA)));
    if !has_schema {
        return Err(syntax(format!("schemas must contain {PATCH_OP_SCHEMA}")));
    }
    let list = body
        .get("Operations")
        .and_then(Value::as_array)
        .filter(|ops| !ops.is_empty())
        .ok_or_else(|| syntax("Operations must be a non-empty array"))?;
    list.iter().map(operation).collect()
}

fn operation(value: &Value) -> ScimResult<Operation> {
    let op = match value
        .get("op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
    {
        Some(op) if op == "add" => Op::Add,
        Some(op) if op == "remove" => Op::Remove,
        Some(op) if op == "replace" => Op::Replace,
        _ => return Err(syntax("op must be \"add\", \"remove\" or \"replace\"")),
    };
    let path = match value.get("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(path)) => Some(path.clone()),
        Some(_) => return Err(invalid_path("path must be a string")),
    };
    let value = value.get("value").cloned();
    if op != Op::Remove && value.is_none() {
        return Err(syntax("add and replace need a value"));
    }
    Ok(Operation { op, path, value })
}

/// Applies every operation to `doc`, the resource's writable attributes.
pub fn apply(rt: &ResourceType, doc: &mut Map<String, Value>, ops: &[Operation]) -> ScimResult<()> {
    for operation in ops {
        match &operation.path {
            Some(path) => apply_at(rt, doc, operation.op, path, operation.value.as_ref())?,
            None => apply_without_path(rt, doc, operation)?,
        }
    }
    Ok(())
}

/// §3.5.2.1 / §3.5.2.3 without `path`: the value is an object of attributes, each applied as if
/// named by a path. `remove` needs a path (§3.5.2.2).
fn apply_without_path(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    operation: &Operation,
) -> ScimResult<()> {
    if operation.op == Op::Remove {
        return Err(no_target("remove needs a path"));
    }
    let Some(Value::Object(values)) = &operation.value else {
        return Err(syntax(
            "without a path, the value must be an object of attributes",
        ));
    };
    for (key, value) in values {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        match (rt.extension(key), value) {
            (Some(extension), _) => {
                whole_extension(rt, doc, extension.id, operation.op, Some(value))?
            }
            _ => apply_at(rt, doc, operation.op, key, Some(value))?,
        }
    }
    Ok(())
}

/// A path naming an extension schema (`urn:…:enterprise:2.0:User`) targets all of its
/// attributes: the value is an object of them.
fn whole_extension(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    urn: &'static str,
    op: Op,
    value: Option<&Value>,
) -> ScimResult<()> {
    if op == Op::Remove {
        doc.remove(urn);
        return Ok(());
    }
    let Some(Value::Object(inner)) = value else {
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!("the value of {urn} must be an object"),
        ));
    };
    for (name, value) in inner {
        if !name.eq_ignore_ascii_case("schemas") {
            apply_at(rt, doc, op, &format!("{urn}:{name}"), Some(value))?;
        }
    }
    Ok(())
}

/// A resolved PATCH path.
struct Target {
    extension: Option<&'static str>,
    def: &'static AttrDef,
    filter: Option<Filter<Attr>>,
    sub: Option<&'static AttrDef>,
}

fn target(rt: &ResourceType, path: &str) -> ScimResult<Target> {
    let parsed = parse_path(path).map_err(|e| invalid_path(format!("{path:?}: {e}")))?;
    let unknown = || invalid_path(format!("{path:?} names no attribute of {}", rt.name));
    let resolved = rt.resolve(&parsed.attr).ok_or_else(unknown)?;
    let filter = match parsed.filter {
        None => None,
        Some(inner) => {
            let outer = AttrPath {
                sub: None,
                ..parsed.attr.clone()
            };
            let whole = Filter::ValuePath {
                attr: outer,
                filter: Box::new(inner),
            };
            match resolve_filter(rt, whole)
                .map_err(|_| invalid_path(format!("{path:?} has an invalid filter")))?
            {
                Filter::ValuePath { filter, .. } => Some(*filter),
                _ => return Err(unknown()),
            }
        }
    };
    let sub = match (&parsed.sub, resolved.sub) {
        (Some(name), None) => Some(resolved.def.sub(name).ok_or_else(unknown)?),
        (None, sub) => sub,
        (Some(_), Some(_)) => return Err(unknown()),
    };
    Ok(Target {
        extension: resolved.extension.map(|e| e.id),
        def: resolved.def,
        filter,
        sub,
    })
}

fn apply_at(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    op: Op,
    path: &str,
    value: Option<&Value>,
) -> ScimResult<()> {
    if let Some(extension) = rt.extension(path.trim()) {
        return whole_extension(rt, doc, extension.id, op, value);
    }
    let target = target(rt, path)?;
    check_mutability(&target, op)?;
    let container = match target.extension {
        None => doc,
        Some(urn) => {
            object_entry(doc, urn).ok_or_else(|| invalid_path(format!("{urn} is not an object")))?
        }
    };
    let name = target.def.name;
    match (&target.filter, target.sub, target.def.multi_valued) {
        (None, None, _) => whole_attribute(container, target.def, op, value),
        (None, Some(sub), false) => {
            let object = container
                .entry(name)
                .or_insert_with(|| Value::Object(Map::new()));
            set_sub(object, sub, op, value)
        }
        (None, Some(sub), true) => {
            let elements = elements(container, name);
            if elements.is_empty() && op != Op::Remove {
                return Err(no_target(format!("{name} has no values")));
            }
            elements
                .iter_mut()
                .try_for_each(|e| set_sub(e, sub, op, value))
        }
        (Some(filter), sub, _) => filtered(container, target.def, filter, sub, op, value),
    }
}

/// Read-only attributes cannot be patched; immutable ones only added or removed whole.
fn check_mutability(target: &Target, op: Op) -> ScimResult<()> {
    let leaf = target.sub.unwrap_or(target.def);
    for def in [target.def, leaf] {
        if def.mutability == Mutability::ReadOnly {
            return Err(mutability(def.name));
        }
    }
    if leaf.mutability == Mutability::Immutable && op == Op::Replace && target.sub.is_some() {
        return Err(mutability(leaf.name));
    }
    Ok(())
}

fn elements<'a>(container: &'a mut Map<String, Value>, name: &str) -> &'a mut Vec<Value> {
    let entry = container
        .entry(name)
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    match entry {
        Value::Array(values) => values,
        _ => unreachable!("just made an array"),
    }
}

fn canonical(def: &'static AttrDef, value: Option<&Value>) -> ScimResult<Option<Value>> {
    match value {
        Some(value) => check_attribute(def, value),
        None => Ok(None),
    }
}

/// An operation on a whole attribute (§3.5.2.1-3, no filter, no sub-attribute).
fn whole_attribute(
    container: &mut Map<String, Value>,
    def: &'static AttrDef,
    op: Op,
    value: Option<&Value>,
) -> ScimResult<()> {
    let name = def.name;
    match op {
        // Some clients (Entra ID) name the values to remove: `members` with `[{"value": …}]`.
        Op::Remove if def.multi_valued && value.is_some() => {
            let gone = canonical(def, value.map(as_list).as_ref())?.unwrap_or_default();
            let gone: HashSet<String> = gone
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.get("value"))
                .map(Value::to_string)
                .collect();
            elements(container, name)
                .retain(|e| !gone.contains(&e.get("value").unwrap_or(&Value::Null).to_string()));
        }
        Op::Remove => {
            container.remove(name);
        }
        Op::Add if def.multi_valued => {
            let added = canonical(def, value.map(as_list).as_ref())?;
            let list = elements(container, name);
            let added = added
                .as_ref()
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            *list = distinct(list.drain(..).chain(added.cloned()));
        }
        _ => {
            let Some(checked) = canonical(def, value)? else {
                container.remove(name);
                return Ok(());
            };
            match (container.get_mut(name), checked) {
                // §3.5.2.3: sub-attributes not named are left unchanged.
                (Some(Value::Object(existing)), Value::Object(new)) if !def.multi_valued => {
                    existing.extend(new)
                }
                (_, checked) => {
                    container.insert(name.to_string(), checked);
                }
            }
        }
    }
    Ok(())
}

/// A value given for a multi-valued attribute may be one element or a list of them.
fn as_list(value: &Value) -> Value {
    match value {
        Value::Array(_) => value.clone(),
        other => Value::Array(vec![other.clone()]),
    }
}

/// Sets, replaces or removes sub-attribute `sub` of a complex value.
fn set_sub(
    object: &mut Value,
    sub: &'static AttrDef,
    op: Op,
    value: Option<&Value>,
) -> ScimResult<()> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    let Value::Object(object) = object else {
        return Ok(());
    };
    match (op, canonical(sub, value)?) {
        (Op::Remove, _) | (_, None) => {
            object.remove(sub.name);
        }
        (_, Some(checked)) => {
            object.insert(sub.name.to_string(), checked);
        }
    }
    Ok(())
}

/// Operations on the values of a list that match a filter (`emails[type eq "work"]`).
fn filtered(
    container: &mut Map<String, Value>,
    def: &'static AttrDef,
    filter: &Filter<Attr>,
    sub: Option<&'static AttrDef>,
    op: Op,
    value: Option<&Value>,
) -> ScimResult<()> {
    let list = elements(container, def.name);
    if op == Op::Remove {
        match sub {
            None => list.retain(|e| !filter.matches(e)),
            Some(sub) => {
                for element in list.iter_mut().filter(|e| filter.matches(e)) {
                    set_sub(element, sub, Op::Remove, None)?;
                }
            }
        }
        return Ok(());
    }
    let matching: Vec<usize> = (0..list.len())
        .filter(|&i| filter.matches(&list[i]))
        .collect();
    let nothing_matches = || no_target(format!("no {} value matches the filter", def.name));
    if matching.is_empty() && op == Op::Replace {
        // §3.5.2.3: replacing through a filter that matches nothing is an error.
        return Err(nothing_matches());
    }
    if matching.is_empty() {
        // Provisioning clients (Entra ID) add `emails[type eq "work"].value` before a work
        // address exists: the value the filter pins down is created (for `eq` terms only).
        let seed = seed(filter).ok_or_else(nothing_matches)?;
        list.push(Value::Object(seed));
        let last = list.len() - 1;
        return update_element(&mut list[last], def, sub, value);
    }
    for i in matching {
        update_element(&mut list[i], def, sub, value)?;
    }
    Ok(())
}

fn update_element(
    element: &mut Value,
    def: &'static AttrDef,
    sub: Option<&'static AttrDef>,
    value: Option<&Value>,
) -> ScimResult<()> {
    match sub {
        Some(sub) => set_sub(element, sub, Op::Replace, value),
        None => {
            let Some(Value::Object(new)) = canonical_element(def, value)? else {
                return Err(ScimError::bad_request(
                    ScimType::InvalidValue,
                    format!("a {} value must be an object", def.name),
                ));
            };
            if let Value::Object(existing) = element {
                existing.extend(new);
            }
            Ok(())
        }
    }
}

/// The canonical form of one element of `def`.
fn canonical_element(def: &'static AttrDef, value: Option<&Value>) -> ScimResult<Option<Value>> {
    let list = canonical(def, value.map(as_list).as_ref())?;
    Ok(list.and_then(|l| l.as_array().and_then(|a| a.first().cloned())))
}

/// The element a conjunction of `eq` terms describes.
fn seed(filter: &Filter<Attr>) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare {
            attr,
            op: CompareOp::Eq,
            value,
        } => {
            let value = match value {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            Some(Map::from_iter([(attr.sub?.to_string(), value)]))
        }
        Filter::And(a, b) => {
            let mut both = seed(a)?;
            both.extend(seed(b)?);
            Some(both)
        }
        _ => None,
    }
}
