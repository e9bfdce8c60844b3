-- Refresh tokens (RFC 6749 §6) rotated on every use and linked in a family: the grant id of the
-- authorization code they descend from, shared with the family's access tokens in `tokens`.
CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    session_id  TEXT,
    auth_time   INTEGER NOT NULL,
    acr         TEXT NOT NULL,
    amr         TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    -- set when the token was exchanged for its successor; presenting it again is reuse
    rotated_at  INTEGER,
    -- hash of the successor, so a grace-window retry can replace a successor the client never got
    replaced_by TEXT,
    grace_used  INTEGER NOT NULL DEFAULT 0,
    revoked_at  INTEGER
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- Audit trail of detected refresh-token reuse (RFC 9700 §4.14.2).
CREATE TABLE refresh_token_reuse (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    family_id   TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    detected_at INTEGER NOT NULL
);
