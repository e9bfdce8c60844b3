//! Discovery resources (RFC 7644 §4, RFC 7643 §5-7): what the server supports, its resource
//! types and their schemas, generated from the same definitions that drive validation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::error::ScimError;
use super::query::{list_response, MAX_RESULTS};
use super::representation::kind_name;
use super::schema::{AttrDef, Mutability, ResourceType, Returned, Schema, RESOURCE_TYPES, SCHEMAS};
use super::{json_response, Directory};
use crate::state::AppState;

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// §5: honest about what is built — PATCH, filters, sorting, ETags and password changes; no
/// bulk operations.
pub async fn service_provider_config(State(state): State<AppState>) -> Response {
    let directory = Directory::of(&state);
    let body = json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": true },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "An access token of scope scim from the client_credentials grant",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": directory.location("/ServiceProviderConfig"),
        },
    });
    json_response(StatusCode::OK, &body)
}

fn resource_type_json(directory: &Directory<'_>, rt: &ResourceType) -> Value {
    let extensions: Vec<Value> = rt
        .extensions
        .iter()
        .map(|s| json!({ "schema": s.id, "required": false }))
        .collect();
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.schema.id,
        "schemaExtensions": extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": directory.location(&format!("/ResourceTypes/{}", rt.name)),
        },
    })
}

pub async fn resource_types(State(state): State<AppState>) -> Response {
    let directory = Directory::of(&state);
    let all: Vec<Value> = RESOURCE_TYPES
        .iter()
        .map(|rt| resource_type_json(&directory, rt))
        .collect();
    json_response(StatusCode::OK, &list_response(all.len() as u64, 1, all))
}

pub async fn resource_type(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let directory = Directory::of(&state);
    match RESOURCE_TYPES.iter().find(|rt| rt.name == id) {
        Some(rt) => json_response(StatusCode::OK, &resource_type_json(&directory, rt)),
        None => ScimError::not_found(format!("no resource type {id}")).into_response(),
    }
}

fn attribute_json(def: &AttrDef) -> Value {
    let mut attribute = json!({
        "name": def.name,
        "type": kind_name(def.kind),
        "multiValued": def.multi_valued,
        "description": def.description,
        "required": def.required,
        "caseExact": def.case_exact,
        "mutability": match def.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        },
        "returned": match def.returned {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        },
        "uniqueness": if def.unique { "server" } else { "none" },
    });
    if !def.canonical_values.is_empty() {
        attribute["canonicalValues"] = json!(def.canonical_values);
    }
    if !def.reference_types.is_empty() {
        attribute["referenceTypes"] = json!(def.reference_types);
    }
    if !def.sub_attributes.is_empty() {
        let subs: Vec<Value> = def.sub_attributes.iter().map(attribute_json).collect();
        attribute["subAttributes"] = subs.into();
    }
    attribute
}

fn schema_json(directory: &Directory<'_>, schema: &Schema) -> Value {
    let attributes: Vec<Value> = schema.attributes.iter().map(attribute_json).collect();
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": attributes,
        "meta": {
            "resourceType": "Schema",
            "location": directory.location(&format!("/Schemas/{}", schema.id)),
        },
    })
}

pub async fn schemas(State(state): State<AppState>) -> Response {
    let directory = Directory::of(&state);
    let all: Vec<Value> = SCHEMAS.iter().map(|s| schema_json(&directory, s)).collect();
    json_response(StatusCode::OK, &list_response(all.len() as u64, 1, all))
}

pub async fn schema(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let directory = Directory::of(&state);
    match SCHEMAS.iter().find(|s| s.id == id) {
        Some(schema) => json_response(StatusCode::OK, &schema_json(&directory, schema)),
        None => ScimError::not_found(format!("no schema {id}")).into_response(),
    }
}
