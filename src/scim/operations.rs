//! The RFC 7644 §3 operations, written once for every resource type: create (§3.3), read and
//! list (§3.4), search (§3.4.3), replace (§3.5.1), patch (§3.5.2), delete (§3.6), with ETags
//! (§3.14) and optimistic concurrency on the resource version.

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::error::{ScimError, ScimResult, ScimType};
use super::groups::Groups;
use super::patch;
use super::query::{list_response, ListParams, Listing};
use super::representation::{etag, validate, Projection};
use super::schema::ResourceType;
use super::users::Users;
use super::{json_object, json_response, Directory};
use crate::clock;
use crate::state::AppState;
use crate::store::query::{ListQuery, Page};
use crate::store::{Attributes, StoreResult, UnixTime, Update};

/// How many times a write retries after losing a race with another writer before giving up.
const WRITE_ATTEMPTS: usize = 3;

/// How a write arrived at the attributes it stores: what an attribute missing from them means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// POST: a new resource.
    Created,
    /// PUT (§3.5.1): the client sent the whole resource.
    Replaced,
    /// PATCH (§3.5.2): the stored resource changed by operations; an attribute
    /// [`ResourceKind::writable`] showed that is missing now was removed.
    Patched,
}

/// What differs between Users and Groups.
#[async_trait]
pub trait ResourceKind: Send + Sync + 'static {
    const TYPE: &'static ResourceType;
    type Record: Send + Sync;

    fn id(record: &Self::Record) -> &str;
    fn version(record: &Self::Record) -> i64;
    async fn load(directory: &Directory<'_>, id: &str) -> StoreResult<Option<Self::Record>>;
    async fn list(
        directory: &Directory<'_>,
        query: &ListQuery,
        projection: &Projection,
    ) -> StoreResult<Page<Self::Record>>;
    async fn insert(directory: &Directory<'_>, record: &Self::Record) -> StoreResult<()>;
    async fn update(
        directory: &Directory<'_>,
        record: &Self::Record,
        expected_version: i64,
        now: UnixTime,
    ) -> StoreResult<Update>;
    async fn delete(directory: &Directory<'_>, id: &str, now: UnixTime) -> StoreResult<bool>;
    /// The new record for validated attributes: a new resource, or the next version of
    /// `existing` (`None` exactly when `basis` is [`Basis::Created`]).
    async fn build(
        directory: &Directory<'_>,
        attributes: Attributes,
        existing: Option<&Self::Record>,
        basis: Basis,
        now: UnixTime,
    ) -> ScimResult<Self::Record>;
    /// What follows a stored update beyond the record itself (a user's password reset ends
    /// their sessions).
    async fn after_update(
        _directory: &Directory<'_>,
        _before: &Self::Record,
        _after: &Self::Record,
    ) -> ScimResult<()> {
        Ok(())
    }
    /// The attributes a client may write, as PATCH sees them.
    fn writable(record: &Self::Record) -> Map<String, Value>;
    /// Full representations, before projection.
    async fn render(
        directory: &Directory<'_>,
        records: &[Self::Record],
    ) -> ScimResult<Vec<Map<String, Value>>>;
}

fn resource_location<K: ResourceKind>(directory: &Directory<'_>, id: &str) -> String {
    directory.location(&format!("{}/{id}", K::TYPE.endpoint))
}

/// One resource with its `ETag` (and `Location`, for a creation) headers.
async fn respond_one<K: ResourceKind>(
    directory: &Directory<'_>,
    status: StatusCode,
    record: &K::Record,
    projection: &Projection,
) -> ScimResult<Response> {
    let mut rendered = K::render(directory, std::slice::from_ref(record)).await?;
    let mut body = rendered.pop().unwrap_or_default();
    projection.apply(K::TYPE, &mut body);
    let mut response = json_response(status, &Value::Object(body));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag(K::version(record))) {
        headers.insert(header::ETAG, value);
    }
    if status == StatusCode::CREATED {
        if let Ok(value) = HeaderValue::from_str(&resource_location::<K>(directory, K::id(record)))
        {
            headers.insert(header::LOCATION, value);
        }
    }
    Ok(response)
}

fn into_response(result: ScimResult<Response>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn projection_only<K: ResourceKind>(
    params: Result<Query<ListParams>, QueryRejection>,
) -> ScimResult<Projection> {
    let Query(params) = params.map_err(bad_query)?;
    Projection::parse(
        K::TYPE,
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    )
}

fn bad_query(err: QueryRejection) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, err.body_text())
}

fn not_found<K: ResourceKind>(id: &str) -> ScimError {
    ScimError::not_found(format!("{} {id} not found", K::TYPE.name))
}

async fn load_or_404<K: ResourceKind>(
    directory: &Directory<'_>,
    id: &str,
) -> ScimResult<K::Record> {
    refuse_impossible_id::<K>(id)?;
    K::load(directory, id)
        .await?
        .ok_or_else(|| not_found::<K>(id))
}

/// No resource has an id with a control character: such an id is not asked of the store.
fn refuse_impossible_id<K: ResourceKind>(id: &str) -> ScimResult<()> {
    if crate::input::has_control(id) {
        return Err(not_found::<K>(&id.escape_debug().to_string()));
    }
    Ok(())
}

/// An `If-Match` or `If-None-Match` header names this version (or `*`).
fn names_version(headers: &HeaderMap, name: header::HeaderName, version: i64) -> Option<bool> {
    // A header that is not even text names no version: it never matches.
    let Ok(value) = headers.get(name)?.to_str() else {
        return Some(false);
    };
    let current = etag(version);
    Some(value.split(',').map(str::trim).any(|tag| {
        // Weak comparison (RFC 9110 §8.8.3.2): `W/"3"` and `"3"` name the same version.
        tag == "*" || tag.trim_start_matches("W/") == current.trim_start_matches("W/")
    }))
}

pub async fn get<K: ResourceKind>(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let directory = Directory::of(&state);
    into_response(
        async {
            let projection = projection_only::<K>(params)?;
            let record = load_or_404::<K>(&directory, &id).await?;
            if names_version(&headers, header::IF_NONE_MATCH, K::version(&record)) == Some(true) {
                let mut response = StatusCode::NOT_MODIFIED.into_response();
                if let Ok(value) = HeaderValue::from_str(&etag(K::version(&record))) {
                    response.headers_mut().insert(header::ETAG, value);
                }
                return Ok(response);
            }
            respond_one::<K>(&directory, StatusCode::OK, &record, &projection).await
        }
        .await,
    )
}

pub async fn create<K: ResourceKind>(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
    body: Bytes,
) -> Response {
    let directory = Directory::of(&state);
    into_response(
        async {
            let projection = projection_only::<K>(params)?;
            let attributes = validate(K::TYPE, &json_object(&body)?)?;
            let record =
                K::build(&directory, attributes, None, Basis::Created, clock::now()).await?;
            K::insert(&directory, &record).await?;
            respond_one::<K>(&directory, StatusCode::CREATED, &record, &projection).await
        }
        .await,
    )
}

pub async fn replace<K: ResourceKind>(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
    body: Bytes,
) -> Response {
    let directory = Directory::of(&state);
    into_response(
        async {
            let projection = projection_only::<K>(params)?;
            let body = json_object(&body)?;
            let attributes = validate(K::TYPE, &body)?;
            let replace = |_: &K::Record| Ok(attributes.clone());
            let record = write::<K>(&directory, &id, &headers, Basis::Replaced, replace).await?;
            respond_one::<K>(&directory, StatusCode::OK, &record, &projection).await
        }
        .await,
    )
}

pub async fn patch<K: ResourceKind>(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
    body: Bytes,
) -> Response {
    let directory = Directory::of(&state);
    into_response(
        async {
            let projection = projection_only::<K>(params)?;
            let operations = patch::operations(&Value::Object(json_object(&body)?))?;
            let record = write::<K>(&directory, &id, &headers, Basis::Patched, |existing| {
                let mut doc = K::writable(existing);
                patch::apply(K::TYPE, &mut doc, &operations)?;
                validate(K::TYPE, &doc)
            })
            .await?;
            respond_one::<K>(&directory, StatusCode::OK, &record, &projection).await
        }
        .await,
    )
}

/// Read, change, and store with a version check; a lost race is retried unless the client
/// named the version it expects (`If-Match`), which then fails with 412 (§3.14).
async fn write<K: ResourceKind>(
    directory: &Directory<'_>,
    id: &str,
    headers: &HeaderMap,
    basis: Basis,
    change: impl Fn(&K::Record) -> ScimResult<Attributes>,
) -> ScimResult<K::Record> {
    for _ in 0..WRITE_ATTEMPTS {
        let existing = load_or_404::<K>(directory, id).await?;
        let version = K::version(&existing);
        if names_version(headers, header::IF_MATCH, version) == Some(false) {
            return Err(ScimError::precondition_failed());
        }
        let now = clock::now();
        let attributes = change(&existing)?;
        let record = K::build(directory, attributes, Some(&existing), basis, now).await?;
        match K::update(directory, &record, version, now).await? {
            Update::Done => {
                K::after_update(directory, &existing, &record).await?;
                return Ok(record);
            }
            Update::NotFound => return Err(not_found::<K>(id)),
            Update::Stale if headers.contains_key(header::IF_MATCH) => {
                return Err(ScimError::precondition_failed())
            }
            Update::Stale => continue,
        }
    }
    Err(ScimError::new(
        StatusCode::CONFLICT,
        "the resource is being changed concurrently; retry",
    ))
}

pub async fn delete<K: ResourceKind>(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let directory = Directory::of(&state);
    into_response(
        async {
            refuse_impossible_id::<K>(&id)?;
            if headers.contains_key(header::IF_MATCH) {
                let existing = load_or_404::<K>(&directory, &id).await?;
                if names_version(&headers, header::IF_MATCH, K::version(&existing)) == Some(false) {
                    return Err(ScimError::precondition_failed());
                }
            }
            if K::delete(&directory, &id, clock::now()).await? {
                Ok(StatusCode::NO_CONTENT.into_response())
            } else {
                Err(not_found::<K>(&id))
            }
        }
        .await,
    )
}

/// One page of one resource type, rendered and projected.
async fn page_of<K: ResourceKind>(
    directory: &Directory<'_>,
    listing: &Listing,
) -> ScimResult<(u64, Vec<Value>)> {
    let page = K::list(directory, &listing.query, &listing.projection).await?;
    let rendered = K::render(directory, &page.items).await?;
    let resources = rendered
        .into_iter()
        .map(|mut resource| {
            listing.projection.apply(K::TYPE, &mut resource);
            Value::Object(resource)
        })
        .collect();
    Ok((page.total, resources))
}

async fn list_with<K: ResourceKind>(
    directory: &Directory<'_>,
    params: &ListParams,
) -> ScimResult<Response> {
    let listing = params.listing(K::TYPE)?;
    let (total, resources) = page_of::<K>(directory, &listing).await?;
    let body = list_response(total, listing.query.start_index, resources);
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn list<K: ResourceKind>(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let directory = Directory::of(&state);
    into_response(
        async {
            let Query(params) = params.map_err(bad_query)?;
            list_with::<K>(&directory, &params).await
        }
        .await,
    )
}

fn search_params(body: &Bytes) -> ScimResult<ListParams> {
    serde_json::from_value(Value::Object(json_object(body)?))
        .map_err(|e| ScimError::bad_request(ScimType::InvalidValue, e.to_string()))
}

/// `POST /{type}/.search` (§3.4.3): the query parameters in a SearchRequest body.
pub async fn search<K: ResourceKind>(State(state): State<AppState>, body: Bytes) -> Response {
    let directory = Directory::of(&state);
    into_response(async { list_with::<K>(&directory, &search_params(&body)?).await }.await)
}

/// `POST /.search` (§3.4.3) at the root: users, then groups, paged as one list. A filter that
/// names attributes only one type has searches that type only.
pub async fn search_all(State(state): State<AppState>, body: Bytes) -> Response {
    let directory = Directory::of(&state);
    into_response(
        async {
            let params = search_params(&body)?;
            let users = params.listing(Users::TYPE);
            let groups = params.listing(Groups::TYPE);
            let (users, groups) = match (users, groups) {
                (Err(err), Err(_)) => return Err(err),
                (users, groups) => (users.ok(), groups.ok()),
            };
            let mut total = 0;
            let mut resources = Vec::new();
            let mut start_index = 1;
            if let Some(listing) = &users {
                let (found, page) = page_of::<Users>(&directory, listing).await?;
                total += found;
                start_index = listing.query.start_index;
                resources.extend(page);
            }
            if let Some(mut listing) = groups {
                let skipped = total;
                start_index = listing.query.start_index.max(1);
                listing.query.start_index = start_index.saturating_sub(skipped).max(1);
                listing.query.count = listing.query.count.saturating_sub(resources.len() as u64);
                let (found, page) = page_of::<Groups>(&directory, &listing).await?;
                total += found;
                resources.extend(page);
            }
            let body = list_response(total, start_index, resources);
            Ok(json_response(StatusCode::OK, &body))
        }
        .await,
    )
}
