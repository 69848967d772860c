-- audit_record.lua: append one audit entry; a key past its allowance this minute gets the short parameters.
-- KEYS: [1] the audit stream, [2] the key id's count of entries this minute (jobsvc.admin.audit.rate_key)
-- ARGV: maxlen, per_minute, window_ms, params, short_params, key_id, action, counts, status ('' for none)
-- Returns: the new entry's id
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
local params = ARGV[4]
if n > tonumber(ARGV[2]) then params = ARGV[5] end
local fields = {'key_id', ARGV[6], 'action', ARGV[7], 'params', params, 'counts', ARGV[8]}
if ARGV[9] ~= '' then
  fields[#fields + 1] = 'status'
  fields[#fields + 1] = ARGV[9]
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
