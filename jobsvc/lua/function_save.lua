-- function_save.lua: create or change a registry function (jobsvc/functions.py); its version goes up on
-- every change. A disabled function's "ns/name" is in the disabled set that claim.lua checks.
-- KEYS: none
-- ARGV: prefix, namespace, name, spec_json (canonical), enabled (1|0), mode (create|update|upsert),
--       expected_version ('' for any), wake_queue ('' for none), wake_cap
-- Returns: {0, version, changed (1|0)}; {-1} no such function (update); {-3, version} exists (create);
--          {-4, version} the stored version is not the expected one (a concurrent change)
local prefix, ns, name, spec, enabled, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1', ARGV[6]
local ref = ns .. '/' .. name
local key = prefix .. 'function:' .. ref
local cur = redis.call('HMGET', key, 'spec', 'version')
local version = tonumber(cur[2])
if mode == 'create' and version then return {-3, version} end
if mode == 'update' and not version then return {-1} end
if ARGV[7] ~= '' and (version or 0) ~= tonumber(ARGV[7]) then return {-4, version or 0} end
if cur[1] == spec then return {0, version, 0} end
local now = now_ms()
version = (version or 0) + 1
local fields = {'spec', spec, 'version', version, 'updated_ms', now}
if version == 1 then fields[#fields + 1] = 'created_ms'; fields[#fields + 1] = now end
redis.call('HSET', key, unpack(fields))
redis.call('ZADD', prefix .. 'functions:' .. ns, 0, name)
redis.call('ZADD', prefix .. 'function_namespaces', 0, ns)
local disabled = prefix .. 'functions:disabled'
if enabled then
  -- Jobs held while it was disabled can run again: wake the workers of its queue.
  if redis.call('SREM', disabled, ref) == 1 and ARGV[8] ~= '' then
    wake_workers(prefix, ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[9]))
  end
else
  redis.call('SADD', disabled, ref)
end
return {0, version, 1}
