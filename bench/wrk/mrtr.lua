-- The MRTR sampling round trip of MCP 2026-07-28: tools/call `ask_model`
-- {question: "q<n>"}; the answer must be resultType "input_required"
-- asking one key; the next request on the connection is the retry, with
-- inputResponses {key: the sampled answer "a:q<n>"} and the requestState
-- sent (if any); its answer must be complete with the text "a:q<n>".
-- A round trip is two requests; `ok` counts completed round trips.
--
-- Exact only with one connection per thread (-c equal to -t): wrk's
-- response() does not say which connection answered, and the next
-- request() of this thread must be that connection's retry.
package.path = (os.getenv("BENCH_WRK_DIR") or ".") .. "/?.lua;" .. package.path
local m = require("common")

local n = 0
local retry = nil -- {key, state} while a retry is due

setup = m.setup
done = m.done

local function body(extra)
  return '{"jsonrpc":"2.0","id":' .. (retry and 2 or 1)
    .. ',"method":"tools/call","params":'
    .. m.params("ask_model", '{"question":"q' .. n .. '"}', extra) .. "}"
end

function request()
  local extra = nil
  if retry then
    extra = '"inputResponses":{"' .. retry.key
      .. '":{"role":"assistant","content":{"type":"text","text":"a:q' .. n
      .. '"},"model":"bench"}}'
    if retry.state then
      extra = extra .. ',"requestState":"' .. retry.state .. '"'
    end
  end
  return wrk.format("POST", nil, m.headers("ask_model"), body(extra))
end

function response(status, headers, body)
  if retry == nil then
    local key = status == 200
      and string.find(body, '"resultType":"input_required"', 1, true)
      and string.match(body, '"inputRequests":{"([^"]+)":{"method":"sampling/createMessage"')
    if key then
      retry = { key = key, state = string.match(body, '"requestState":"([^"]+)"') }
    else
      m.count(false, status, body)
      n = n + 1
    end
  else
    retry = nil
    m.count(status == 200
      and string.find(body, '"resultType":"complete"', 1, true) ~= nil
      and string.find(body, '"text":"a:q' .. n .. '"', 1, true) ~= nil,
      status, body)
    n = n + 1
  end
end
