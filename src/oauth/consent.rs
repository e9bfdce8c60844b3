//! The consent step of an authorization interaction.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::account::session::Session;
use crate::clock;
use crate::error::{Error, ErrorCode};
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::interaction::{check_csrf, Interaction, InteractionQuery, InteractionRefusal};
use crate::oauth::sign_in::SignIn;
use crate::state::AppState;
use crate::store::Client;
use crate::tokens::scope;
use crate::ui::{self, ConsentPage};
use crate::web::csrf;

/// The authorization interaction `id` with its client and the session that signed in for it.
/// Without that session the user is sent to the login page. (The verification step waits on it
/// too.)
pub(crate) async fn consenting_session(
    sign_in: &SignIn,
    jar: &CookieJar,
    id: &str,
) -> Result<(Interaction, Client, Session), InteractionRefusal> {
    let (interaction, client) = sign_in.interactions.load(jar, id).await?;
    let client = client.ok_or(InteractionRefusal::Expired)?;
    let session = sign_in.current_session(jar, clock::now()).await?;
    match (session, &interaction.sid) {
        (Some(session), Some(sid)) if session.sid == *sid => Ok((interaction, client, session)),
        _ => Err(InteractionRefusal::SignInAgain(id.to_string())),
    }
}

fn request(interaction: &Interaction) -> Result<&AuthorizationRequest, InteractionRefusal> {
    interaction.request().ok_or(InteractionRefusal::Expired)
}

pub async fn consent_page(
    State(state): State<AppState>,
    State(sign_in): State<Arc<SignIn>>,
    jar: CookieJar,
    Query(query): Query<InteractionQuery>,
) -> Result<Response, InteractionRefusal> {
    let id = query.interaction.unwrap_or_default();
    let (interaction, client, session) = consenting_session(&sign_in, &jar, &id).await?;
    let user = state
        .store
        .user(&session.user_id)
        .await?
        .ok_or(InteractionRefusal::Expired)?;
    let scopes = request(&interaction)?
        .scope
        .split(' ')
        .map(|s| (s.to_string(), describe(s)))
        .collect();
    let page = ConsentPage {
        client_id: &client.client_id,
        username: &user.username,
        scopes,
        interaction: &id,
        csrf_token: csrf::form_token(&jar, sign_in.https()).unwrap_or_default(),
    };
    Ok(ui::render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    csrf_token: Option<String>,
    interaction: Option<String>,
    decision: Option<String>,
}

pub async fn consent_submit(
    State(state): State<AppState>,
    State(sign_in): State<Arc<SignIn>>,
    jar: CookieJar,
    Form(form): Form<ConsentForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, sign_in.https(), form.csrf_token.as_deref())?;
    let id = form.interaction.unwrap_or_default();
    let (interaction, client, session) = consenting_session(&sign_in, &jar, &id).await?;
    let request = request(&interaction)?;
    match form.decision.as_deref() {
        Some("allow") => {
            let store = &state.store;
            let earlier = store
                .granted_scope(&session.user_id, &client.client_id)
                .await?;
            let granted = scope::union(earlier.as_deref().unwrap_or_default(), &request.scope);
            store
                .record_consent(&session.user_id, &client.client_id, &granted, clock::now())
                .await?;
            Ok(sign_in.complete(&id, &client, request, &session).await?)
        }
        Some("deny") => {
            sign_in.interactions.finish(&id).await?;
            let denied = Error::oauth(ErrorCode::AccessDenied, "the user denied the request");
            Ok(sign_in.reply(request).error(denied))
        }
        _ => Err(Error::invalid_request("decision must be allow or deny").into()),
    }
}

/// What a scope lets the client do, in the consent page's words.
fn describe(scope: &str) -> &'static str {
    scope::info(scope).map_or("use this permission", |s| s.consent)
}
