//! The Lua scripts behind every multi-key or conditional write. A script runs atomically on the
//! server, which is what makes "exactly one concurrent redemption (or rotation) wins" hold, and
//! it keeps a record and the sets that index it in step.
//!
//! Every script gets the key prefix as `ARGV[1]` and builds its key names from it with `k`, so
//! the layout lives in [`PRELUDE`] (and in `RedisStore::key` for plain reads). Scripts name keys
//! that are not in `KEYS`: fine on a standalone Redis, not on Redis Cluster.

use std::sync::LazyLock;

use redis::Script;

/// Helpers every script starts with.
///
/// A record is a hash under `{prefix}{kind}:{id}` (`code`, `token`, `refresh`, `artifact`). It is
/// listed by id in the sorted set `{prefix}expiry:{kind}`, scored by `expires_at`, for the purge,
/// and in the index sets of [`INDEXES`] named after its owners (`{prefix}grant-codes:{grant_id}`,
/// …). An index set may hold ids whose record is gone (Redis expired it): readers check the
/// record still names the owner (`owned`) and prune what does not.
const PRELUDE: &str = r#"
local P = ARGV[1]

local function k(kind, id)
  if id then return P .. kind .. ':' .. id end
  return P .. kind
end

-- The sets listing a record, each named after the value of one of its fields.
local INDEXES = {
  code = {{'grant-codes', 'grant_id'}, {'user-codes', 'user_id'}, {'session-codes', 'session_id'}},
  token = {{'grant-tokens', 'grant_id'}, {'user-tokens', 'user_id'}},
  refresh = {{'grant-refresh', 'family_id'}, {'user-refresh', 'user_id'},
             {'session-refresh', 'session_id'}},
  artifact = {{'user-artifacts', 'user_id'}},
}

local function indexes_of(kind, id)
  local key, sets = k(kind, id), {}
  for _, index in ipairs(INDEXES[kind]) do
    local owner = redis.call('HGET', key, index[2])
    if owner then sets[#sets + 1] = k(index[1], owner) end
  end
  return sets
end

-- Makes `key` live at least until Unix time `at`; `wall` is the current time.
local function keep_until(key, at, wall)
  local ttl = redis.call('TTL', key)
  if ttl < 0 or wall + ttl < at then redis.call('EXPIREAT', key, at) end
end

-- Stores a new record of `kind` from ARGV[i..]: id, expires_at, retain_until (when Redis may
-- drop it), wall-clock now, then field/value pairs to the end. The caller has checked the id is
-- free.
local function insert(kind, i)
  local id, expires_at, retain_until = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local wall = tonumber(ARGV[i + 3])
  local key = k(kind, id)
  redis.call('HSET', key, unpack(ARGV, i + 4))
  redis.call('EXPIREAT', key, retain_until)
  redis.call('ZADD', k('expiry', kind), expires_at, id)
  for _, set in ipairs(indexes_of(kind, id)) do
    redis.call('SADD', set, id)
    keep_until(set, retain_until, wall)
  end
end

-- Deletes a record with its index and expiry entries; 1 if it existed.
local function remove(kind, id)
  redis.call('ZREM', k('expiry', kind), id)
  local key = k(kind, id)
  if redis.call('EXISTS', key) == 0 then return 0 end
  for _, set in ipairs(indexes_of(kind, id)) do redis.call('SREM', set, id) end
  if kind == 'token' then
    local jti = redis.call('HGET', key, 'jti')
    if jti then redis.call('DEL', k('jti', jti)) end
  end
  redis.call('DEL', key)
  return 1
end

-- Ids in index `set` whose record still has `field` = `owner`; drops the others from the set.
local function owned(set, kind, field, owner)
  local ids = {}
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    if redis.call('HGET', k(kind, id), field) == owner then
      ids[#ids + 1] = id
    else
      redis.call('SREM', set, id)
    end
  end
  return ids
end

-- Sets `field` (revoked_at, consumed_at) of an existing record unless set; 1 if it changed.
local function mark(key, field, now)
  if redis.call('EXISTS', key) == 1 and redis.call('HEXISTS', key, field) == 0 then
    redis.call('HSET', key, field, now)
    return 1
  end
  return 0
end
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Inserts a code (`ARGV[2]` = `code`) or refresh token (`refresh`) from `ARGV[3..]`; an error
/// if the hash is taken, as the SQL primary key would.
pub(super) static INSERT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local kind = ARGV[2]
if redis.call('EXISTS', k(kind, ARGV[3])) == 1 then
  return redis.error_reply(kind .. ' already stored')
end
insert(kind, 3)
return 1
"#,
    )
});

/// Inserts an access token (`ARGV[3..]`) whose jti is `ARGV[2]`: hash and jti are unique, like
/// the SQL table's keys. `{prefix}jti:{jti}` holds the token hash for as long as the token.
pub(super) static INSERT_TOKEN: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local jti = k('jti', ARGV[2])
if redis.call('EXISTS', k('token', ARGV[3])) == 1 or redis.call('EXISTS', jti) == 1 then
  return redis.error_reply('token hash or jti already stored')
end
insert('token', 3)
redis.call('SET', jti, ARGV[3])
redis.call('EXPIREAT', jti, ARGV[5])
return 1
"#,
    )
});

/// Redeems code `ARGV[2]` at `ARGV[3]`: `{'redeemed', field, value, …}` once, then
/// `{'replay', grant_id}`; `{'invalid'}` when unknown, or expired and never redeemed.
pub(super) static REDEEM_CODE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local key = k('code', ARGV[2])
local state = redis.call('HMGET', key, 'grant_id', 'consumed_at', 'expires_at')
if not state[1] then return {'invalid'} end
if state[2] then return {'replay', state[1]} end
if tonumber(state[3]) <= tonumber(ARGV[3]) then return {'invalid'} end
redis.call('HSET', key, 'consumed_at', ARGV[3])
local code = redis.call('HGETALL', key)
table.insert(code, 1, 'redeemed')
return code
"#,
    )
});

/// Revokes access token `ARGV[2]` at `ARGV[3]` unless revoked already.
pub(super) static REVOKE_TOKEN: LazyLock<Script> =
    LazyLock::new(|| script("return mark(k('token', ARGV[2]), 'revoked_at', ARGV[3])"));

/// Revokes the access and refresh tokens of grant `ARGV[2]` at `ARGV[3]` and burns its
/// unredeemed codes; returns how many records changed.
pub(super) static REVOKE_GRANT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local grant, now, changed = ARGV[2], ARGV[3], 0
for _, id in ipairs(owned(k('grant-tokens', grant), 'token', 'grant_id', grant)) do
  changed = changed + mark(k('token', id), 'revoked_at', now)
end
for _, id in ipairs(owned(k('grant-refresh', grant), 'refresh', 'family_id', grant)) do
  changed = changed + mark(k('refresh', id), 'revoked_at', now)
end
for _, id in ipairs(owned(k('grant-codes', grant), 'code', 'grant_id', grant)) do
  changed = changed + mark(k('code', id), 'consumed_at', now)
end
return changed
"#,
    )
});

/// Ends what user `ARGV[2]` holds at `ARGV[3]`: revokes their tokens and refresh tokens, burns
/// their unredeemed codes, deletes their artifacts.
pub(super) static END_USER_ACCESS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local user, now = ARGV[2], ARGV[3]
for _, id in ipairs(owned(k('user-tokens', user), 'token', 'user_id', user)) do
  mark(k('token', id), 'revoked_at', now)
end
for _, id in ipairs(owned(k('user-refresh', user), 'refresh', 'user_id', user)) do
  mark(k('refresh', id), 'revoked_at', now)
end
for _, id in ipairs(owned(k('user-codes', user), 'code', 'user_id', user)) do
  mark(k('code', id), 'consumed_at', now)
end
for _, id in ipairs(owned(k('user-artifacts', user), 'artifact', 'user_id', user)) do
  remove('artifact', id)
end
return 1
"#,
    )
});

/// Rotates refresh token `ARGV[2]` at `ARGV[3]` into the new token of `ARGV[4..]`: 1 if the old
/// one was live and unrotated (and is now rotated, the new one stored), else 0 and nothing
/// written. A taken new hash is an error, as in SQL, where the insert fails and rolls back.
pub(super) static ROTATE_REFRESH: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local old, now, new = k('refresh', ARGV[2]), ARGV[3], ARGV[4]
local s = redis.call('HMGET', old, 'expires_at', 'rotated_at', 'revoked_at')
if not s[1] or s[2] or s[3] or tonumber(s[1]) <= tonumber(now) then return 0 end
if redis.call('EXISTS', k('refresh', new)) == 1 then
  return redis.error_reply('refresh already stored')
end
redis.call('HSET', old, 'rotated_at', now, 'replaced_by', new)
insert('refresh', 4)
return 1
"#,
    )
});

/// The grace-window retry: if refresh token `ARGV[2]` has not used its grace, is not revoked,
/// was rotated at or after `ARGV[3]` and its successor is neither rotated nor revoked, revokes
/// the successor at `ARGV[4]`, points the token at the new one of `ARGV[5..]` and stores it.
pub(super) static REPLACE_SUCCESSOR: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local old, since, now, new = k('refresh', ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local s = redis.call('HMGET', old, 'expires_at', 'grace_used', 'revoked_at', 'rotated_at',
                     'replaced_by')
if not s[1] or s[2] or s[3] or not s[4] or tonumber(s[4]) < since or not s[5] then return 0 end
local successor = k('refresh', s[5])
local t = redis.call('HMGET', successor, 'expires_at', 'rotated_at', 'revoked_at')
if not t[1] or t[2] or t[3] then return 0 end
if redis.call('EXISTS', k('refresh', new)) == 1 then
  return redis.error_reply('refresh already stored')
end
redis.call('HSET', old, 'grace_used', '1', 'replaced_by', new)
redis.call('HSET', successor, 'revoked_at', now)
-- The access token issued with the replaced successor: the family's, issued since the old
-- token's rotation (the retry's own is stored after this).
local family = redis.call('HGET', old, 'family_id')
for _, id in ipairs(owned(k('grant-tokens', family), 'token', 'grant_id', family)) do
  local issued = redis.call('HGET', k('token', id), 'issued_at')
  if issued and tonumber(issued) >= tonumber(s[4]) then mark(k('token', id), 'revoked_at', now) end
end
insert('refresh', 5)
return 1
"#,
    )
});

/// The distinct grants of SSO session `ARGV[2]`, through its codes and refresh tokens.
pub(super) static GRANTS_OF_SESSION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local session, seen, grants = ARGV[2], {}, {}
for _, source in ipairs({{'session-codes', 'code', 'grant_id'},
                         {'session-refresh', 'refresh', 'family_id'}}) do
  for _, id in ipairs(owned(k(source[1], session), source[2], 'session_id', session)) do
    local grant = redis.call('HGET', k(source[2], id), source[3])
    if grant and not seen[grant] then
      seen[grant] = true
      grants[#grants + 1] = grant
    end
  end
end
return grants
"#,
    )
});

/// The families of user `ARGV[2]`'s unrevoked refresh tokens: a flat list of family id and
/// session id (empty when there is none), one pair per token.
pub(super) static REFRESH_GRANTS_OF_USER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local user, found = ARGV[2], {}
for _, id in ipairs(owned(k('user-refresh', user), 'refresh', 'user_id', user)) do
  local fields = redis.call('HMGET', k('refresh', id), 'family_id', 'session_id', 'revoked_at')
  if fields[1] and not fields[3] then
    found[#found + 1] = fields[1]
    found[#found + 1] = fields[2] or ''
  end
end
return found
"#,
    )
});

/// Upserts artifact `ARGV[2]` (`{kind}:{id_hash}`, the record tail of [`PRELUDE`]'s `insert`).
pub(super) static PUT_ARTIFACT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
remove('artifact', ARGV[2])
insert('artifact', 2)
return 1
"#,
    )
});

/// The artifacts of user `ARGV[2]` whose id starts with `ARGV[3]` (`{kind}:`) and that are live
/// at `ARGV[4]`: a flat list of id hash, payload, id hash, payload, …
pub(super) static USER_ARTIFACTS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local user, kind, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local found = {}
for _, id in ipairs(owned(k('user-artifacts', user), 'artifact', 'user_id', user)) do
  if string.sub(id, 1, #kind) == kind then
    local fields = redis.call('HMGET', k('artifact', id), 'payload', 'expires_at')
    if fields[1] and tonumber(fields[2]) > now then
      found[#found + 1] = string.sub(id, #kind + 1)
      found[#found + 1] = fields[1]
    end
  end
end
return found
"#,
    )
});

/// Deletes artifact `ARGV[2]`; 1 if it existed.
pub(super) static DELETE_ARTIFACT: LazyLock<Script> =
    LazyLock::new(|| script("return remove('artifact', ARGV[2])"));

/// Deletes up to `ARGV[4]` records of each kind that expired before the cut-off: `ARGV[3]` for
/// codes, `ARGV[2]` for the rest. Returns how many records went.
pub(super) static PURGE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local purged = 0
for _, cut in ipairs({{'code', ARGV[3]}, {'token', ARGV[2]}, {'refresh', ARGV[2]},
                      {'artifact', ARGV[2]}}) do
  local ids = redis.call('ZRANGEBYSCORE', k('expiry', cut[1]), '-inf', '(' .. cut[2],
                         'LIMIT', 0, ARGV[4])
  -- Every entry counts, also one whose record Redis already expired: a purge round goes on
  -- while batches find anything in the expiry index.
  for _, id in ipairs(ids) do
    remove(cut[1], id)
    purged = purged + 1
  end
end
return purged
"#,
    )
});

/// Adds signing key `ARGV[2]` (JSON `ARGV[3]`) after every other; 0 if the kid is taken.
pub(super) static INSERT_SIGNING_KEY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if redis.call('HEXISTS', k('signing-keys'), ARGV[2]) == 1 then return 0 end
redis.call('HSET', k('signing-keys'), ARGV[2], ARGV[3])
redis.call('ZADD', k('signing-key-order'), redis.call('INCR', k('signing-key-seq')), ARGV[2])
return 1
"#,
    )
});

/// Every signing key's JSON, in insertion order.
pub(super) static SIGNING_KEYS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local kids = redis.call('ZRANGE', k('signing-key-order'), 0, -1)
if #kids == 0 then return {} end
return redis.call('HMGET', k('signing-keys'), unpack(kids))
"#,
    )
});

/// Deletes signing key `ARGV[2]`.
pub(super) static DELETE_SIGNING_KEY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
redis.call('HDEL', k('signing-keys'), ARGV[2])
redis.call('ZREM', k('signing-key-order'), ARGV[2])
return 1
"#,
    )
});
