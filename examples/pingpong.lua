-- pingpong.lua: two agents pass a message back and forth.
-- The first agent spawns a ponger (as Lua source text, an isolated agent), sends it "ping" N
-- times and waits for each "pong". Usage: hswarm run examples/pingpong.lua [N]
local ponger = [[
function main(ctx, args)
  while true do
    local m = ctx.recv()
    if tostring(m.data) == "stop" then return "ponger done" end
    ctx.send(m.from, "pong " .. m.data:sub(6))
  end
end
]]

function main(ctx, args)
  local n = tonumber(args[1]) or 10
  local peer = ctx.spawn(ponger)
  for i = 1, n do
    ctx.send(peer, "ping " .. i)
    local m = ctx.recv()
    assert(tostring(m.data) == "pong " .. i, "unexpected reply: " .. tostring(m.data))
  end
  ctx.send(peer, "stop")
  local result = ctx.join(peer)
  ctx.log("ponger said: " .. tostring(result) .. ", at step " .. ctx.now() .. ", clock " .. ctx.clock())
  return n .. " round trips"
end
