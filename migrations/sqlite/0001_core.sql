-- Core OIDC schema: the seed tables users / auth_codes / tokens plus what the protocol needs.
-- Every secret (client secret, code, token, session id) is stored as its SHA-256, never in clear.
-- Times are Unix seconds.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    username            TEXT NOT NULL,
    -- lower-cased username: user names are unique case-insensitively (RFC 7643 §4.1.1).
    username_normalized TEXT NOT NULL UNIQUE,
    password_hash       TEXT,
    email               TEXT,
    given_name          TEXT,
    family_name         TEXT,
    active              INTEGER NOT NULL DEFAULT 1,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE clients (
    client_id                    TEXT PRIMARY KEY,
    secret_hash                  TEXT,
    redirect_uris                TEXT NOT NULL,
    post_logout_redirect_uris    TEXT NOT NULL,
    grant_types                  TEXT NOT NULL,
    scope                        TEXT NOT NULL,
    id_token_signed_response_alg TEXT NOT NULL,
    require_mfa                  INTEGER NOT NULL DEFAULT 0,
    skip_consent                 INTEGER NOT NULL DEFAULT 0,
    created_at                   INTEGER NOT NULL
);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    auth_time      INTEGER NOT NULL,
    acr            TEXT NOT NULL,
    amr            TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    consumed_at    INTEGER
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE tokens (
    token_hash   TEXT PRIMARY KEY,
    jti          TEXT NOT NULL UNIQUE,
    grant_id     TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    user_id      TEXT,
    scope        TEXT NOT NULL,
    mfa_verified INTEGER NOT NULL DEFAULT 0,
    acr          TEXT,
    amr          TEXT NOT NULL,
    auth_time    INTEGER,
    issued_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX tokens_grant_id ON tokens (grant_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

-- Short-lived server-side state with a TTL: login sessions, pending authorization interactions.
CREATE TABLE artifacts (
    kind       TEXT NOT NULL,
    id_hash    TEXT NOT NULL,
    payload    TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, id_hash)
);
CREATE INDEX artifacts_expires_at ON artifacts (expires_at);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
