-- expr.lua: integer expressions in x, as the shipped model writes them (require("expr")).
--
--   local expr = require("expr")
--   local f, err = expr.parse("2*x*x-3*x+1")    -- f(x) -> integer, or nil and a message
--   expr.fits(text, xs, ys)                       -- true, or false and how many examples fit
--
-- Grammar (spaces allowed between tokens):
--   sum     = product { ("+" | "-") product }
--   product = unary { "*" unary }
--   unary   = "-" unary | atom
--   atom    = integer | "x" | "(" sum ")"
-- Integers are at most 6 digits and an expression at most 64 characters (the model's answers
-- are short; anything longer is not an answer). Evaluation uses Lua integers.
local expr = {}

local MAX_LEN, MAX_DIGITS = 64, 6

function expr.parse(text)
  if type(text) ~= "string" then return nil, "not a string" end
  if #text == 0 then return nil, "empty" end
  if #text > MAX_LEN then return nil, "longer than " .. MAX_LEN .. " characters" end
  local pos = 1
  local function skip()
    pos = text:find("[^ ]", pos) or #text + 1
  end
  local sum
  local function atom()
    skip()
    local c = text:sub(pos, pos)
    if c == "x" then
      pos = pos + 1
      return function(x) return x end
    elseif c == "(" then
      pos = pos + 1
      local inner, err = sum()
      if not inner then return nil, err end
      skip()
      if text:sub(pos, pos) ~= ")" then return nil, "missing ) at " .. pos end
      pos = pos + 1
      return inner
    end
    local digits = text:match("^%d+", pos)
    if not digits then return nil, "unexpected '" .. c .. "' at " .. pos end
    if #digits > MAX_DIGITS then return nil, "number too long at " .. pos end
    pos = pos + #digits
    local v = math.tointeger(tonumber(digits))
    return function() return v end
  end
  local function unary()
    skip()
    if text:sub(pos, pos) == "-" then
      pos = pos + 1
      local f, err = unary()
      if not f then return nil, err end
      return function(x) return -f(x) end
    end
    return atom()
  end
  local function product()
    local f, err = unary()
    if not f then return nil, err end
    while true do
      skip()
      if text:sub(pos, pos) ~= "*" then return f end
      pos = pos + 1
      local g
      g, err = unary()
      if not g then return nil, err end
      local a = f
      f = function(x) return a(x) * g(x) end
    end
  end
  sum = function()
    local f, err = product()
    if not f then return nil, err end
    while true do
      skip()
      local op = text:sub(pos, pos)
      if op ~= "+" and op ~= "-" then return f end
      pos = pos + 1
      local g
      g, err = product()
      if not g then return nil, err end
      local a = f
      if op == "+" then
        f = function(x) return a(x) + g(x) end
      else
        f = function(x) return a(x) - g(x) end
      end
    end
  end
  local f, err = sum()
  if not f then return nil, err end
  skip()
  if pos <= #text then return nil, "unexpected '" .. text:sub(pos, pos) .. "' at " .. pos end
  return f
end

-- Whether text is an expression giving ys[i] at xs[i] for every i; also the count that fit.
function expr.fits(text, xs, ys)
  local f = expr.parse(text)
  if not f then return false, 0 end
  local n = 0
  for i = 1, #xs do
    if f(xs[i]) == ys[i] then n = n + 1 end
  end
  return n == #xs, n
end

return expr
