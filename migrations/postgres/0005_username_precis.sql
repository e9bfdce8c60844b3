-- User names are unique and looked up by their RFC 8265 (PRECIS UsernameCaseMapped) form from
-- now on. SQL cannot compute it: Tessera re-keys `users.username_normalized` once at start-up
-- (store::sql::users::fold_stored_usernames) and records that here.
CREATE TABLE data_migrations (
    name TEXT PRIMARY KEY,
    applied_at BIGINT NOT NULL
);
