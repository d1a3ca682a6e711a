-- demo.lua: the demo swarm of `hswarm demo` (which passes its options as key=value arguments).
-- Micro-swarms of small agents answer held-out tasks of the expression family; the logic is in the
-- built-in library lua/exprdemo.lua. Run it on any model with
--   hswarm run examples/demo.lua -m models/expr.gguf tasks=100 team=10 rounds=3
function main(ctx, args)
  return require("exprdemo").main(ctx, args)
end
