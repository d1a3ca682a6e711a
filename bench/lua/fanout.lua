-- fanout.lua: fan-out/fan-in rate with light agents. The root spawns W light workers; in each of
-- R rounds it sends one shared handle to every worker (fan-out) and takes W replies (fan-in);
-- each worker answers every message with the handle it got. Marks around the rounds let the
-- harness time only message traffic. Args: W, R.
local worker = [[
function main(ctx, args)
  local parent = ctx.parent
  while true do
    local m = ctx.recv()
    if #m.data == 4 then return end
    ctx.send(parent, m.data:handle())
  end
end
]]
function main(ctx, args)
  local w, r = tonumber(args[1]), tonumber(args[2])
  local ids = {}
  for i = 1, w do ids[i] = ctx.spawn(worker, nil, {kind = "light", team = 2}) end
  local h = ctx.memory.write(string.rep("y", 64))
  ctx.sleep(1) -- let every worker start
  ctx.call("mark", "start")
  for _ = 1, r do
    for i = 1, w do ctx.send(ids[i], h) end
    for _ = 1, w do ctx.recv() end
  end
  ctx.call("mark", "end")
  for i = 1, w do ctx.send(ids[i], "stop") end
  return 2 * w * r
end
