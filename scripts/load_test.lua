-- wrk script for scripts/load_test.sh: every request POSTs one 五绝 to /api/write
-- with its own seed, and non-200 answers are counted as errors.
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"form":"wujue","acrostic":"春夏秋冬","seed":%d}', counter)
  return wrk.format("POST", "/api/write", { ["Content-Type"] = "application/json" }, body)
end
