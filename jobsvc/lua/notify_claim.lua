-- notify_claim.lua: take due outcome notifications (jobs with a callback_url that ended) for delivery.
-- Each taken entry is pushed NOTIFY_LEASE into the future, so a sender that dies mid-POST frees it for another
-- sender then (at-least-once delivery), its attempt is counted, and it is marked with the sender's claim token:
-- only that claim may settle it (notify_settle.lua), and a newer notification of the same job (the job was
-- retried and ended again) replaces the hash, so a late settle of the old one changes nothing.
-- KEYS: notify, notify_entry
-- ARGV: prefix, limit, lease_ms, claim_token
-- Returns: {id1, {field1, value1, ...}, id2, {...}, ...} (fields of the notification hash, attempts counted)
local limit, lease_ms, claim = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local zkey = K.notify
local now = now_ms()
local out = {}
-- A few more candidates than asked for: stale entries met on the way are dropped, and the caller still gets
-- a notification (an empty answer means nothing is due).
local taken = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'LIMIT', 0, limit + 100)) do
  if taken >= limit then break end
  local nkey = K.notify_entry(id)
  if redis.call('EXISTS', nkey) == 0 then
    redis.call('ZREM', zkey, id)  -- its job's notification was settled or dropped elsewhere
  else
    taken = taken + 1
    redis.call('ZADD', zkey, now + lease_ms, id)
    redis.call('HINCRBY', nkey, 'attempts', 1)
    redis.call('HSET', nkey, 'claim', claim)
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGETALL', nkey)
  end
end
return out
