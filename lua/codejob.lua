-- codejob.lua: the coding swarm of `hswarm code` (run as its first agent; read it to adapt it).
--
-- From a task on a repository to a verified patch:
--   1. the repository is indexed (by hswarm code, before this script starts: the code.* ops);
--   2. the shared context is pinned once: the system template (it may use {task} and {map}, the
--      repository map for the task);
--   3. a coordinator turns the task into function-level work items, with one of the template
--      set's coordinators: coordinator.txt, one model call whose output is constrained by a JSON
--      schema (job.items_schema: names from the repository), or coordinator_each.txt, one call
--      per definition of the map answering {"change": boolean, "why"} under job.change_schema
--      (all of them batched together); either way the items are parsed and checked
--      (job.parse_items) and an unusable answer is retried (up to cfg.coordinator_attempts), each
--      attempt recorded in the report; or the items come from a file;
--   4. each item goes to a micro-swarm (team.run): every member gets the item's function slice
--      (the member template: {name} {file} {why} {slice} {signature} {doc} {rejected}
--      {rejected_exprs} {feedback}; templates/code/README.md; with a member.gbnf in the template
--      set, under that grammar) and writes a
--      function-level patch (hswarm/patch.h's format; a Python docstring it dropped is put
--      back, job.keep_docstring); each candidate is checked to touch only
--      its item's definition, applied in memory (code.patch) and verified by the item's command
--      in a private copy of the repository (verify.command, hard-linked copies); the team keeps
--      the most frequent verified candidate, or retries with the failing bodies and test output;
--   5. the teams' patches are merged in item order; an item whose patch does not apply on top of
--      the others goes back to its team (candidates then verified together with the merged
--      ones); the merged result is verified once more by the final command;
--   6. the result (one JSON object) goes back to hswarm code, which writes or applies the diff
--      only when the final verification passed, and prints the report.
--
-- Templates: "{var}" is replaced by the variable's text; a line whose variables all expand to
-- nothing is left out (so "not {rejected}" appears only on retries); an unknown variable is an
-- error. The shipped sets are in templates/code/ (hswarm code --templates DIR).
local json = require("json")
local code = require("code")
local team = require("team")
local verify = require("verify")

local job = {}

-- ---------------------------------------------------------------------------------------------
-- Templates

function job.render(template, vars, what)
  local out = {}
  local pos = 1
  while pos <= #template do
    local nl = template:find("\n", pos, true)
    local line = template:sub(pos, nl or #template)
    pos = (nl or #template) + 1
    local used, empty = 0, 0
    local text = line:gsub("{([%a_][%w_]*)}", function(name)
      local v = vars[name]
      if v == nil then error("template " .. (what or "?") .. ": unknown variable {" .. name .. "}", 0) end
      used = used + 1
      v = tostring(v)
      if v == "" then empty = empty + 1 end
      return v
    end)
    if used == 0 or empty < used then out[#out + 1] = text end
  end
  return table.concat(out)
end

-- text as it may stand inside a GBNF string literal
function job.gbnf_escaped(text)
  return (text:gsub('[\\"\n\r\t]', {["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n",
                                      ["\r"] = "\\r", ["\t"] = "\\t"}))
end

-- ---------------------------------------------------------------------------------------------
-- Work items: the coordinator's schema, and the parser for its output (or an items file)

local MAX_ITEMS = 16

function job.items_schema(names)
  local why = {type = "string", maxLength = 120}
  return json.encode({
    type = "array", minItems = 1, maxItems = MAX_ITEMS,
    items = {anyOf = {
      {type = "object", properties = {name = {enum = names}, why = why},
       required = {"name", "why"}},
      {type = "object", properties = {add = {type = "string", maxLength = 64},
                                      after = {enum = names}, why = why},
       required = {"add", "after", "why"}},
    }},
  })
end

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_%.]*$") ~= nil and #s <= 64
end

-- items (a list of {kind, name, file, after, why}) or nil and what is wrong. known(name) says
-- whether the repository defines name.
function job.parse_items(text, known)
  if type(text) ~= "string" or text:match("^%s*$") then return nil, "the output is empty" end
  local ok, v = pcall(json.decode, text)
  if not ok then return nil, "not JSON: " .. tostring(v) end
  if type(v) ~= "table" or v[1] == nil then
    return nil, "not a non-empty JSON array of work items"
  end
  if #v > MAX_ITEMS then return nil, "more than " .. MAX_ITEMS .. " work items" end
  local items, seen = {}, {}
  for i, it in ipairs(v) do
    local where = "item " .. i
    if type(it) ~= "table" then return nil, where .. " is not an object" end
    local why = it.why
    if why ~= nil and type(why) ~= "string" then return nil, where .. ": \"why\" is not a string" end
    if it.file ~= nil and type(it.file) ~= "string" then
      return nil, where .. ": \"file\" is not a string"
    end
    local item = {why = why or "", file = it.file}
    if it.add ~= nil then
      if not is_identifier(it.add) then return nil, where .. ": \"add\" is not a name" end
      if not is_identifier(it.after) then
        return nil, where .. ": an added definition needs \"after\", an existing definition"
      end
      if not known(it.after) then return nil, where .. ": no definition named " .. it.after end
      item.kind, item.name, item.after = "add", it.add, it.after
    else
      if not is_identifier(it.name) then return nil, where .. ": \"name\" is missing or not a name" end
      if not known(it.name) then return nil, where .. ": no definition named " .. it.name end
      item.kind, item.name = "replace", it.name
    end
    if seen[item.name] then return nil, where .. ": " .. item.name .. " is named twice" end
    seen[item.name] = true
    items[#items + 1] = item
  end
  return items
end

-- ---------------------------------------------------------------------------------------------
-- Python docstrings in definition texts

-- When lines[i] opens a Python docstring: the index of its last line; else nil.
function job.docstring_end(lines, i)
  local l = lines[i]
  if not l then return nil end
  local q = l:match('^%s*[rRuUbB]?(""")') or l:match("^%s*[rRuUbB]?(''')")
  if not q then -- a one-line string in single quotes
    return (l:match('^%s*[rRuUbB]?"[^"]*"%s*$') or l:match("^%s*[rRuUbB]?'[^']*'%s*$")) and i or nil
  end
  local rest = l:match("^%s*[rRuUbB]?...(.*)$")
  if rest:find(q, 1, true) then return i end
  for j = i + 1, #lines do
    if lines[j]:find(q, 1, true) then return j end
  end
  return #lines
end

local function split_lines(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  if lines[#lines] == "" then lines[#lines] = nil end
  return lines
end

-- A candidate that replaces a Python definition whose docstring it dropped gets the docstring
-- back, after its signature and at its body's indentation: members are asked for code, and the
-- shipped model writes none. def_lines: the original definition's lines.
function job.keep_docstring(patch, item, def_lines)
  if item.kind ~= "replace" or not item.path:match("%.py$") then return patch end
  local last = job.docstring_end(def_lines, 2)
  if not last then return patch end
  local lines = split_lines(patch)
  local sig = 2 -- the new definition's signature: from line 2 to the first line ending in ":"
  while lines[sig] and not lines[sig]:match(":%s*$") and lines[sig] ~= "@@ end" do sig = sig + 1 end
  local first = lines[sig + 1]
  if not first or first == "@@ end" or job.docstring_end(lines, sig + 1) then return patch end
  local want = first:match("^(%s*)")
  local had = def_lines[2]:match("^(%s*)")
  local out = {}
  for k = 1, sig do out[#out + 1] = lines[k] end
  for k = 2, last do
    local l = def_lines[k]
    out[#out + 1] = l:sub(1, #had) == had and want .. l:sub(#had + 1) or l
  end
  for k = sig + 1, #lines do out[#out + 1] = lines[k] end
  return table.concat(out, "\n") .. "\n"
end

-- ---------------------------------------------------------------------------------------------
-- Patches: what a member wrote, cut to its patch and held to its item

-- The patch in a model's output: from the first line starting with "@@" to the first "@@ end"
-- line, each operation naming the item's file; or nil and why not.
function job.extract_patch(text, item)
  local lines, start = {}, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  for i, l in ipairs(lines) do
    if l:sub(1, 2) == "@@" then start = i break end
  end
  if not start then return nil, "no patch operation (a line starting with @@)" end
  local out, closed = {}, false
  for i = start, #lines do
    local l = lines[i]
    if l:match("^@@%s*end%s*$") then
      out[#out + 1] = "@@ end"
      closed = true
      break
    elseif l:sub(1, 2) == "@@" then
      local op, rest = l:match("^@@%s+(%a+)%s+(.-)%s*$")
      if op == "add" then rest = rest and rest:match("^after%s+(.*)$") end
      if not op or not rest or rest == "" then return nil, "a malformed operation line: " .. l end
      local name, path = rest:match("^(%S+)%s+in%s+(%S+)$")
      name = name or rest
      local want = op == "add" and item.after or item.name
      if (op == "add") ~= (item.kind == "add") or name ~= want then
        return nil, "an operation on " .. name .. ", outside the work item (" .. item.name .. ")"
      end
      if path and path ~= item.path then
        return nil, "an operation in " .. path .. ", outside the work item's file"
      end
      out[#out + 1] = "@@ " .. (op == "add" and "add after" or op) .. " " .. name .. " in " .. item.path
    else
      out[#out + 1] = l
    end
  end
  if not closed then return nil, "the patch does not end with \"@@ end\"" end
  return table.concat(out, "\n") .. "\n"
end

-- A rejected candidate as the member template shows it: its new lines after the first,
-- trimmed and joined ("return 3*n+4").
function job.body_of(patch)
  local lines = {}
  for line in patch:gmatch("([^\n]*)\n") do
    if line:sub(1, 2) ~= "@@" then lines[#lines + 1] = line end
  end
  local body, i = {}, 2
  i = (job.docstring_end(lines, i) or i - 1) + 1 -- a docstring kept by the job is no answer
  for k = i, #lines do
    local t = lines[k]:match("^%s*(.-)%s*$")
    if t ~= "" then body[#body + 1] = t end
  end
  return table.concat(body, " ")
end

-- The expressions rejected single-statement bodies returned ("return 3*n+4" -> "3*n+4"), at
-- most the first MAX_REJECTED_EXPRS, joined by spaces: the {rejected_exprs} of templates for the
-- shipped model (trained with 1 to 3 of them).
local MAX_REJECTED_EXPRS = 3
function job.returned(bodies)
  local out = {}
  for _, b in ipairs(bodies) do
    local e = b:match("^return%s+(%S+)$")
    if e and #out < MAX_REJECTED_EXPRS then out[#out + 1] = e end
  end
  return table.concat(out, " ")
end

local FB = "\1" -- joins a failing candidate's body and its output in team feedback

local function tail(s, n)
  if #s <= n then return s end
  return "..." .. s:sub(-n)
end

-- ---------------------------------------------------------------------------------------------
-- The job

local function item_command(cmd, item)
  return (cmd:gsub("{name}", item.name):gsub("{file}", item.path))
end

-- Definitions of the files the map shows, in the map's order, each once (code.sym's records).
function job.map_definitions(ctx, map_text)
  local out, seen, path = {}, {}, nil
  local defs = {}
  for line in (map_text .. "\n"):gmatch("([^\n]*)\n") do
    local p = line:match("^(%S.*):$")
    if p then
      path = p
      if not defs[p] then
        defs[p] = {}
        for _, d in ipairs(code.file(ctx, p) or {}) do defs[p][d.start_line] = d end
      end
    elseif path then
      local ln = tonumber(line:match("^%s+(%d+):"))
      local d = ln and defs[path][ln]
      if d and not seen[path .. ":" .. ln] then
        seen[path .. ":" .. ln] = true
        out[#out + 1] = d
      end
    end
  end
  return out
end

-- The names of definitions (job.map_definitions'), each once: the coordinator's vocabulary.
function job.names_of(defs)
  local names, seen = {}, {}
  for _, d in ipairs(defs) do
    if not seen[d.name] then
      seen[d.name] = true
      names[#names + 1] = d.name
    end
  end
  return names
end

-- A definition's own lines, from its slice's text (the lines after the "# path, lines A-B"
-- header).
function job.definition_lines(slice_text)
  local lines = split_lines(slice_text)
  local a, b = (lines[1] or ""):match("lines (%d+)%-(%d+)")
  local n = a and (tonumber(b) - tonumber(a) + 1) or #lines - 1
  local def = {}
  for i = 2, math.min(#lines, n + 1) do def[#def + 1] = lines[i] end
  return def
end

-- A definition in parts: its signature line, and the first max_lines non-blank lines of its
-- body after the signature and a Python docstring, dedented.
function job.definition_parts(slice_text, max_lines)
  local def = job.definition_lines(slice_text)
  local i = (job.docstring_end(def, 2) or 1) + 1
  local body = {}
  while def[i] and #body < max_lines do
    local t = def[i]:match("^%s*(.-)%s*$")
    if t ~= "" then body[#body + 1] = t end
    i = i + 1
  end
  return {signature = (def[1] or ""):match("^%s*(.-)%s*$"), body = body}
end

-- The coordinator one definition at a time: the schema of one answer, and its parser.
job.change_schema = json.encode({
  type = "object",
  properties = {change = {type = "boolean"}, why = {type = "string", maxLength = 80}},
  required = {"change", "why"},
})

-- change (a boolean) and why, or nil and what is wrong
function job.parse_change(text)
  if type(text) ~= "string" or text:match("^%s*$") then return nil, "the output is empty" end
  local ok, v = pcall(json.decode, text)
  if not ok then return nil, "not JSON: " .. tostring(v) end
  if type(v) ~= "table" or type(v.change) ~= "boolean" then
    return nil, "not an object with a boolean \"change\""
  end
  if v.why ~= nil and type(v.why) ~= "string" then return nil, "\"why\" is not a string" end
  return v.change, v.why or ""
end

local BODY_LINES = 3 -- lines of a definition's body shown to the coordinator_each template

-- One attempt of the coordinator one definition at a time: every map definition asked, at most
-- cfg.agents at once. Returns the items as JSON text ("[]" when none) and the attempt's record.
local function scan_definitions(ctx, cfg, T, vars, prefix, defs, temperature, report)
  local decisions, ids = {}, {}
  local function ask(c, d)
    local entry = {name = d.name, file = d.path}
    local s, err = code.slice(c, d.qname or d.name)
    if not s then
      entry.error = tostring(err)
      return entry
    end
    local parts = job.definition_parts(s.text, BODY_LINES)
    local v = {}
    for k, x in pairs(vars) do v[k] = x end
    v.name, v.file, v.signature = d.name, d.path, parts.signature
    v.doc, v.body = d.doc or "", table.concat(parts.body, "\n")
    local r, gerr = c.llm.generate{prompt = job.render(T.coordinator_each, v, "coordinator_each"),
                                   prefix = prefix, schema = job.change_schema,
                                   max_tokens = 64, temperature = temperature}
    if not r then
      entry.error = tostring(gerr)
      return entry
    end
    entry.output, entry.usage = r.text, r.usage
    local change, why = job.parse_change(r.text)
    if change == nil then entry.error = why else entry.change, entry.why = change, why end
    return entry
  end
  for first = 1, #defs, cfg.agents do
    local last = math.min(#defs, first + cfg.agents - 1)
    for i = first, last do
      ids[i] = ctx.spawn(function(c) return json.encode(ask(c, defs[i])) end)
    end
    for i = first, last do
      local res, err = ctx.join(ids[i])
      decisions[i] = res and json.decode(tostring(res)) or
                     {name = defs[i].name, error = tostring(err)}
    end
  end
  -- a name the repository defines more than once is qualified, so that the item resolves
  local items = {}
  for i, e in ipairs(decisions) do
    if e.usage then
      report.calls = report.calls + 1
      report.prompt_tokens = report.prompt_tokens + e.usage.prompt
      report.completion_tokens = report.completion_tokens + e.usage.completion
      e.usage = nil
    end
    if e.change then
      local d = defs[i]
      local same = code.sym(ctx, d.name) or {}
      items[#items + 1] = {name = #same > 1 and d.qname or d.name, file = d.path,
                           why = e.why ~= "" and e.why or nil}
    end
  end
  return #items > 0 and json.encode(items) or "[]", {decisions = decisions}
end

local function coordinate(ctx, cfg, T, vars, prefix, names, defs, report)
  local function known(name)
    local d = code.sym(ctx, name)
    return d ~= nil and #d > 0
  end
  if cfg.items then
    local items, err = job.parse_items(cfg.items, known)
    if not items then error("the work items file: " .. err, 0) end
    report.coordinator = {source = "file"}
    return items
  end
  if #names == 0 then error("the repository map names no definitions", 0) end
  if T.coordinator_each then
    report.coordinator = {source = "model", mode = "each", attempts = {}}
    for attempt = 1, cfg.coordinator_attempts do
      local text, entry = scan_definitions(ctx, cfg, T, vars, prefix, defs,
                                           attempt == 1 and 0 or cfg.temperature, report)
      report.coordinator.attempts[attempt] = entry
      local items, why = job.parse_items(text, known)
      if items then return items end
      entry.error = text == "[]" and "no definition needs a change, by every answer" or why
      ctx.log("coordinator attempt " .. attempt .. ": " .. entry.error)
    end
    error("the coordinator chose no usable work items in " .. cfg.coordinator_attempts ..
          " attempts (see the report)", 0)
  end
  local prompt = job.render(T.coordinator, vars, "coordinator")
  local schema = job.items_schema(names)
  report.coordinator = {source = "model", attempts = {}}
  for attempt = 1, cfg.coordinator_attempts do
    local r, err = ctx.llm.generate{prompt = prompt, prefix = prefix, schema = schema,
                                    max_tokens = cfg.coordinator_max_tokens,
                                    temperature = attempt == 1 and 0 or cfg.temperature}
    local entry = {output = r and r.text or nil, error = err}
    report.coordinator.attempts[#report.coordinator.attempts + 1] = entry
    if r then
      report.calls = report.calls + 1
      report.prompt_tokens = report.prompt_tokens + r.usage.prompt
      report.completion_tokens = report.completion_tokens + r.usage.completion
      local items, why = job.parse_items(r.text, known)
      if items then return items end
      entry.error = why
      ctx.log("coordinator attempt " .. attempt .. ": " .. why)
    end
  end
  error("the coordinator gave no usable work items in " .. cfg.coordinator_attempts ..
        " attempts (see the report)", 0)
end

-- Resolves an item to its definition and slice; false and why when it cannot be.
local function prepare(ctx, item)
  local target = item.kind == "add" and item.after or item.name
  local defs = code.sym(ctx, target) or {}
  local pick = {}
  for _, d in ipairs(defs) do
    if not item.file or d.path == item.file then pick[#pick + 1] = d end
  end
  if #pick == 0 then return false, "no definition named " .. target end
  if #pick > 1 then
    return false, target .. " is defined in " .. #pick .. " places: name its file (\"file\")"
  end
  item.path = pick[1].path
  local s, err = code.slice(ctx, target)
  if not s then return false, err end
  item.slice = s
  item.def_lines = job.definition_lines(s.text)
  return true
end

-- Runs one item's micro-swarm; with merged (a patch text), candidates are checked together with
-- it (a conflict sent back). Returns the team's result.
local function run_team(ctx, cfg, T, item, prefix, stats, merged, note)
  local function body_fb(candidate, text) return job.body_of(candidate) .. FB .. text end
  local function check(candidate)
    local r, err = code.patch(ctx, (merged or "") .. candidate, {})
    if not r then return false, 0, body_fb(candidate, "the patch failed: " .. tostring(err)) end
    if not r.ok then
      return false, 0, body_fb(candidate, "the patch does not apply: " .. table.concat(r.errors, "; "))
    end
    local files = {}
    for _, f in ipairs(r.files) do files[f.path] = f.text end
    local v, verr = verify.command(ctx, {cmd = item_command(cfg.verify_item, item),
                                         workdir = cfg.repo, files = files, link = cfg.link,
                                         time_limit = cfg.time_limit})
    if not v then return false, 0, body_fb(candidate, tostring(verr)) end
    stats.verifications = stats.verifications + 1
    if v.passed then stats.verified = stats.verified + 1 end
    return v.passed, v.passed and 1 or 0, body_fb(candidate, tail(v.output, 1500))
  end
  -- a member's prompt against the same prompt with whole files instead of the item's context
  -- (the slice, or with templates that do not use it the signature and doc comment; tokens per
  -- byte as in the slice)
  local sl = item.slice
  local used = T.member:find("{slice}", 1, true) and #sl.text
               or #(sl.definition.signature or "") + #(sl.definition.doc or "")
  local extra = sl.whole_file_tokens - used * (sl.tokens / math.max(1, #sl.text))
  return team.run(ctx, {
    size = cfg.team_size, rounds = cfg.rounds, task = item, select = "verified-majority",
    key = function(c) return (c:gsub("%s+", " ")) end,
    propose = function(mctx, it, feedback)
      local rejected, outputs = {}, {}
      for _, f in ipairs(feedback) do
        local body, out = f:match("^(.-)\1(.*)$")
        if body and body ~= "" then rejected[#rejected + 1] = body end
        outputs[#outputs + 1] = out or f
      end
      if note then outputs[#outputs + 1] = note end
      local d = it.slice.definition
      local prompt = job.render(T.member, {name = it.name, file = it.path, why = it.why,
                                           slice = (it.slice.text:gsub("\n$", "")),
                                           signature = d.signature or "", doc = d.doc or "",
                                           rejected = table.concat(rejected, " | "),
                                           rejected_exprs = job.returned(rejected),
                                           feedback = table.concat(outputs, "\n")}, "member")
      local grammar = nil
      if T.member_grammar then
        local g = job.gbnf_escaped
        grammar = job.render(T.member_grammar, {name = g(it.name), file = g(it.path),
                                                signature = g(d.signature or "")}, "member.gbnf")
      end
      local r, err = mctx.llm.generate{prompt = prompt, prefix = prefix, grammar = grammar,
                                       max_tokens = cfg.max_tokens,
                                       temperature = cfg.temperature}
      if not r then error(err, 0) end
      stats.calls = stats.calls + 1
      stats.prompt_tokens = stats.prompt_tokens + r.usage.prompt
      stats.whole_file_tokens = stats.whole_file_tokens + r.usage.prompt + math.floor(extra + 0.5)
      stats.completion_tokens = stats.completion_tokens + r.usage.completion
      local patch, why = job.extract_patch(r.text, it)
      if patch then patch = job.keep_docstring(patch, it, it.def_lines) end
      if not patch then
        stats.malformed = stats.malformed + 1
        mctx.log(it.name .. ": unusable output: " .. why)
        return nil
      end
      stats.candidates = stats.candidates + 1
      return patch
    end,
    verify = function(candidate) return check(candidate) end,
  })
end

-- Merges the items' verified patches (answers[i], nil for an item without one) in item order:
-- an item whose patch does not apply on top of the ones before it goes back to its team,
-- rerun(i, merged, note) (its candidates then checked on top of the merged patch), which returns
-- the team's result. Statuses and conflicts are written into item_reports[i]. Returns the merged
-- patch text.
function job.merge(ctx, answers, n, item_reports, rerun)
  local merged = ""
  for i = 1, n do
    if answers[i] then
      local r = code.patch(ctx, merged .. answers[i], {})
      if r and r.ok then
        merged = merged .. answers[i]
      else
        local why = r and table.concat(r.errors, "; ") or "the patch failed"
        item_reports[i].status = "conflict"
        item_reports[i].conflict = why
        local again = rerun(i, merged, "conflict with the other work items: " .. why)
        if again.ok then
          merged = merged .. again.answer
          item_reports[i].status = "verified after a conflict"
        else
          item_reports[i].status = "failed after a conflict"
        end
      end
    end
  end
  return merged
end

local function new_stats()
  return {calls = 0, candidates = 0, malformed = 0, verifications = 0, verified = 0,
          prompt_tokens = 0, whole_file_tokens = 0, completion_tokens = 0, rounds = 0}
end

function main(ctx, args)
  local cfg = json.decode(args[1])
  local T = cfg.templates
  local report = {task = cfg.task, items = {}, calls = 0, prompt_tokens = 0,
                  completion_tokens = 0}
  local result = {ok = false, report = report}

  local map = assert(code.map(ctx, cfg.task, cfg.map_budget))
  local defs = job.map_definitions(ctx, map.text)
  local names = job.names_of(defs)
  report.map = {tokens = map.tokens, definitions = map.definitions, files = map.files}
  local vars = {task = cfg.task, map = map.text, names = table.concat(names, " ")}
  local prefix = ctx.llm.pin(job.render(T.system, vars, "system"))

  local ok, items = pcall(coordinate, ctx, cfg, T, vars, prefix, names, defs, report)
  if not ok then
    result.error = tostring(items)
    return json.encode(result)
  end
  for i, item in ipairs(items) do
    local good, why = prepare(ctx, item)
    report.items[i] = {name = item.name, kind = item.kind, file = item.path, why = item.why,
                       stats = new_stats(), status = good and "pending" or "unresolved",
                       error = why}
    if not good then
      result.error = "work item " .. item.name .. ": " .. why
      return json.encode(result)
    end
  end

  -- the micro-swarms, at most cfg.agents members at once
  local per_wave = math.max(1, cfg.agents // cfg.team_size)
  local answers = {}
  for first = 1, #items, per_wave do
    local ids = {}
    for i = first, math.min(#items, first + per_wave - 1) do
      ids[i] = ctx.spawn(function(c)
        local r = run_team(c, cfg, T, items[i], prefix, report.items[i].stats)
        report.items[i].stats.rounds = r.round
        return r.ok and r.answer or ""
      end, nil, {team = i})
    end
    for i = first, math.min(#items, first + per_wave - 1) do
      local res, err = ctx.join(ids[i])
      local text = res and tostring(res) or ""
      report.items[i].status = text ~= "" and "verified" or "failed"
      if err then report.items[i].error = tostring(err) end
      if text ~= "" then answers[i] = text end
      ctx.log(string.format("item %d %s: %s after %d round(s)", i, items[i].name,
                            report.items[i].status, report.items[i].stats.rounds))
    end
  end

  -- merge in item order; a conflict goes back to its team, checked on top of the merged ones
  local merged = job.merge(ctx, answers, #items, report.items, function(i, base, note)
    return run_team(ctx, cfg, T, items[i], prefix, report.items[i].stats, base, note)
  end)

  local all = true
  for i = 1, #items do
    if not report.items[i].status:match("^verified") then all = false end
  end
  result.patch = merged
  report.final = {ran = false}
  if merged ~= "" then
    local r = code.patch(ctx, merged, {})
    result.diff = r and r.diff or ""
    local files = {}
    for _, f in ipairs(r and r.files or {}) do files[f.path] = f.text end
    local v, err = verify.command(ctx, {cmd = cfg.verify, workdir = cfg.repo, files = files,
                                        link = cfg.link, time_limit = cfg.time_limit})
    report.final = {ran = v ~= nil, passed = v and v.passed or false,
                    output = v and tail(v.output, 4000) or tostring(err),
                    seconds = v and v.seconds or 0}
  end
  for i = 1, #items do
    local s = report.items[i].stats
    for _, k in ipairs({"calls", "prompt_tokens", "completion_tokens"}) do
      report[k] = report[k] + s[k]
    end
  end
  result.ok = all and report.final.passed == true
  if not result.ok then
    result.error = not all and "not every work item has a verified patch"
                   or (merged == "" and "no patch" or "the final verification failed")
  end
  return json.encode(result)
end

return job
