-- One request shape for every wrk scenario: `wrk ... -s bench/request.lua URL -- METHOD BODY
-- [HEADER: VALUE ...]`. `done` prints one JSON line the runner parses (latencies in µs).
function init(args)
  wrk.method = args[1]
  if args[2] ~= "" then wrk.body = args[2] end
  for i = 3, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_us": %d, "p99_us": %d, "non_2xx": %d, ' ..
    '"socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
