-- spawn.lua: the root spawns N agents of one kind, each of which blocks in ctx.recv().
-- The harness times steps 0 (spawning) and 1 (every agent's first activation) and reads the
-- resident memory once all are alive and blocked. Args: N, kind ("isolated" or "light").
local worker = "function main(ctx, args) local m = ctx.recv() return m and #m.data end"
function main(ctx, args)
  local n, kind = tonumber(args[1]), args[2]
  local opts = {kind = kind, team = 2}
  for i = 1, n do ctx.spawn(worker, i, opts) end
  return n
end
