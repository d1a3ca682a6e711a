-- fanout.lua: fan-out and fan-in with light agents. The root spawns W light workers, then:
--   rounds: R times, one multicast ctx.send(ids, handle) to every worker (fan-out), then W
--           replies taken (fan-in); each worker answers every message with the handle it got;
--   burst:  B multicasts in a row to every worker (W x B messages enqueued), then every worker
--           takes its B messages in one activation and answers once; the root takes W answers.
-- Marks let the harness time each phase. Args: W, R, B.
local worker = [[
function main(ctx, args)
  local parent = ctx.parent
  while true do
    local m = ctx.recv()
    local n = #m.data
    if n == 4 then return end                          -- "stop"
    if n == 5 then                                     -- "burst": take the rest, answer once
      local got = 1
      while got < args do ctx.recv() got = got + 1 end
      ctx.send(parent, got)
    else
      ctx.send(parent, m.data:handle())
    end
  end
end
]]
function main(ctx, args)
  local w, r, b = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
  local ids = {}
  for i = 1, w do ids[i] = ctx.spawn(worker, b, {kind = "light", team = 2}) end
  local h = ctx.memory.write(string.rep("y", 64))
  ctx.sleep(1) -- let every worker start and block
  ctx.call("mark", "rounds")
  for _ = 1, r do
    ctx.send(ids, h)
    for _ = 1, w do ctx.recv() end
  end
  ctx.call("mark", "burst")
  local burst = ctx.memory.write("burst")
  for _ = 1, b do ctx.send(ids, burst) end
  ctx.call("mark", "sent")
  for _ = 1, w do ctx.recv() end
  ctx.call("mark", "end")
  ctx.send(ids, "stop")
  return 2 * w * r
end
