# area.awk: the area of a rectangle from "width height" lines. The body of area() is wrong:
# examples/fix_team.lua has a team find a version that passes test.sh.
function area(w, h) {
  return w + h
}
{ print area($1, $2) }
