-- latency.lua: one-way delivery latency between two agents, passing a handle back and forth.
-- The pinger writes one 64-byte blob, then sends its handle N times; the ponger sends back the
-- handle it received (m.data:handle()), so no payload is ever copied. The harness's latency probe
-- times every send-to-take. Args: N, kind.
local ponger = [[
function main(ctx, args)
  while true do
    local m = ctx.recv()
    if #m.data == 4 then return end -- "stop"
    ctx.send(m.from, m.data:handle())
  end
end
]]
function main(ctx, args)
  local n, kind = tonumber(args[1]), args[2]
  local peer = ctx.spawn(ponger, nil, {kind = kind, team = 2})
  local h = ctx.memory.write(string.rep("x", 64))
  for _ = 1, n do
    ctx.send(peer, h)
    ctx.recv()
  end
  ctx.send(peer, "stop")
  return n
end
