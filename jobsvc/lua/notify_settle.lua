-- notify_settle.lua: record one delivery attempt of an outcome notification, by the claim that took it.
-- delivered: the entry leaves the outbox. retry: it comes due again after delay_ms. gave_up: it leaves
-- the outbox and the job (if it still exists) keeps why, in js_notify.
-- KEYS: job, notify, notify_entry
-- ARGV: prefix, id, claim_token, outcome (delivered | retry | gave_up), delay_ms, note
-- Returns: {OK}; {LEASE_LOST} not this claim's any more (its lease ran out and another sender took it, or the
-- job ended again and a newer notification replaced it): nothing changed
local id, claim, outcome = ARGV[2], ARGV[3], ARGV[4]
local zkey, nkey = K.notify, K.notify_entry(id)
if redis.call('HGET', nkey, 'claim') ~= claim then return {LEASE_LOST} end
if outcome == 'retry' then
  redis.call('ZADD', zkey, now_ms() + tonumber(ARGV[5]), id)
  redis.call('HSET', nkey, 'last_error', ARGV[6])
  redis.call('HDEL', nkey, 'claim')
  return {OK}
end
redis.call('ZREM', zkey, id)
redis.call('DEL', nkey)
if redis.call('EXISTS', K.job(id)) == 1 then redis.call('HSET', K.job(id), 'js_notify', ARGV[6]) end
return {OK}
