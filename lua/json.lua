-- json.lua: JSON for swarm scripts (require("json")): decode(text) -> value, encode(value) -> text.
--
--   local json = require("json")
--   local v = json.decode('{"a": [1, 2.5, "x\\n", true, null]}')   -- v.a[3] == "x\n"
--   json.encode({name = "f", lines = {3, 9}})                      -- keys sorted: deterministic
--
-- decode: objects become tables with string keys, arrays become sequences (1-based), null becomes
-- json.null (a unique value, so that arrays keep their length), numbers Lua numbers (integers
-- when they are written as integers and fit). Errors raise "json: ... at byte N".
-- encode: tables with only keys 1..n are arrays (an empty table is "[]"), other tables objects
-- with their keys as strings, sorted; json.null encodes null.
local json = {}

json.null = setmetatable({}, {__tostring = function() return "null" end})

local escapes = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n',
                 r = '\r', t = '\t'}

local function fail(msg, at) error("json: " .. msg .. " at byte " .. at, 0) end

local function skip(s, i)
  return (s:find("[^ \t\r\n]", i)) or #s + 1
end

local decode_value

local function utf8_of(cp)
  return utf8.char(cp)
end

local function decode_string(s, i) -- s:sub(i, i) == '"'
  local out, j = {}, i + 1
  while true do
    local a, b = s:find('["\\%c]', j)
    if not a then fail("unterminated string", i) end
    out[#out + 1] = s:sub(j, a - 1)
    local c = s:sub(a, a)
    if c == '"' then return table.concat(out), a + 1 end
    if c ~= "\\" then fail("control character in a string", a) end
    local e = s:sub(a + 1, a + 1)
    if e == "u" then
      local hex = s:match("^%x%x%x%x", a + 2)
      if not hex then fail("bad \\u escape", a) end
      local cp, nexti = tonumber(hex, 16), a + 6
      if cp >= 0xD800 and cp <= 0xDBFF then -- a surrogate pair
        local lo = s:match("^\\u(%x%x%x%x)", nexti)
        local low = lo and tonumber(lo, 16)
        if not low or low < 0xDC00 or low > 0xDFFF then fail("lone surrogate", a) end
        cp = 0x10000 + (cp - 0xD800) * 0x400 + (low - 0xDC00)
        nexti = nexti + 6
      end
      out[#out + 1] = utf8_of(cp)
      j = nexti
    elseif escapes[e] then
      out[#out + 1] = escapes[e]
      j = a + 2
    else
      fail("bad escape", a)
    end
  end
end

local function decode_array(s, i, depth)
  local out, n = {}, 0
  i = skip(s, i + 1)
  if s:sub(i, i) == "]" then return out, i + 1 end
  while true do
    local v
    v, i = decode_value(s, i, depth)
    n = n + 1
    out[n] = v
    i = skip(s, i)
    local c = s:sub(i, i)
    if c == "]" then return out, i + 1 end
    if c ~= "," then fail("expected , or ]", i) end
    i = skip(s, i + 1)
  end
end

local function decode_object(s, i, depth)
  local out = {}
  i = skip(s, i + 1)
  if s:sub(i, i) == "}" then return out, i + 1 end
  while true do
    if s:sub(i, i) ~= '"' then fail("expected a key", i) end
    local k
    k, i = decode_string(s, i)
    i = skip(s, i)
    if s:sub(i, i) ~= ":" then fail("expected :", i) end
    local v
    v, i = decode_value(s, skip(s, i + 1), depth)
    out[k] = v
    i = skip(s, i)
    local c = s:sub(i, i)
    if c == "}" then return out, i + 1 end
    if c ~= "," then fail("expected , or }", i) end
    i = skip(s, i + 1)
  end
end

decode_value = function(s, i, depth)
  if depth > 200 then fail("nested too deeply", i) end
  local c = s:sub(i, i)
  if c == "{" then return decode_object(s, i, depth + 1) end
  if c == "[" then return decode_array(s, i, depth + 1) end
  if c == '"' then return decode_string(s, i) end
  if s:find("^true", i) then return true, i + 4 end
  if s:find("^false", i) then return false, i + 5 end
  if s:find("^null", i) then return json.null, i + 4 end
  local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if num and #num > 0 then
    local v = math.tointeger(tonumber(num)) or tonumber(num)
    if v == nil then fail("bad number", i) end
    return v, i + #num
  end
  fail(c == "" and "unexpected end" or ("unexpected '" .. c .. "'"), i)
end

function json.decode(s)
  assert(type(s) == "string", "json.decode: a string is needed")
  local v, i = decode_value(s, skip(s, 1), 0)
  i = skip(s, i)
  if i <= #s then fail("text after the value", i) end
  return v
end

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local map = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\t'] = '\\t', ['\r'] = '\\r'}
    return map[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode(v, depth)
  if depth > 200 then error("json.encode: nested too deeply") end
  local t = type(v)
  if v == json.null or v == nil then return "null" end
  if t == "string" then return encode_string(v) end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then error("json.encode: not a finite number") end
    return math.type(v) == "integer" and tostring(v) or string.format("%.17g", v)
  end
  if t ~= "table" then error("json.encode: cannot encode a " .. t) end
  local n, count = #v, 0
  for _ in pairs(v) do count = count + 1 end
  if count == n then
    local parts = {}
    for i = 1, n do parts[i] = encode(v[i], depth + 1) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local val = v[k]
    if val == nil then val = v[tonumber(k)] end
    parts[#parts + 1] = encode_string(k) .. ":" .. encode(val, depth + 1)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function json.encode(v) return encode(v, 0) end

return json
