-- teams_vote.lua: teams of 10 agents agree on a value by voting through messages.
-- The root spawns T team leads. Each lead spawns 10 light members in its team's shared Lua state
-- and tells every member who its teammates are. Each member proposes a value (its own seeded
-- math.random), sends the proposal to all teammates, collects theirs, and decides by majority
-- (ties go to the smallest value: swarm.majority). Every member reports its decision to the lead,
-- which checks that all 10 agree. Usage: hswarm run examples/teams_vote.lua [T=100] [--seed S]
local team_size = 10

local swarm = require("swarm")

local function member(ctx, args)
  local peers = ctx.recv() -- the lead sends the ids of the team, comma-separated
  local others = {}
  for id in tostring(peers.data):gmatch("%d+") do
    if tonumber(id) ~= ctx.id then others[#others + 1] = tonumber(id) end
  end
  local proposal = math.random(1, 4)
  swarm.broadcast(ctx, others, proposal)
  local votes = {proposal}
  for _, m in ipairs(swarm.gather(ctx, #others)) do votes[#votes + 1] = tostring(m.data) end
  local decision = swarm.majority(votes)
  ctx.send(ctx.parent, decision)
  return decision
end

local function lead(ctx, args)
  local ids = {}
  for i = 1, team_size do
    ids[i] = ctx.spawn(member, nil, {kind = "light", team = args.team})
  end
  local list = table.concat(ids, ",")
  for _, id in ipairs(ids) do ctx.send(id, list) end
  local decided
  for _, m in ipairs(swarm.gather(ctx, team_size)) do -- members' exit notices may interleave
    local v = tonumber(tostring(m.data))
    assert(decided == nil or decided == v, "team " .. args.team .. " disagrees")
    decided = v
  end
  return decided
end

function main(ctx, args)
  if args.role == "lead" then return lead(ctx, args) end
  local t = tonumber(args[1]) or 100
  local leads = {}
  for i = 1, t do
    leads[i] = ctx.spawn("teams_vote.lua", {role = "lead", team = i + 1}, {team = i + 1})
  end
  local histogram = {}
  for i = 1, t do
    local r, err = ctx.join(leads[i])
    assert(r, err)
    local v = tostring(r)
    histogram[v] = (histogram[v] or 0) + 1
  end
  local parts = {}
  for v = 1, 4 do parts[#parts + 1] = v .. ":" .. (histogram[tostring(v)] or 0) end
  ctx.log(t .. " teams of " .. team_size .. " agreed; decisions " .. table.concat(parts, " "))
  return table.concat(parts, " ")
end
