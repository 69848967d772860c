-- function_delete.lua: remove a registry function (jobsvc/engine/functions/). Jobs already created from it keep
-- their import path and run; a namespace left without functions leaves the namespace list.
-- Key types are checked before the first write, so an error leaves Redis as it was.
-- KEYS: function, function_names, function_namespaces, functions_disabled
-- ARGV: prefix, namespace, name
-- Returns: {OK}; {NOT_FOUND} no such function; an error reply, nothing written: a key of another type than
--          jobsvc/engine/keys.py gives it
local ns, name = ARGV[2], ARGV[3]
local ref = ns .. '/' .. name
local key = K['function'](ns, name)
local index = K.function_names(ns)
local spaces = K.function_namespaces
local disabled = K.functions_disabled
local bad = wrong_type({key, 'hash', index, 'zset', spaces, 'zset', disabled, 'set'})
if bad then return bad end
if redis.call('DEL', key) == 0 then return {NOT_FOUND} end
redis.call('ZREM', index, name)
redis.call('SREM', disabled, ref)
if redis.call('ZCARD', index) == 0 then redis.call('ZREM', spaces, ns) end
return {OK}
