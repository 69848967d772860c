-- function_save.lua: create or change a registry function (jobsvc/engine/functions/); its version goes up on
-- every change. A disabled function's "ns/name" is in the disabled set that claim.lua checks.
-- Everything is checked before the first write (names, key types, the stored version), so a refusal or an
-- error leaves Redis as it was.
-- KEYS: function, function_names, function_namespaces, functions_disabled, wake
-- ARGV: prefix, namespace, name, spec_json (canonical), enabled (1|0), mode (create|update|upsert),
--       expected_version ('' for any), wake_queue ('' for none), wake_cap
-- Returns: {OK, version, changed (1|0)}; {NOT_FOUND} no such function (update); {EXISTS, version} exists (create);
--          {CONFLICT, version} the stored version is not the expected one (a concurrent change);
--          an error reply, nothing written: a name outside [A-Za-z0-9_.-], a key of another type than
--          jobsvc/engine/keys.py gives it, a stored function without a numeric version, or a bad argument
local ns, name, spec, enabled, mode = ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1', ARGV[6]
local wake_queue, wake_cap = ARGV[8], tonumber(ARGV[9])
-- The key layout (jobsvc/engine/keys.py) relies on names without ':' or '/': never write a key from one.
if not (string.match(ns, '^[%w_.%-]+$') and string.match(name, '^[%w_.%-]+$')) then
  return redis.error_reply('bad function namespace or name ' .. ns .. '/' .. name .. ': nothing changed')
end
local expected = tonumber(ARGV[7])
if (ARGV[7] ~= '' and not expected) or (wake_queue ~= '' and not wake_cap) then
  return redis.error_reply('function_save: bad expected_version or wake_cap: nothing changed')
end
local ref = ns .. '/' .. name
local key = K['function'](ns, name)
local index = K.function_names(ns)
local spaces = K.function_namespaces
local disabled = K.functions_disabled
local checks = {key, 'hash', index, 'zset', spaces, 'zset', disabled, 'set'}
if wake_queue ~= '' then
  checks[#checks + 1] = K.wake(wake_queue)
  checks[#checks + 1] = 'list'
end
local bad = wrong_type(checks)
if bad then return bad end
local cur = redis.call('HMGET', key, 'spec', 'version')
local version = tonumber(cur[2])
local refusal = version_refusal(key, version, mode, expected)
if refusal then return refusal end
-- Checked: the writes below cannot fail half-way. The listing indexes are (re)written even when nothing
-- changed, so saving a function again repairs its listing (functions stored under an older index name).
redis.call('ZADD', index, 0, name)
redis.call('ZADD', spaces, 0, ns)
if cur[1] == spec then return {OK, version, 0} end
local now = now_ms()
version = (version or 0) + 1
local fields = {'spec', spec, 'version', version, 'updated_ms', now}
if version == 1 then fields[#fields + 1] = 'created_ms'; fields[#fields + 1] = now end
redis.call('HSET', key, unpack(fields))
if enabled then
  -- Jobs held while it was disabled can run again: wake the workers of its queue.
  if redis.call('SREM', disabled, ref) == 1 and wake_queue ~= '' then
    wake_workers(wake_queue, wake_cap, wake_cap)
  end
else
  redis.call('SADD', disabled, ref)
end
return {OK, version, 1}
