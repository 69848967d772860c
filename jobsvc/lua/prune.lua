-- prune.lua: completed | failed | cancelled | quarantined -> (deleted) for one chunk of jobs that match a
-- filter: the job hash, its result stream, its run history, its registry and created-index entries are
-- deleted, and the job is uncounted from its group's gauge. Its idempotency key stays until its own TTL ends
-- (collect_deletion): pruning is housekeeping, it must not let a retried request create the job again.
-- Every job's state and the filter are checked here: a job that moved on is skipped, never deleted.
-- KEYS: canceled, count, created, deferred, dependencies, dependents, failed, finished, job, quarantined, results, runs
-- ARGV: prefix, dry_run (1|0), state, queue, until_ms (jobs that ended later entered the state after the
--       operation began: left alone), namespace, function, error_lower, older_than_ms, newer_than_ms
--       ('' = no such filter), nsample, id1 .. idN
-- Returns: {matched, changed, skipped, kept, sample_id1 ..}: skipped = ids whose job is gone or no longer
--       in the state; kept = ids of the chunk still in the state's registry afterwards (the caller pages on);
--       then, when jobs deleted had one (ids given on a Redis Cluster), a list {id1, js_inc1 ..} of them: the
--       incarnation their id directory entries hold (jobsvc/engine/directory.py)
local dry, state, queue = ARGV[2] == '1', ARGV[3], ARGV[4]
local registry = PRUNABLE[state] and registry_of(state, queue)
if not registry then return redis.error_reply('prune: ' .. tostring(state) .. ' is not a terminal state') end
local dels, incs = {}, {}
local out, done = bulk_chunk(state, queue, registry, 5, dry, function(id, _, h)
  collect_deletion(id, h[4], state, dels)
  if h[10] then incs[#incs + 1] = id; incs[#incs + 1] = h[10] end
end)
if #incs > 0 then out[#out + 1] = incs end
if #done > 0 then
  redis.call('DEL', unpack(dels))
  leave_ended_registries(queue, done)
  redis.call('ZREM', K.created(queue), unpack(done))
end
return out
