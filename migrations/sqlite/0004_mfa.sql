-- TOTP (RFC 6238) per user. The seed is stored sealed (JWE, dir + A256GCM, key from configuration).
CREATE TABLE user_totp (
    user_id        TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_sealed  TEXT NOT NULL,
    -- 0 while enrollment waits for its first valid code
    confirmed      INTEGER NOT NULL DEFAULT 0,
    -- the newest time step a code was accepted for: codes of that step or older are replays
    last_used_step INTEGER NOT NULL DEFAULT 0,
    -- wrong codes in the current rate-limit window
    failures       INTEGER NOT NULL DEFAULT 0,
    failures_since INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

-- Single-use recovery codes, stored as SHA-256 (80 bits of entropy each).
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);
