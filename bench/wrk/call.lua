-- tools/call `echo` with the text "bench", on sessions (BENCH_ERA=session,
-- BENCH_SESSIONS), without them (BENCH_ERA=stateless: 2025-11-25 requests
-- to a --stateless server, one request sent again and again) or as MCP
-- 2026-07-28 requests; every answer must be a
-- 200 carrying "text":"<BENCH_EXPECT>" (and, new era, resultType
-- "complete"). New era: one request built per thread, sent again and
-- again. On sessions each request needs an id of its own (a session's
-- requests in flight must differ): the id counts up per thread (each
-- thread has a session of its own).
-- BENCH_TOOL=counter calls the demo `counter` instead (sessions only: each
-- call changes the session's durable state), and an answer must carry its
-- structured count.
package.path = (os.getenv("BENCH_WRK_DIR") or ".") .. "/?.lua;" .. package.path
local m = require("common")

local tool = os.getenv("BENCH_TOOL") or "echo"
local expect = '"text":"' .. (os.getenv("BENCH_EXPECT") or "bench") .. '"'
local tool_args = '{"text":"bench"}'
if tool == "counter" then
  expect = '"structuredContent":{"count":'
  tool_args = "{}"
end
local complete = m.era ~= "2026-07-28" or os.getenv("BENCH_EXPECT") == "bare"
local req, headers, params
local id = 0

setup = m.setup
done = m.done

function init(args)
  headers = m.headers(tool)
  params = m.params(tool, tool_args)
  req = wrk.format("POST", nil, headers,
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' .. params .. "}")
end

function request()
  if m.era ~= "session" then
    return req
  end
  id = id + 1
  return wrk.format("POST", nil, headers,
    '{"jsonrpc":"2.0","id":' .. id .. ',"method":"tools/call","params":' .. params .. "}")
end

function response(status, headers, body)
  m.count(status == 200 and string.find(body, expect, 1, true) ~= nil
    and (complete or string.find(body, '"resultType":"complete"', 1, true) ~= nil),
    status, body)
end
