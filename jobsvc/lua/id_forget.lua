-- id_forget.lua: remove entries of a Redis Cluster's id directory (jobsvc/engine/directory.py) whose jobs were
-- deleted, each only while it still names the queue the job was deleted from: the id may since have been
-- enqueued again into another queue, whose entry stays.
-- KEYS: [1] one directory hash (given whole: its slot is its own)
-- ARGV: id1, queue1, id2, queue2 ...
-- Returns: how many entries were removed
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
