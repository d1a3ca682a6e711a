-- arena.lua: cost of ctx.memory.write (allocate + copy + publish), ctx.memory.read (a view, no
-- copy), #view and ctx.memory.release, from Lua, N times for a blob of S bytes. Args: N, S.
function main(ctx, args)
  local n, size = tonumber(args[1]), tonumber(args[2])
  local s = string.rep("z", size)
  local write, read, release = ctx.memory.write, ctx.memory.read, ctx.memory.release
  local total = 0
  ctx.call("mark", "start")
  for _ = 1, n do
    local h = write(s)
    local v = read(h)
    total = total + #v
    release(h)
  end
  ctx.call("mark", "end")
  assert(total == n * size)
  return n
end
