-- The PostgreSQL schema: the same tables as migrations/sqlite/ after 0005, in PostgreSQL's types.
-- Every secret (client secret, code, token, session id) is stored as its SHA-256, never in clear.
-- Times are Unix seconds. JSON documents are kept as text, as on SQLite; filters cast them to
-- jsonb where they look inside.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    username            TEXT NOT NULL,
    -- lower-cased (by Tessera, full Unicode) username: unique case-insensitively (RFC 7643 §4.1.1)
    username_normalized TEXT NOT NULL UNIQUE,
    password_hash       TEXT,
    active              BOOLEAN NOT NULL DEFAULT TRUE,
    -- every other SCIM attribute, under canonical names (extensions under their schema URN)
    attributes          TEXT NOT NULL DEFAULT '{}',
    -- bumped by every change to the SCIM representation: the ETag (RFC 7644 §3.14)
    version             BIGINT NOT NULL DEFAULT 1,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE clients (
    client_id                    TEXT PRIMARY KEY,
    secret_hash                  TEXT,
    redirect_uris                TEXT NOT NULL,
    post_logout_redirect_uris    TEXT NOT NULL,
    grant_types                  TEXT NOT NULL,
    scope                        TEXT NOT NULL,
    id_token_signed_response_alg TEXT NOT NULL,
    require_mfa                  BOOLEAN NOT NULL DEFAULT FALSE,
    skip_consent                 BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                   BIGINT NOT NULL
);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
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
    auth_time      BIGINT NOT NULL,
    acr            TEXT NOT NULL,
    amr            TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    consumed_at    BIGINT
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);
CREATE INDEX auth_codes_session_id ON auth_codes (session_id);
CREATE INDEX auth_codes_grant_id ON auth_codes (grant_id);
CREATE INDEX auth_codes_user_id ON auth_codes (user_id);

CREATE TABLE tokens (
    token_hash   TEXT PRIMARY KEY,
    jti          TEXT NOT NULL UNIQUE,
    grant_id     TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    user_id      TEXT,
    scope        TEXT NOT NULL,
    mfa_verified BOOLEAN NOT NULL DEFAULT FALSE,
    acr          TEXT,
    amr          TEXT NOT NULL,
    auth_time    BIGINT,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX tokens_grant_id ON tokens (grant_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);
CREATE INDEX tokens_user_id ON tokens (user_id);

-- Short-lived server-side state with a TTL: login sessions, pending authorization interactions.
CREATE TABLE artifacts (
    kind       TEXT NOT NULL,
    id_hash    TEXT NOT NULL,
    user_id    TEXT,
    payload    TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, id_hash)
);
CREATE INDEX artifacts_expires_at ON artifacts (expires_at);
CREATE INDEX artifacts_user_id ON artifacts (user_id);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    -- insertion order: the newest key of an algorithm signs (SQLite uses its rowid)
    seq         BIGSERIAL NOT NULL,
    alg         TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Refresh tokens (RFC 6749 §6) rotated on every use and linked in a family: the grant id of the
-- authorization code they descend from, shared with the family's access tokens in `tokens`.
CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    session_id  TEXT,
    auth_time   BIGINT NOT NULL,
    acr         TEXT NOT NULL,
    amr         TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    -- set when the token was exchanged for its successor; presenting it again is reuse
    rotated_at  BIGINT,
    -- hash of the successor, so a grace-window retry can replace a successor the client never got
    replaced_by TEXT,
    grace_used  BOOLEAN NOT NULL DEFAULT FALSE,
    revoked_at  BIGINT
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);

-- Audit trail of detected refresh-token reuse (RFC 9700 §4.14.2).
CREATE TABLE refresh_token_reuse (
    id          BIGSERIAL PRIMARY KEY,
    family_id   TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    detected_at BIGINT NOT NULL
);

-- TOTP (RFC 6238) per user. The seed is stored sealed (JWE, dir + A256GCM, key from configuration).
CREATE TABLE user_totp (
    user_id        TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_sealed  TEXT NOT NULL,
    -- false while enrollment waits for its first valid code
    confirmed      BOOLEAN NOT NULL DEFAULT FALSE,
    -- the newest time step a code was accepted for: codes of that step or older are replays
    last_used_step BIGINT NOT NULL DEFAULT 0,
    -- wrong codes in the current rate-limit window
    failures       BIGINT NOT NULL DEFAULT 0,
    failures_since BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);

-- Single-use recovery codes, stored as SHA-256 (80 bits of entropy each).
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE groups (
    id                      TEXT PRIMARY KEY,
    display_name            TEXT NOT NULL,
    -- group names are unique case-insensitively, so provisioning tools can match groups by name
    display_name_normalized TEXT NOT NULL UNIQUE,
    attributes              TEXT NOT NULL DEFAULT '{}',
    version                 BIGINT NOT NULL DEFAULT 1,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_id ON group_members (user_id);
