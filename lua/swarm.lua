-- swarm.lua: small helpers for swarm scripts, built into hswarm (require("swarm")).
-- Everything here uses only the public ctx API; it is plain Lua any agent could have written.
local swarm = {}

-- Sends one value to many agents: a string is written to the shared arena once and every
-- recipient gets the same handle (zero-copy fan-out). Returns the number of messages sent.
function swarm.broadcast(ctx, ids, value)
  local h = value
  if type(value) == "string" or type(value) == "number" then
    h = ctx.memory.write(value)
  end
  for i = 1, #ids do ctx.send(ids[i], h) end
  if h ~= value then ctx.memory.release(h) end
  return #ids
end

-- Takes n messages that are not exit notices; returns them in arrival order. Exit notices that
-- arrive meanwhile are kept in `notices` (a table, optional) so that nothing is lost.
function swarm.gather(ctx, n, notices)
  local got = {}
  while #got < n do
    local m = ctx.recv()
    if m.exit then
      if notices then notices[#notices + 1] = m end
    else
      got[#got + 1] = m
    end
  end
  return got
end

-- The most frequent value of a list (values compared as strings); ties go to the smallest value
-- in string order, so every agent that sees the same votes decides the same way.
-- Returns the value (a string) and its count.
function swarm.majority(values)
  local counts = {}
  for i = 1, #values do
    local v = tostring(values[i])
    counts[v] = (counts[v] or 0) + 1
  end
  local best, count = nil, 0
  for v, c in pairs(counts) do
    if c > count or (c == count and v < best) then best, count = v, c end
  end
  return best, count
end

return swarm
