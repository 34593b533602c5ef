-- Shared by the benchmark's wrk scripts (tether-bench runs them; see
-- bench/README.md). Settings come from the environment, since wrk's
-- script arguments reach only init():
--   BENCH_ERA       "session" (MCP 2025-11-25 on sessions), "stateless"
--                   (MCP 2025-11-25 without sessions, `--stateless`) or
--                   "2026-07-28"
--   BENCH_SESSIONS  session-era: session ids, comma separated; thread i
--                   (from 1) uses id ((i - 1) % n) + 1
--   BENCH_EXPECT    the text an answer must carry ("text":"<it>")
--
-- Each thread counts the answers it checked; done() prints one line,
-- "BENCH_RESULT {json}", that the runner reads.

local M = {}

M.era = os.getenv("BENCH_ERA") or "2026-07-28"

function M.meta()
  return '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    .. '"io.modelcontextprotocol/clientCapabilities":{"sampling":{}},'
    .. '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"4.1"}}'
end

-- The headers of a tools/call of `tool` in this thread's era.
function M.headers(tool)
  local h = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
  }
  if M.era == "session" then
    h["Mcp-Session-Id"] = sid
    h["MCP-Protocol-Version"] = "2025-11-25"
  elseif M.era == "stateless" then
    h["MCP-Protocol-Version"] = "2025-11-25"
  else
    h["MCP-Protocol-Version"] = "2026-07-28"
    h["Mcp-Method"] = "tools/call"
    h["Mcp-Name"] = tool
  end
  return h
end

-- The params of a tools/call: name, arguments (JSON text), and in the new
-- era the request's _meta plus `extra` (JSON members, or nil).
function M.params(tool, args, extra)
  local p = '{"name":"' .. tool .. '","arguments":' .. args
  if M.era == "2026-07-28" then
    if extra then
      p = p .. "," .. extra
    end
    p = p .. "," .. M.meta()
  end
  return p .. "}"
end

local threads = {}
local counter = 1

function M.setup(thread)
  local ids = {}
  for id in string.gmatch(os.getenv("BENCH_SESSIONS") or "", "[^,]+") do
    table.insert(ids, id)
  end
  if #ids > 0 then
    thread:set("sid", ids[((counter - 1) % #ids) + 1])
  end
  thread:set("ok", 0)
  thread:set("bad", 0)
  thread:set("first_bad", "")
  counter = counter + 1
  table.insert(threads, thread)
end

-- Counts an answer of this thread: good, or bad (keeping the first).
function M.count(good, status, body)
  if good then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then
      first_bad = "HTTP " .. tostring(status) .. ": " .. string.sub(body or "", 1, 300)
    end
  end
end

local function quote(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function M.done(summary, latency, requests)
  local ok, bad, first = 0, 0, ""
  for _, t in ipairs(threads) do
    ok = ok + t:get("ok")
    bad = bad + t:get("bad")
    if first == "" then
      first = t:get("first_bad")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us":%d,"requests":%d,"ok":%d,"bad":%d,'
      .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
      .. '"p50_us":%d,"p99_us":%d,"mean_us":%.1f,"first_bad":%s}\n',
    summary.duration, summary.requests, ok, bad,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, quote(first)))
end

return M
