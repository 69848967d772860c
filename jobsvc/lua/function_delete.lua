-- function_delete.lua: remove a registry function (jobsvc/functions.py). Jobs already created from it keep
-- their import path and run; a namespace left without functions leaves the namespace list.
-- KEYS: none
-- ARGV: prefix, namespace, name
-- Returns: {0}; {-1} no such function
local prefix, ns, name = ARGV[1], ARGV[2], ARGV[3]
local ref = ns .. '/' .. name
if redis.call('DEL', prefix .. 'function:' .. ref) == 0 then return {-1} end
local index = prefix .. 'functions:' .. ns
redis.call('ZREM', index, name)
redis.call('SREM', prefix .. 'functions:disabled', ref)
if redis.call('ZCARD', index) == 0 then redis.call('ZREM', prefix .. 'function_namespaces', ns) end
return {0}
