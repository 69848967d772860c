-- cancel_stale.lua: queued | running -> cancelled, the cancel-stale sweep (jobsvc/admin/bulk/stale.py) for one
-- chunk of ids: each job still queued since before the cutoff is cancelled as cancel.lua does, each job still
-- running since before the cutoff is terminated through its lease as terminate.lua does (lease revoked, its
-- worker told). The two transitions are those scripts' own bodies (--#include, jobsvc/engine/scripts.py), so
-- there is one source of each. Every job's
-- state, queue, age and filter are checked here: a job that moved on since its id was read is skipped.
-- KEYS: canceled, count, created, deferred, failed, finished, groups, job, lane, leases, minute, notify, notify_entry, quarantined, results, rq_queue, rq_scheduled, runs, schedule_stats, scheduled, scheduled_in, tally, terminate
-- ARGV: prefix, dry_run (1|0), mode ('queued' | 'running'), queue ('' = any), cutoff_ms (queued: created before
--       it; running: started before it), namespace, function ('' = no such filter), ended_at,
--       failure_ttl_default, nsample, id1 .. idN
-- Returns: {matched, changed, skipped, sample_id1 ..}: skipped = ids whose job is gone or no longer in the mode's
--       state (or on another queue)
--#include cancel
--#include terminate
local dry, mode, queue = ARGV[2] == '1', ARGV[3], ARGV[4]
local cutoff = tonumber(ARGV[5])
local filter = {ns = ARGV[6], func = ARGV[7], err = '', until_ms = math.huge}
local ended_at, ttl_default, nsample = ARGV[8], ARGV[9], tonumber(ARGV[10])
local since_field = mode == 'running' and 'js_started_ms' or 'js_created_ms'
local matched, changed, skipped, sample = 0, 0, 0, {}
local now = now_ms()
for i = 11, #ARGV do
  local id = ARGV[i]
  local key = K.job(id)
  local h = redis.call('HMGET', key, 'js_state', 'status', 'origin', 'js_group', 'js_ns', since_field)
  local st = h[1] or (h[2] and (rq_to_state[h[2]] or 'queued'))
  if st ~= mode or (queue ~= '' and h[3] ~= queue) then
    skipped = skipped + 1
  else
    local since = tonumber(h[6])
    if since and since < cutoff and bulk_match(filter, now, key, h[5], h[4], nil, nil, nil) then
      matched = matched + 1
      if #sample < nsample then sample[#sample + 1] = id end
      if not dry then  -- js_state: cancelled (cancel.lua, terminate.lua)
        local reply
        if mode == 'running' then reply = terminate_script({'', id, ended_at, ttl_default, 'terminate', ''})
        else reply = cancel_script({'', id, ended_at, ttl_default}) end
        if reply[1] == OK then changed = changed + 1 end
      end
    end
  end
end
local out = {matched, changed, skipped}
for _, id in ipairs(sample) do out[#out + 1] = id end
return out
