-- code.lua: the code-intelligence layer for swarm scripts (require("code")), over the runtime
-- operations of hswarm/kb.h (`hswarm run --repo DIR` indexes DIR and provides them).
--
--   local code = require("code")
--   local defs = code.sym(ctx, "Shape.area")        -- {{kind, name, qname, path, start_line,
--                                                   --   end_line, start_byte, end_byte,
--                                                   --   signature, doc}, ...}
--   local mine = code.file(ctx, "src/shapes.py")    -- every definition of one file
--   local who = code.callers(ctx, "area", 2)        -- {{depth, name, line, from = def,
--   local what = code.callees(ctx, "Shape.area")    --   to = def or json.null}, ...}
--   local found = code.search(ctx, "parse header", 5) -- {method = "...", hits = {{score,
--                                                   --   definition}, ...}}
--   local s = code.slice(ctx, "Shape.area")         -- {text, definition, tokens,
--                                                   --   whole_file_tokens, own_file_tokens,
--                                                   --   callees, callers}
--   local m = code.map(ctx, "add perimeter to shapes", 512)  -- {text, tokens, files,
--                                                   --   definitions, personalized}
--   local r = code.patch(ctx, patch_text, {root = dir, file = "src/shapes.py", write = false})
--                                                   -- {ok, written, diff, errors = {...},
--                                                   --  files = {{path, text}, ...}}
--
-- Each call returns its result, or nil and an error message (no such name, an ambiguous slice,
-- an index out of date). code.patch applies a function-level patch (hswarm/patch.h) to the
-- files under root (default: the repository); with write = true the files are written when
-- every operation applied. Results are logged: a replay needs no repository.
local json = require("json")
local code = {}

local function call(ctx, kind, req)
  local res, err = ctx.call(kind, json.encode(req))
  if not res then return nil, err end
  return json.decode(tostring(res))
end

function code.sym(ctx, name) return call(ctx, "code.sym", {name = name}) end
function code.file(ctx, path) return call(ctx, "code.sym", {path = path}) end
function code.callers(ctx, name, depth)
  return call(ctx, "code.callers", {name = name, depth = depth or 1})
end
function code.callees(ctx, name, depth)
  return call(ctx, "code.callees", {name = name, depth = depth or 1})
end
function code.search(ctx, query, limit)
  return call(ctx, "code.search", {query = query, limit = limit or 10})
end
function code.slice(ctx, name) return call(ctx, "code.slice", {name = name}) end
function code.map(ctx, task, budget)
  return call(ctx, "code.map", {task = task, budget = budget or 1024})
end
function code.patch(ctx, text, opts)
  opts = opts or {}
  return call(ctx, "code.patch", {patch = text, root = opts.root, file = opts.file,
                                  write = opts.write and true or false})
end

return code
