-- patch.lua: change a job that has not started: its call data, priority or run time.
-- queued|scheduled -> queued|scheduled (a new run time in the future schedules it, one in the past queues it).
-- KEYS: count, job, lane, lanes, rq_queue, runs, scheduled, scheduled_in, scheduler_wake, wake
-- ARGV: prefix, id, data ('' keep), description ('' keep), priority ('' keep), due_ms ('' keep, 0 now),
--       enqueued_at, wake_cap
-- Returns: {OK, new_state, now_ms, runs}: Redis time of the change and how many entries the job's run history
--   holds (Client.trigger names the run to come from it: jobsvc/engine/run_history.py);
--   {NOT_FOUND} no such job; {WRONG_STATE, state} the job has started or ended
local id = ARGV[2]
local key = K.job(id)
if redis.call('EXISTS', key) == 0 then return {NOT_FOUND} end
local state = state_of(key)
if state ~= 'queued' and state ~= 'scheduled' then return {WRONG_STATE, state} end
local h = redis.call('HMGET', key, 'origin', 'js_priority', 'js_group', 'js_due')
local queue, old_prio, group = h[1], h[2] or '5', h[3]
if ARGV[3] ~= '' then redis.call('HSET', key, 'data', ARGV[3], 'description', ARGV[4]) end
local prio = ARGV[5] ~= '' and ARGV[5] or old_prio
-- A pull job stays in its queue's pull lanes (enqueue.lua): its new priority is lifted as its first was.
if ARGV[5] ~= '' and tonumber(old_prio) > PULL_LANE_OFFSET then prio = tonumber(ARGV[5]) + PULL_LANE_OFFSET end
local due = h[4]
if ARGV[6] ~= '' then due = ARGV[6] end
local now = now_ms()
local want = (due and due ~= '' and tonumber(due) > now) and 'scheduled' or 'queued'
-- Take it out of where it waits, then put it where it now belongs.
if state == 'queued' then
  redis.call('LREM', lane_key(queue, old_prio), 1, id)
else
  redis.call('ZREM', K.scheduled, id)
  redis.call('ZREM', K.scheduled_in(queue), id)
end
redis.call('HSET', key, 'js_priority', prio)
if want == 'scheduled' then
  make_scheduled(id, tonumber(due), queue)
else
  make_ready(id, queue, prio, false, ARGV[7])
  wake_workers(queue, 1, tonumber(ARGV[8]))
end
gauge(group, state, want)
return {OK, want, now, redis.call('LLEN', K.runs(id))}
