-- wrk script: POST /v1/failures with the lines of the standard 10k-failure stream, in turn.
-- Usage (see benches/serve_load.sh): wrk -s benches/serve_load.lua URL -- STREAM [TOKEN] [fresh]
-- With "fresh", every pass over the stream renames its tasks (`-p1`, `-p2`, ...): each request
-- is then a new failure the server decides and logs, not a repeat of one it has decided.
local lines = {}
local n = 0
local i = 0
local pass = 0
local fresh = false
local token = nil

function init(args)
  local path = args[1] or "../shared/data/bench/stream_10k.jsonl"
  token = args[2]
  if token == "" then token = nil end
  fresh = args[3] == "fresh"
  for line in io.lines(path) do
    if #line > 0 then
      n = n + 1
      lines[n] = line
    end
  end
  -- Threads start at different places in the stream.
  i = math.random(n) - 1
end

function request()
  i = i % n + 1
  if i == 1 then pass = pass + 1 end
  local headers = { ["Content-Type"] = "application/json" }
  if token then headers["Authorization"] = "Bearer " .. token end
  local body = lines[i]
  if fresh then
    body = string.gsub(body, '"task_id":%s*"([^"]*)"', '"task_id":"%1-p' .. pass .. '"')
  end
  return wrk.format("POST", "/v1/failures", headers, body)
end

local errors = 0
function response(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
    if errors <= 3 then io.stderr:write("non-200: " .. status .. " " .. body .. "\n") end
  end
end
