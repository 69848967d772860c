-- prune.lua: completed | failed | cancelled | quarantined -> (deleted) for one chunk of jobs that match a
-- filter: the job hash, its result stream, its run history, its registry and created-index entries are
-- deleted, and the job is uncounted from its group's gauge. Its idempotency key stays until its own TTL ends
-- (collect_deletion): pruning is housekeeping, it must not let a retried request create the job again.
-- Every job's state and the filter are checked here: a job that moved on is skipped, never deleted.
-- KEYS: none
-- ARGV: prefix, dry_run (1|0), state, queue, until_ms (jobs that ended later entered the state after the
--       operation began: left alone), namespace, function, error_lower, older_than_ms, newer_than_ms
--       ('' = no such filter), nsample, id1 .. idN
-- Returns: {matched, changed, skipped, kept, sample_id1 ..}: skipped = ids whose job is gone or no longer
--       in the state; kept = ids of the chunk still in the state's registry afterwards (the caller pages on)
local prefix, dry, state, queue, until_ms = ARGV[1], ARGV[2] == '1', ARGV[3], ARGV[4], tonumber(ARGV[5])
local f_ns, f_func, f_err = ARGV[6], ARGV[7], ARGV[8]
local f_older, f_newer = tonumber(ARGV[9]), tonumber(ARGV[10])
local nsample = tonumber(ARGV[11])
local registry = PRUNABLE[state] and registry_of(prefix, state, queue)
if not registry then return redis.error_reply('prune: ' .. tostring(state) .. ' is not a terminal state') end
local now = now_ms()

local filter = {ns = f_ns, func = f_func, err = f_err, older = f_older, newer = f_newer, until_ms = until_ms}

local matched, changed, skipped, kept = 0, 0, 0, 0
local sample, done, dels = {}, {}, {}
for i = 12, #ARGV do
  local id = ARGV[i]
  local key = job_key(id)
  local h = redis.call('HMGET', key, 'js_state', 'status', 'origin', 'js_group', 'js_ns', 'js_error', 'js_ended_ms',
    'js_created_ms')
  local st = h[1] or (h[2] and (rq_to_state[h[2]] or 'queued'))
  local untouched = true
  if st ~= state or h[3] ~= queue then
    skipped = skipped + 1
    if redis.call('ZSCORE', registry, id) then kept = kept + 1 end
    untouched = false
  elseif bulk_match(filter, now, key, h[5], h[4], h[6], h[7], h[8]) then
    matched = matched + 1
    if #sample < nsample then sample[#sample + 1] = id end
    if not dry then
      collect_deletion(prefix, id, h[4], state, dels)
      done[#done + 1] = id
      changed = changed + 1
      untouched = false
    end
  end
  -- A job still in the registry's state and queue is in the registry (the integrity sweep sees to that).
  if untouched then kept = kept + 1 end
end
if changed > 0 then
  redis.call('DEL', unpack(dels))
  leave_ended_registries(prefix, queue, done)
  redis.call('ZREM', prefix .. 'created:' .. queue, unpack(done))
end
local out = {matched, changed, skipped, kept}
for _, id in ipairs(sample) do out[#out + 1] = id end
return out
