-- verify.lua: command verifiers for swarm scripts (require("verify")), over the runtime
-- operation "verify" (hswarm/verify.h; `hswarm run` and `hswarm demo` provide it).
--
--   local verify = require("verify")
--   local r = verify.command(ctx, {cmd = "make test", workdir = "/path/to/project",
--                                  files = {["src/add.c"] = new_text}, time_limit = 30})
--   -- r = {passed = bool, exit_code = n, signal = n, timed_out = bool, truncated = bool,
--   --      seconds = s, sandbox = "what could not be isolated, or empty", output = "..."}
--
-- The command runs in a private copy of workdir with files written over it, limited in time,
-- CPU, memory, processes and output, without network where the system allows it.
-- verify.checker(ctx, spec, to_files) makes a team verify function: to_files(candidate) gives the
-- files to write; ok is the command passing, score 1 or 0, feedback the command's output.
local verify = {}

local function encode(v)
  local t = type(v)
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      local map = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\t'] = '\\t', ['\r'] = '\\r'}
      return map[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
  elseif t == "number" or t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys) -- a deterministic request
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = encode(k) .. ":" .. encode(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("verify: cannot send a " .. t)
end
verify.encode = encode

function verify.command(ctx, spec)
  local res, err = ctx.call("verify", encode(spec))
  if not res then return nil, err end
  res = tostring(res)
  local head, sandbox, output = res:match("^([^\n]*)\n([^\n]*)\n(.*)$")
  local p, e, s, t, tr, sec = head:match("^(%d) (%-?%d+) (%d+) (%d) (%d) ([%d.]+)$")
  return {passed = p == "1", exit_code = tonumber(e), signal = tonumber(s), timed_out = t == "1",
          truncated = tr == "1", seconds = tonumber(sec), sandbox = sandbox, output = output}
end

function verify.checker(ctx, spec, to_files)
  return function(candidate)
    local req = {}
    for k, v in pairs(spec) do req[k] = v end
    req.files = to_files(candidate)
    local r, err = verify.command(ctx, req)
    if not r then return false, 0, "verification failed to run: " .. tostring(err) end
    return r.passed, r.passed and 1 or 0, r.output
  end
end

return verify
