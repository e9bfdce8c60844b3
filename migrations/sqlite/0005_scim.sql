-- SCIM 2.0 (RFC 7643): users carry every SCIM attribute Tessera does not keep in a column as one
-- JSON object under canonical attribute names (extension attributes under their schema URN), and
-- a version for ETags (RFC 7644 §3.14). The OIDC profile columns move into that object.
ALTER TABLE users ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
UPDATE users SET attributes = json_patch('{}', json_object(
    'name', CASE WHEN given_name IS NULL AND family_name IS NULL THEN NULL
                 ELSE json_patch('{}', json_object('givenName', given_name, 'familyName', family_name))
            END,
    'emails', CASE WHEN email IS NULL THEN NULL
                   ELSE json_array(json_object('value', email, 'primary', json('true')))
              END));
ALTER TABLE users DROP COLUMN email;
ALTER TABLE users DROP COLUMN given_name;
ALTER TABLE users DROP COLUMN family_name;

CREATE TABLE groups (
    id                      TEXT PRIMARY KEY,
    display_name            TEXT NOT NULL,
    -- group names are unique case-insensitively, so provisioning tools can match groups by name
    display_name_normalized TEXT NOT NULL UNIQUE,
    attributes              TEXT NOT NULL DEFAULT '{}',
    version                 INTEGER NOT NULL DEFAULT 1,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_id ON group_members (user_id);

-- Deactivating or deleting a user revokes everything they hold: find it by user.
CREATE INDEX tokens_user_id ON tokens (user_id);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
ALTER TABLE artifacts ADD COLUMN user_id TEXT;
CREATE INDEX artifacts_user_id ON artifacts (user_id);
CREATE INDEX auth_codes_user_id ON auth_codes (user_id);

-- Sessions started before this migration: give them their user, so deactivation ends them too.
UPDATE artifacts SET user_id = json_extract(payload, '$.user_id') WHERE kind = 'session';
-- An account deactivated before SCIM existed shows as inactive.
UPDATE users SET attributes = json_set(attributes, '$.active', json('false')) WHERE active = 0;
