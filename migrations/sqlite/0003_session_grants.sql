-- Logout revokes every grant made in the session: find them through the codes that started them.
CREATE INDEX auth_codes_session_id ON auth_codes (session_id);
CREATE INDEX auth_codes_grant_id ON auth_codes (grant_id);
