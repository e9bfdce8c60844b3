-- Passkeys (WebAuthn credentials, issue 18). A credential id belongs to one user (WebAuthn §7.1
-- step 26). `credential` is the WebAuthn library's record (public key, counter, flags) as JSON;
-- `sign_count` repeats its counter so that a use can be refused in the same statement when the
-- counter did not grow.
CREATE TABLE passkeys (
    credential_id TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    sign_count    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_by_user ON passkeys (user_id, created_at);
