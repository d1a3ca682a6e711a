-- team.lua: micro-swarms, built into hswarm (require("team")).
--
--   local team = require("team")
--   local r = team.run(ctx, {
--     size = 10,                        -- members proposing in parallel
--     rounds = 3,                       -- rounds at most (retries after a failed round)
--     task = task,                      -- any value; given to propose (members share it as is)
--     propose = function(ctx, task, feedback, round) return "candidate" end,
--     verify = function(candidate, task) return ok, score, feedback end,
--     select = "verified-majority",     -- or "best-score", or "vote"
--     key = function(candidate) return normal_form end,   -- optional: what counts as equal
--     on_round = function(round, phase, entry) end,       -- optional: "begin" and "end" of
--   })                                                    -- each round, in the lead
--   -- r = {ok = bool, answer = string or nil, handle = arena handle of the answer (owned by the
--   --      caller), round = rounds used, rounds_log = {{candidates, verified, selected}, ...}}
--
-- Each member is a light agent in the caller's Lua state that lives for the whole team: each round
-- the lead broadcasts the feedback (one arena blob, zero-copy), every member calls propose (their
-- model calls batch together in the scheduler and share the team's pinned prefix), verifies its
-- own candidate (so that command verifiers of a team's members run at the same time) and sends
-- both back as an arena handle; the lead selects one:
--   "verified-majority"  the most frequent candidate among those that verify (ties: the smallest
--                        key, so every replay decides alike); the round fails if none verifies
--   "best-score"         the verified candidate with the highest score (ties as above)
--   "vote"               the most frequent candidate, verify not consulted: never fails
-- The answer is written to shared memory (r.handle). After a failed round, the feedback of the
-- failing candidates (distinct, in the order members sent them, at most max_feedback = 8) is
-- what the next round's propose receives. A member whose propose raises an error proposes
-- nothing that round (the lead logs it); the team goes on with the others. A verify that raises
-- an error counts as a failed verification, the error message being its feedback.
local team = {}

-- Messages: lead -> member "R" .. feedback list (joined with NUL bytes) starts a round, "D" ends
-- the team; member -> lead "C" .. candidate (select "vote"), "V" .. verified candidate (below), or
-- "N" when propose gave nothing.

local function encode_feedback(list)
  return table.concat(list, "\0")
end

local function decode_feedback(s)
  local out = {}
  if s == "" then return out end
  for part in (s .. "\0"):gmatch("(.-)%z") do out[#out + 1] = part end
  return out
end

local function member(ctx, spec)
  local round = 0
  while true do
    local m = ctx.recv()
    if not m.exit then
      local text = tostring(m.data)
      if text == "D" then return round end
      round = round + 1
      local ok, candidate = pcall(spec.propose, ctx, spec.task, decode_feedback(text:sub(2)), round)
      if not ok then
        ctx.log("team member " .. ctx.id .. " failed to propose: " .. tostring(candidate))
        candidate = nil
      end
      if candidate == nil then
        ctx.send(ctx.parent, "N")
      elseif (spec.select or "verified-majority") == "vote" then
        ctx.send(ctx.parent, "C" .. tostring(candidate))
      else
        candidate = tostring(candidate)
        ctx.send(ctx.parent, "V" .. team.encode_outcome(candidate, team.check(spec, candidate)))
      end
    end
  end
end

-- The most frequent value of list (by key), ties to the smallest key; returns value, count.
local function plurality(list, key)
  local count, first = {}, {}
  for _, v in ipairs(list) do
    local k = key(v)
    count[k] = (count[k] or 0) + 1
    if first[k] == nil then first[k] = v end
  end
  local best, bestk
  for k, n in pairs(count) do
    if best == nil or n > count[bestk] or (n == count[bestk] and k < bestk) then
      best, bestk = first[k], k
    end
  end
  return best, bestk and count[bestk] or 0
end

local function best_score(list, scores, key)
  local best, bs, bk
  for i, v in ipairs(list) do
    local s, k = scores[i] or 0, key(v)
    if best == nil or s > bs or (s == bs and k < bk) then best, bs, bk = v, s, k end
  end
  return best
end

-- Verifies one candidate: {ok = bool, score = number, feedback = string or nil}.
function team.check(spec, candidate)
  local done, ok, score, fb = pcall(spec.verify, candidate, spec.task)
  if not done then
    return {ok = false, score = 0, feedback = "verify raised an error: " .. tostring(ok)}
  end
  return {ok = ok and true or false, score = score or (ok and 1 or 0),
          feedback = fb ~= nil and tostring(fb) or nil}
end

-- A verified candidate as a message body, and back: flags (1 verified, 2 has feedback), score,
-- feedback (length-prefixed), then the candidate.
function team.encode_outcome(candidate, o)
  local flags = (o.ok and 1 or 0) + (o.feedback and 2 or 0)
  return string.pack("<Bns4", flags, o.score, o.feedback or "") .. candidate
end

function team.decode_outcome(s)
  local flags, score, fb, next_at = string.unpack("<Bns4", s)
  return s:sub(next_at), {ok = flags & 1 == 1, score = score,
                          feedback = flags & 2 == 2 and fb or nil}
end

-- Selects from one round's candidates; returns the answer or nil and the round's log entry.
-- outcomes[i], when given, is candidates[i]'s verification (team.check); otherwise each
-- candidate is verified here.
function team.select(spec, candidates, outcomes)
  local key = spec.key or tostring
  local how = spec.select or "verified-majority"
  local entry = {candidates = candidates, verified = {}, scores = {}, feedback = {}}
  if how == "vote" then
    entry.selected = plurality(candidates, key)
    return entry.selected, entry
  end
  local ok_list, ok_scores = {}, {}
  for i, c in ipairs(candidates) do
    local o = outcomes and outcomes[i] or team.check(spec, c)
    entry.verified[i], entry.scores[i] = o.ok, o.score
    if o.ok then
      ok_list[#ok_list + 1] = c
      ok_scores[#ok_scores + 1] = o.score
    elseif o.feedback ~= nil then
      entry.feedback[#entry.feedback + 1] = o.feedback
    end
  end
  if #ok_list == 0 then return nil, entry end
  if how == "verified-majority" then
    entry.selected = plurality(ok_list, key)
  elseif how == "best-score" then
    entry.selected = best_score(ok_list, ok_scores, key)
  else
    error("team.run: select must be \"verified-majority\", \"best-score\" or \"vote\" (got " ..
          tostring(how) .. ")")
  end
  return entry.selected, entry
end

function team.run(ctx, spec)
  assert(type(spec.propose) == "function", "team.run: propose must be a function")
  local how = spec.select or "verified-majority"
  assert(how == "vote" or type(spec.verify) == "function",
         "team.run: select \"" .. how .. "\" needs a verify function")
  local size, rounds = spec.size or 10, spec.rounds or 1
  local max_feedback = spec.max_feedback or 8
  local ids = {}
  for i = 1, size do ids[i] = ctx.spawn(member, spec, {kind = "light"}) end
  local swarm = require("swarm")
  local feedback, seen = {}, {}
  local result = {ok = false, rounds_log = {}}
  for round = 1, rounds do
    if spec.on_round then spec.on_round(round, "begin") end
    swarm.broadcast(ctx, ids, "R" .. encode_feedback(feedback))
    local candidates, outcomes = {}, {}
    for _, m in ipairs(swarm.gather(ctx, size)) do
      local c = tostring(m.data)
      local tag = c:sub(1, 1)
      if tag == "C" then
        candidates[#candidates + 1] = c:sub(2)
      elseif tag == "V" then
        local n = #candidates + 1
        candidates[n], outcomes[n] = team.decode_outcome(c:sub(2))
      end
    end
    local answer, entry = team.select(spec, candidates, outcomes)
    result.rounds_log[round] = entry
    result.round = round
    if spec.on_round then spec.on_round(round, "end", entry) end
    if answer ~= nil then
      result.ok, result.answer = true, answer
      break
    end
    for _, fb in ipairs(entry.feedback) do
      if not seen[fb] and #feedback < max_feedback then
        seen[fb] = true
        feedback[#feedback + 1] = fb
      end
    end
  end
  swarm.broadcast(ctx, ids, "D")
  for i = 1, size do ctx.join(ids[i]) end
  if result.answer ~= nil then result.handle = ctx.memory.write(result.answer) end
  return result
end

return team
