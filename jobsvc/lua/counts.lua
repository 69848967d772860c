-- counts.lua: what every count jobsvc shows is read from, in one consistent snapshot (read only): the gauge of
-- every group, and per queue the sizes of the structures that hold its jobs, as RQ's own tools read them, so
-- that jobs enqueued or moved by RQ's own code (which never touches the gauges) are counted at once:
--   queued: its lanes (rq:queue:<q>, RQ's list, and the priority and pull lanes claim.lua pops);
--   scheduled: jobsvc's timeline of the queue and RQ's ScheduledJobRegistry; deferred: RQ's DeferredJobRegistry;
--   completed / failed: RQ's registries, without the entries whose TTL ended (RQ's cleanup drops those before
--   it counts; jobsvc's TTL sweep deletes them); cancelled: RQ's CanceledJobRegistry; quarantined: jobsvc's;
--   running: RQ's StartedJobRegistry (jobs RQ's own workers run; a jobsvc worker's are in the gauges).
-- Cost: O(groups + queues x lanes) commands (about 12 per queue), no scan of jobs: 5 ms of Redis time for 100
-- queues and 1,000 groups (2-core machine).
-- KEYS: canceled, count, deferred, failed, finished, groups, lane, lanes, quarantined, queues, rq_queue, rq_queues, rq_scheduled, rq_wip, scheduled_in
-- ARGV: prefix, queue ('' for every queue jobsvc or RQ knows; a queue's own counts and groups otherwise)
-- Returns: {{group, {state, n, ...}} ..}, {{queue, queued, scheduled, deferred, completed, failed, cancelled,
--          quarantined, rq_running} ..}
local only = ARGV[2] or ''
local now_s = math.floor(now_ms() / 1000)
local groups, queues, seen = {}, {}, {}

local function queue_named(q)
  if not seen[q] and (only == '' or q == only) then seen[q] = true; queues[#queues + 1] = q end
end

for _, g in ipairs(redis.call('SMEMBERS', K.groups)) do
  local q = string.match(g, '^([^|]*)')
  if only == '' or q == only then
    groups[#groups + 1] = {g, redis.call('HGETALL', K.count(g))}
    queue_named(q)
  end
end
if only ~= '' then
  queue_named(only)
else
  for _, q in ipairs(redis.call('SMEMBERS', K.queues)) do queue_named(q) end
  local RQ_QUEUE = K.rq_queue('')  -- rq:queues holds RQ's queue keys: the queue name follows this
  for _, qkey in ipairs(redis.call('SMEMBERS', K.rq_queues)) do
    if string.sub(qkey, 1, #RQ_QUEUE) == RQ_QUEUE then queue_named(string.sub(qkey, #RQ_QUEUE + 1)) end
  end
end

local rows = {}
for _, q in ipairs(queues) do
  local queued = redis.call('LLEN', K.rq_queue(q))
  for _, p in ipairs(redis.call('SMEMBERS', K.lanes(q))) do
    if tonumber(p) ~= 5 then queued = queued + redis.call('LLEN', lane_key(q, p)) end
  end
  local live = '(' .. now_s
  rows[#rows + 1] = {q, queued,
    redis.call('ZCARD', K.scheduled_in(q)) + redis.call('ZCARD', K.rq_scheduled(q)),
    redis.call('ZCARD', K.deferred(q)),
    redis.call('ZCOUNT', K.finished(q), live, '+inf'),
    redis.call('ZCOUNT', K.failed(q), live, '+inf'),
    redis.call('ZCARD', K.canceled(q)),
    redis.call('ZCARD', K.quarantined(q)),
    redis.call('ZCARD', K.rq_wip(q))}
end
return {groups, rows}
