-- Scenarios whose requests each use a one-time value (a code, a refresh token, a sign-in
-- interaction), and the steps that mint those values beforehand.
--
--   wrk ... -s bench/flows.lua URL -- MODE ARGS...
--
--   collect PATTERN OUT HEADER...   GET URL; saves PATTERN's capture from each Location to OUT.<n>
--   exchange IN OUT BODY HEADER...  POST one code of IN per request, BODY followed by &code=…;
--                                   saves each new refresh token to OUT.<n>
--   refresh IN BODY HEADER...       POST a refresh token of IN, BODY followed by &refresh_token=…;
--                                   each answer's new refresh token is used again (rotation)
--   login IN BODY HEADER...         POST a sign-in interaction of IN, BODY followed by
--                                   &interaction=…; success is a redirect carrying a code
--
-- Thread n of N takes lines n, n+N, n+2N… of IN, so no value is used twice. `done` prints the
-- same JSON line as request.lua, counting every answer that is not the expected one as an error.

local threads = {}
local counter = 0

-- wrk runs each thread's init right after its setup, before the next thread exists, so the
-- thread count comes from the runner (WRK_THREADS) rather than from counting setups.
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local function add_headers(args, from)
  for i = from, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
end

-- This thread's values: its share of the lines of `path`, used first in first out.
local queue, head, tail = {}, 1, 0
local function push(value)
  tail = tail + 1
  queue[tail] = value
end
local function pop()
  local value = queue[head]
  if value then queue[head] = nil; head = head + 1 end
  return value or ""
end
local function take_share(path)
  local total = tonumber(os.getenv("WRK_THREADS"))
  local line_no = 0
  for line in io.lines(path) do
    if line_no % total == id - 1 then push(line) end
    line_no = line_no + 1
  end
end

local out
local function save(value)
  out:write(value, "\n")
  out:flush()
end

ok, failed = 0, 0
local mode, pattern, body

function init(args)
  mode = args[1]
  if mode == "collect" then
    pattern = args[2]
    out = io.open(args[3] .. "." .. id, "w")
    add_headers(args, 4)
  elseif mode == "exchange" then
    take_share(args[2])
    out = io.open(args[3] .. "." .. id, "w")
    body = args[4]
    add_headers(args, 5)
  else
    take_share(args[2])
    body = args[3]
    add_headers(args, 4)
  end
end

function request()
  if mode == "collect" then
    return wrk.format("GET")
  end
  local field = ({ exchange = "code", refresh = "refresh_token", login = "interaction" })[mode]
  return wrk.format("POST", nil, nil, body .. "&" .. field .. "=" .. pop())
end

function response(status, headers, response_body)
  if mode == "collect" or mode == "login" then
    local location = headers["Location"] or headers["location"]
    local value = location and location:match(pattern or "[?&]code=([^&]+)")
    if status >= 300 and status < 400 and value then
      ok = ok + 1
      if out then save(value) end
    else
      failed = failed + 1
    end
    return
  end
  local token = response_body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if status == 200 and token then
    ok = ok + 1
    if mode == "refresh" then push(token) else save(token) end
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("failed") end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_us": %d, "p99_us": %d, "non_2xx": %d, ' ..
    '"socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    bad, errors.connect + errors.read + errors.write + errors.timeout))
end
