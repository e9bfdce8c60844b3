-- Password sign-in attempts, for audit; purged 30 days after they were made.
CREATE TABLE login_attempts (
    id BIGSERIAL PRIMARY KEY,
    username_hash TEXT NOT NULL,
    ip TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_attempts_by_name ON login_attempts (username_hash, at);
CREATE INDEX login_attempts_by_age ON login_attempts (at);
