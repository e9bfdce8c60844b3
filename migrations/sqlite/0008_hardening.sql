-- Per-client settings of the hardening round: the resource servers a client is (RFC 7662 §4
-- introspection of other clients' access tokens) and its own token lifetimes (NULL: the server's).
ALTER TABLE clients ADD COLUMN resource_servers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN access_token_seconds INTEGER;
ALTER TABLE clients ADD COLUMN refresh_token_seconds INTEGER;

-- Second-factor attempts since the last success, whatever the window: at 100 the factor locks
-- until an administrator resets it (NIST SP 800-63B §5.2.2).
ALTER TABLE user_totp ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
