-- fanout.lua: a fan-out/fan-in tree of agents.
-- The root spawns B coordinators; each coordinator spawns leaves so that the tree holds N agents
-- in all. Each leaf sums the squares of its own range of integers and returns the sum; each
-- coordinator adds its leaves' results (fan-in through exit notices and ctx.join) and returns the
-- total; the root checks the grand total against the closed formula.
-- Usage: hswarm run examples/fanout.lua [N=10000] [B=100] [isolated|light]
function main(ctx, args)
  if args.role == "leaf" then
    local s = 0
    for i = args.lo, args.hi do s = s + i * i end
    return s
  elseif args.role == "coordinator" then
    local children = {}
    for k = 1, args.leaves do
      local lo = args.first + (k - 1) * args.per_leaf
      children[k] = ctx.spawn("fanout.lua", {role = "leaf", lo = lo, hi = lo + args.per_leaf - 1},
                              {kind = args.kind})
    end
    local total = 0
    for k = 1, #children do
      local r, err = ctx.join(children[k])
      assert(r, err)
      total = total + math.tointeger(tonumber(tostring(r)))
    end
    return total
  end
  -- the root
  local n = tonumber(args[1]) or 10000
  local b = tonumber(args[2]) or 100
  local kind = args[3] or "isolated"
  local leaves_total = n - 1 - b
  assert(leaves_total >= b, "N must be at least 2B + 1")
  local per_leaf = 10
  local coords, first = {}, 1
  for c = 1, b do
    local leaves = leaves_total // b + (c <= leaves_total % b and 1 or 0)
    coords[c] = ctx.spawn("fanout.lua", {role = "coordinator", leaves = leaves, first = first,
                                         per_leaf = per_leaf, kind = kind}, {kind = kind})
    first = first + leaves * per_leaf
  end
  local total = 0
  for c = 1, b do
    local r, err = ctx.join(coords[c])
    assert(r, err)
    total = total + math.tointeger(tonumber(tostring(r)))
  end
  local m = first - 1
  local expected = m * (m + 1) * (2 * m + 1) // 6
  assert(total == expected, ("sum %d, expected %d"):format(total, expected))
  ctx.log(("%d agents (%d coordinators, %d leaves) summed squares 1..%d = %d"):format(
    1 + b + leaves_total, b, leaves_total, m, total))
  return total
end
