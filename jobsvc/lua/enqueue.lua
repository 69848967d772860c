-- enqueue.lua: new job(s) -> queued (ready lane) or scheduled (due later). One call, many jobs.
-- KEYS: none (cluster hash tags are planned; names are built from the prefix, see _lib.lua)
-- ARGV: prefix, wake_cap, idempotency_ttl, n, then per job:
--   id, queue, priority, delay_ms, at_ms, idem_key ('' for none), nfields, field1, value1, ...
-- Returns: flat list id1, created1, id2, created2 ... (created 0 = idempotency key hit: existing id)
local prefix, cap, idem_ttl, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local out, woken = {}, {}
local i = 5
for _ = 1, n do
  local id, queue, priority = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local delay, at, idem, nf = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), ARGV[i + 5], tonumber(ARGV[i + 6])
  local fstart = i + 7
  i = fstart + 2 * nf
  local existing = nil
  if idem ~= '' then
    local ikey = prefix .. 'idem:' .. idem
    existing = redis.call('GET', ikey)
    if existing and redis.call('EXISTS', job_key(existing)) == 0 then existing = nil end
    if not existing then redis.call('SET', ikey, id, 'EX', idem_ttl) end
  end
  if existing then
    out[#out + 1] = existing; out[#out + 1] = 0
  else
    local key = job_key(id)
    local hargs = {}
    for f = fstart, fstart + 2 * nf - 1 do hargs[#hargs + 1] = ARGV[f] end
    redis.call('HSET', key, 'js_created_ms', now, 'js_attempts', 0, 'js_priority', priority, unpack(hargs))
    redis.call('SADD', 'rq:queues', 'rq:queue:' .. queue)
    redis.call('SADD', prefix .. 'queues', queue)
    local due = 0
    if at > 0 then due = at elseif delay > 0 then due = now + delay end
    if due > now then
      make_scheduled(prefix, id, due)
    else
      local lane = lane_key(prefix, queue, priority)
      redis.call('RPUSH', lane, id)
      redis.call('HSET', key, 'status', 'queued', 'js_state', 'queued')
      woken[queue] = (woken[queue] or 0) + 1
    end
    stat(prefix, queue, 'enqueued')
    out[#out + 1] = id; out[#out + 1] = 1
  end
end
for queue, count in pairs(woken) do wake_workers(prefix, queue, count, cap) end
return out
