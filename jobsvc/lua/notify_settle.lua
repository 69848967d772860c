-- notify_settle.lua: record one delivery attempt of an outcome notification.
-- delivered: the entry leaves the outbox. retry: it comes due again after delay_ms. gave_up: it leaves
-- the outbox and the job (if it still exists) keeps why, in js_notify.
-- KEYS: none
-- ARGV: prefix, id, outcome (delivered | retry | gave_up), delay_ms, note
-- Returns: {0}; {-1} the notification is gone (settled by another sender)
local prefix, id, outcome = ARGV[1], ARGV[2], ARGV[3]
local zkey, nkey = prefix .. 'notify', prefix .. 'notify:' .. id
if redis.call('EXISTS', nkey) == 0 then return {-1} end
if outcome == 'retry' then
  redis.call('ZADD', zkey, now_ms() + tonumber(ARGV[4]), id)
  redis.call('HSET', nkey, 'last_error', ARGV[5])
  return {0}
end
redis.call('ZREM', zkey, id)
redis.call('DEL', nkey)
if redis.call('EXISTS', job_key(id)) == 1 then redis.call('HSET', job_key(id), 'js_notify', ARGV[5]) end
return {0}
