-- coordinator.lua: splitting a job over agents and merging their results (require("coordinator")).
--
--   local coordinator = require("coordinator")
--   local merged = coordinator.run(ctx, {
--     task = job,
--     decompose = function(task) return {sub1, sub2, ...} end,   -- the work items
--     run = function(ctx, sub, i) return "result" end,           -- one light agent per item
--     merge = function(results, task) return merged end,         -- results[i]: a string, or nil
--     on_result = function(i, result) end,                        -- optional: as results arrive
--     group = 10,                                                 -- optional: see below
--     team_base = 1,                                              -- optional: see below
--   })
--
-- Each work item runs in its own light agent (in the caller's Lua state): typically a micro-swarm
-- (team.run) whose lead is that agent. run's return value comes back through the agent's result,
-- an arena handle (a string is written to shared memory once and read in place). An item whose
-- agent fails gives nil in results (the failure is logged) and does not stop the others.
--
-- Hierarchy: with group = G, the items are split into groups of G consecutive items, each handled
-- by an intermediate lead (a "mega-swarm" of G micro-swarms) that runs its items and sends their
-- results back joined; merge still sees one result per item, in order. Nesting coordinators inside
-- run gives deeper hierarchies.
--
-- Teams: the agent of item i gets team id team_base + i - 1 when team_base is given (the
-- scheduler's fair share then treats every item as its own team), else its parent's.
local coordinator = {}

local SEP = "\1" -- joins a group's results; "\2" marks a missing result
local MISSING = "\2"

local function run_items(ctx, spec, items, first)
  local ids = {}
  for k, item in ipairs(items) do
    local i = first + k - 1
    local opts = spec.team_base and {team = spec.team_base + i - 1} or nil
    ids[k] = ctx.spawn(function(c) return spec.run(c, item, i) end, nil, opts)
  end
  local out = {}
  for k = 1, #ids do
    local res, err = ctx.join(ids[k])
    if res == nil then
      ctx.log("coordinator: item " .. (first + k - 1) .. " failed: " .. tostring(err))
    else
      out[k] = tostring(res)
    end
  end
  return out
end

function coordinator.run(ctx, spec)
  assert(type(spec.decompose) == "function", "coordinator.run: decompose must be a function")
  assert(type(spec.run) == "function", "coordinator.run: run must be a function")
  local items = spec.decompose(spec.task)
  local results = {}
  if not spec.group then
    results = run_items(ctx, spec, items, 1)
    if spec.on_result then
      for i = 1, #items do spec.on_result(i, results[i]) end
    end
  else
    local leads, bounds = {}, {}
    for g = 0, (#items - 1) // spec.group do
      local lo, hi = g * spec.group + 1, math.min(#items, (g + 1) * spec.group)
      local slice = {}
      for i = lo, hi do slice[#slice + 1] = items[i] end
      bounds[#bounds + 1] = {lo, hi}
      leads[#leads + 1] = ctx.spawn(function(c)
        local got = run_items(c, spec, slice, lo)
        local parts = {}
        for k = 1, #slice do parts[k] = got[k] or MISSING end
        for k = 1, #parts do
          assert(not parts[k]:find(SEP, 1, true), "coordinator: a result contains byte 1")
        end
        return table.concat(parts, SEP)
      end)
    end
    for g, id in ipairs(leads) do
      local res, err = ctx.join(id)
      local lo, hi = bounds[g][1], bounds[g][2]
      if res == nil then
        ctx.log("coordinator: group " .. g .. " failed: " .. tostring(err))
      else
        local k = lo
        for part in (tostring(res) .. SEP):gmatch("(.-)" .. SEP) do
          if part ~= MISSING then results[k] = part end
          k = k + 1
        end
      end
      if spec.on_result then
        for i = lo, hi do spec.on_result(i, results[i]) end
      end
    end
  end
  if spec.merge then return spec.merge(results, spec.task) end
  return results
end

return coordinator
